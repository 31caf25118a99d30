"""Containment runbooks under moto: the dry run lists the exact calls and changes nothing; running
needs confirmation and the analyst role; the result (and what was replaced) is on the timeline."""
import pytest

from auditbook.auth import Actor, PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import incidents
from auditbook.monitor.runbooks import (
    QUARANTINE_GROUP,
    execute,
    plan_deactivate_key,
    plan_disable_login,
    plan_quarantine,
)
from auditbook.store import audit_log
from auditbook.store.db import open_engine
from auditbook.store.session import reading

ANALYST, VIEWER = Actor("ana", "analyst"), Actor("vic", "viewer")


def trail(engine, object_type: str, object_id) -> list[dict]:
    """The audit trail of one object, read through its repository in one unit of work."""
    with reading(engine) as session:
        return audit_log.trail(session, object_type, object_id)


@pytest.fixture
def setup(aws, tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/r.db")
    inc = incidents.create(engine, ANALYST, title="Compromised host", severity="critical")
    ec2, iam = aws.client("ec2"), aws.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet,
                                 SecurityGroupIds=[web])["Instances"][0]["InstanceId"]
    iam.create_user(UserName="leaky")
    key = iam.create_access_key(UserName="leaky")["AccessKey"]["AccessKeyId"]
    iam.create_login_profile(UserName="leaky", Password="Sup3r-secret-pass!")
    return {"engine": engine, "incident": inc["id"], "ec2": ec2, "iam": iam, "instance": instance, "web": web,
            "key": key, "clients": {"ec2": ec2, "iam": iam}}


def _groups(ec2, instance):
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return sorted(g["GroupId"] for g in found["SecurityGroups"])


def test_quarantine_dry_run_then_confirmed(setup):
    s = setup
    plan = plan_quarantine(s["ec2"], s["instance"])
    assert [c["operation"] for c in plan.calls] == ["create_security_group", "revoke_security_group_egress",
                                                    "modify_instance_attribute"]
    assert plan.before["security_groups"] == [s["web"]]
    assert _groups(s["ec2"], s["instance"]) == [s["web"]]  # the dry run changed nothing
    with pytest.raises(UserError, match="not confirmed"):
        execute(s["engine"], ANALYST, s["incident"], plan, s["clients"], confirm=False)
    with pytest.raises(PermissionDenied):
        execute(s["engine"], VIEWER, s["incident"], plan, s["clients"], confirm=True)
    assert _groups(s["ec2"], s["instance"]) == [s["web"]]
    out = execute(s["engine"], ANALYST, s["incident"], plan, s["clients"], confirm=True)
    qsg = out["quarantine_group"]
    assert _groups(s["ec2"], s["instance"]) == [qsg]
    group = s["ec2"].describe_security_groups(GroupIds=[qsg])["SecurityGroups"][0]
    assert group["GroupName"] == QUARANTINE_GROUP and group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    entry = [e for e in trail(s["engine"], "incident", s["incident"]) if e["action"] == "runbook"][0]
    assert entry["before"]["security_groups"] == [s["web"]] and entry["actor"] == "ana"
    assert "quarantine-instance on " in entry["note"] and entry["note"].endswith("done")
    # a second host reuses the quarantine group
    again = plan_quarantine(s["ec2"], s["instance"])
    assert [c["operation"] for c in again.calls] == ["modify_instance_attribute"]


def test_deactivate_key_and_disable_login(setup):
    s = setup
    plan = plan_deactivate_key(s["iam"], "leaky", s["key"])
    assert plan.lines() == [f"iam:update_access_key {{'UserName': 'leaky', 'AccessKeyId': '{s['key']}', 'Status': 'Inactive'}}"]
    execute(s["engine"], ANALYST, s["incident"], plan, s["clients"], confirm=True)
    assert s["iam"].list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    login = plan_disable_login(s["iam"], "leaky")
    execute(s["engine"], ANALYST, s["incident"], login, s["clients"], confirm=True)
    with pytest.raises(UserError, match="has no console login"):
        plan_disable_login(s["iam"], "leaky")
    notes = [e["note"] for e in trail(s["engine"], "incident", s["incident"]) if e["action"] == "runbook"]
    assert notes == [f"deactivate-access-key on leaky/{s['key']}: done", "disable-console-login on leaky: done"]
    with pytest.raises(UserError, match="is not an access key of leaky"):
        plan_deactivate_key(s["iam"], "leaky", "AKIANOTAKEY000000000")


def test_a_failing_call_is_recorded_on_the_timeline(setup):
    s = setup
    plan = plan_deactivate_key(s["iam"], "leaky", s["key"])
    s["iam"].delete_access_key(UserName="leaky", AccessKeyId=s["key"])  # gone between plan and run
    with pytest.raises(UserError, match="update_access_key failed"):
        execute(s["engine"], ANALYST, s["incident"], plan, s["clients"], confirm=True)
    entry = [e for e in trail(s["engine"], "incident", s["incident"]) if e["action"] == "runbook"][0]
    assert "FAILED" in entry["note"] and entry["after"]["error"]


def test_cli_dry_run_then_yes(setup):
    from typer.testing import CliRunner

    from auditbook.cli.main import registered_app
    app = registered_app()
    s = setup
    db = str(s["engine"].url)
    r = CliRunner().invoke(app, ["runbook", "deactivate-access-key", "--user", "leaky", "--key", s["key"],
                                 "--incident", str(s["incident"]), "--db", db])
    assert r.exit_code == 0 and "iam:update_access_key" in r.output and "dry run: nothing was changed" in r.output
    assert s["iam"].list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Active"
    r = CliRunner().invoke(app, ["runbook", "deactivate-access-key", "--user", "leaky", "--key", s["key"],
                                 "--incident", str(s["incident"]), "--yes", "--db", db])
    assert r.exit_code == 0 and f"recorded on incident {s['incident']}" in r.output
    assert s["iam"].list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Inactive"


def test_execute_refuses_an_incident_no_longer_active(setup):
    s = setup
    plan = plan_deactivate_key(s["iam"], "leaky", s["key"])
    current = incidents.get(s["engine"], s["incident"])
    incidents.update(s["engine"], ANALYST, s["incident"], current["version"], status="resolved")
    with pytest.raises(UserError, match=f"incident {s['incident']} is resolved: runbooks run only on an active"):
        execute(s["engine"], ANALYST, s["incident"], plan, s["clients"], confirm=True)
    assert s["iam"].list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Active"
    assert not [e for e in trail(s["engine"], "incident", s["incident"]) if e["action"] == "runbook"]
    with pytest.raises(UserError, match="no incident 999"):
        execute(s["engine"], ANALYST, 999, plan, s["clients"], confirm=True)


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254


def test_every_plan_without_credentials_is_a_one_line_user_error(aws, no_credentials):
    from auditbook.monitor.runbooks import aws_client
    ec2, iam = aws_client("ec2"), aws_client("iam")
    for plan in (lambda: plan_quarantine(ec2, "i-0123456789abcdef0"), lambda: plan_deactivate_key(iam, "leaky", "AKIA1"),
                 lambda: plan_disable_login(iam, "leaky")):
        with pytest.raises(UserError) as err:
            plan()
        assert "NoCredentialsError: Unable to locate credentials" in str(err.value) and "\n" not in str(err.value)


def test_a_call_failing_for_want_of_credentials_is_recorded(setup, monkeypatch, tmp_path):
    from auditbook.monitor.runbooks import aws_client
    s = setup
    plan = plan_deactivate_key(s["iam"], "leaky", s["key"])
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UserError, match="update_access_key failed: NoCredentialsError"):
        execute(s["engine"], ANALYST, s["incident"], plan, {"iam": aws_client("iam")}, confirm=True)
    entry = [e for e in trail(s["engine"], "incident", s["incident"]) if e["action"] == "runbook"][0]
    assert "FAILED" in entry["note"] and "NoCredentialsError" in entry["after"]["error"]


def test_unknown_instance_and_bad_region(setup):
    from auditbook.monitor.runbooks import aws_client
    with pytest.raises(UserError, match="--instance: i-0000000000000dead: InvalidInstanceID.NotFound"):
        plan_quarantine(setup["ec2"], "i-0000000000000dead")
    with pytest.raises(UserError, match="--region: 'us east'"):
        aws_client("ec2", "us east")


def test_runbooks_are_a_registry_the_front_ends_list(setup):
    from auditbook import plugins
    from auditbook.monitor.runbooks import dry_run
    s = setup
    books = plugins.runbooks()
    assert sorted(books) == ["deactivate-access-key", "disable-console-login", "quarantine-instance"]
    assert [p.option for p in books["deactivate-access-key"].parameters] == ["--user", "--key"]
    assert books["quarantine-instance"].services == ("ec2",) and books["quarantine-instance"].region == "region"
    plan, clients = dry_run(s["engine"], s["incident"], "deactivate-access-key", {"user": " leaky ", "key": s["key"]})
    assert plan.lines() == plan_deactivate_key(s["iam"], "leaky", s["key"]).lines() and set(clients) == {"iam"}
    execute(s["engine"], ANALYST, s["incident"], plan, clients, confirm=True)
    assert s["iam"].list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    plan, clients = dry_run(s["engine"], s["incident"], "quarantine-instance", {"instance": s["instance"], "region": ""})
    assert plan.target == s["instance"] and clients["ec2"].meta.region_name == "us-east-1"
    with pytest.raises(UserError, match="'wipe-everything' is not one of deactivate-access-key, disable-console-login"):
        dry_run(s["engine"], s["incident"], "wipe-everything", {})
    with pytest.raises(UserError, match=r"--key \(Access key id\): required by runbook deactivate-access-key"):
        dry_run(s["engine"], s["incident"], "deactivate-access-key", {"user": "leaky", "key": "  "})
    with pytest.raises(UserError, match="no incident 999"):  # the incident is checked before any AWS call
        dry_run(s["engine"], 999, "disable-console-login", {"user": "leaky"})
