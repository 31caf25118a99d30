"""Out of scope is not evaluated (issue 14 §7, docs/scope.md): the scan applies the scope in force
when it runs — an excluded account is never reached (no sts:AssumeRole, no read), an excluded region is
never read (fewer calls), and the records of an excluded resource or tag are dropped before evaluation,
so their failing findings are not in the run's counts, its posture or the period's deviations. The run
records what it left out per entry; runs before an exclusion keep what they evaluated. In-process moto."""
import datetime as dt

import pytest
import yaml

from auditbook.auth import Actor
from auditbook.history.period import parse_period
from auditbook.history.scope import exclude, include, scope_document

ADMIN = Actor("Ada Admin", "admin")
HOME, OTHER = "123456789012", "210987654321"  # moto's default account; one reached by assuming a role
Q3 = parse_period(start="2026-07-01", end="2026-07-31")


@pytest.fixture
def estate(aws, tmp_path):
    """HOME: in us-east-1 a group open to the world on port 22 (fails ec2-sg-no-public-ingress) and one
    tagged env=sandbox open on 3389; OTHER reached by assuming AuditRole; a store and the small catalog."""
    from auditbook.store.db import open_engine
    from tests.packet_store import small_catalog
    ec2 = aws.client("ec2", region_name="us-east-1")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    groups = {}
    for name, port, tags in (("ssh-open", 22, []), ("sandbox-rdp", 3389, [{"Key": "env", "Value": "sandbox"}])):
        spec = [{"ResourceType": "security-group", "Tags": tags}] if tags else []
        gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                        TagSpecifications=spec)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        groups[name] = gid
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(yaml.safe_dump({"accounts": [{"id": HOME, "name": "production"},
                                                     {"id": OTHER, "name": "sandbox", "role": "AuditRole"}]}))
    return {"engine": open_engine(f"sqlite:///{tmp_path}/scope.db"), "db": f"sqlite:///{tmp_path}/scope.db",
            "catalog": small_catalog(tmp_path / "catalog.yaml"), "accounts": accounts, "groups": groups}


def scan(estate, day: int, regions: str = "us-east-1"):
    from auditbook.scan import run_scan
    at = dt.datetime(2026, 7, day, 6, 0, tzinfo=dt.timezone.utc)
    return run_scan(accounts_file=estate["accounts"], regions=regions, db=estate["db"], catalog_path=estate["catalog"],
                    criterion="CC6.6", workers=4, at=at)


def put_out(estate, kind: str, value: str, day: int, reason: str = "decommissioned, not part of the service"):
    at = dt.datetime(2026, 7, day, 5, 0, tzinfo=dt.timezone.utc)
    from freezegun import freeze_time
    with freeze_time(at):
        return exclude(estate["engine"], ADMIN, kind, value, reason)


def failing(result) -> set[str]:
    return {f.resource_name for f in result.findings if f.status == "FAIL" and f.check == "ec2-sg-no-public-ingress"}


def test_an_excluded_account_is_never_reached_nor_read(estate):
    before = scan(estate, 1)
    assert before.collection.calls_by_operation["sts:AssumeRole"] >= 1
    assert {s.account for s in before.collection.scopes} == {HOME, OTHER}
    put_out(estate, "account", OTHER, 2)
    after = scan(estate, 2)
    assert after.collection.calls_by_operation.get("sts:AssumeRole", 0) == 0  # not even reached
    assert {s.account for s in after.collection.scopes} == {HOME}
    assert after.collection.calls < before.collection.calls
    listed = {a["account"]: a for a in after.accounts}
    assert listed[OTHER]["out_of_scope"]["reason"] == "decommissioned, not part of the service"
    assert not any(f.account == OTHER for f in after.findings)


def test_an_excluded_region_is_never_read(estate):
    both = scan(estate, 1, "us-east-1,eu-west-1")
    put_out(estate, "region", "eu-west-1", 2, "no workload runs there")
    one = scan(estate, 2, "us-east-1,eu-west-1")
    assert {s.region for s in both.collection.scopes} >= {"eu-west-1"}
    assert "eu-west-1" not in {s.region for s in one.collection.scopes}
    described = "ec2:DescribeSecurityGroups"
    assert one.collection.calls_by_operation[described] == both.collection.calls_by_operation[described] // 2
    assert one.regions == ["us-east-1"]
    doc = scope_document(estate["engine"], _catalog(estate), Q3)
    left = [r for r in doc["left_out"] if r["kind"] == "region"]
    assert left and left[0]["regions_not_read"] == ["eu-west-1"] and left[0]["runs"] == 1


def _catalog(estate):
    from auditbook.catalog.model import load_catalog
    return load_catalog(estate["catalog"])


def test_an_excluded_resource_is_not_evaluated_nor_counted(estate):
    from auditbook.history import posture
    from auditbook.history.deviations import deviations
    arn = f"arn:aws:ec2:us-east-1:{HOME}:security-group/{estate['groups']['ssh-open']}"
    before = scan(estate, 1)
    assert "ssh-open" in failing(before)
    entry = put_out(estate, "resource", arn, 2)
    after = scan(estate, 2)
    assert "ssh-open" not in failing(after)
    assert not any(f.resource == arn for f in after.findings)
    catalog = _catalog(estate)
    with_failure = {r["criterion"]: r["fail"] for r in posture.criteria(estate["engine"], catalog, before.run_id)}
    without = {r["criterion"]: r["fail"] for r in posture.criteria(estate["engine"], catalog, after.run_id)}
    its_failures = [f for f in before.findings if f.resource == arn and f.status == "FAIL" and "CC6.6" in f.controls]
    assert its_failures  # the group fails more than one CC6.6 check (public ingress, egress to the world)
    assert without["CC6.6"] == with_failure["CC6.6"] - len(its_failures)  # the run before keeps what it evaluated
    run = posture.latest_run(estate["engine"], catalog)
    assert [(r["entry"], r["records"]) for r in run["out_of_scope"]] == [(entry["id"], 1)]
    # named, not only counted: a tag anyone can set must not hide a resource without a trace
    assert run["out_of_scope"][0]["resources"] == [f"aws.ec2.security_group {HOME} us-east-1 {arn}"]
    # the period's deviations: the failure stretch ended with the exclusion, nothing after it
    found = [d for d in deviations(estate["engine"], catalog, parse_period(start="2026-07-02", end="2026-07-02"))
             if arn in str(d)]
    assert found == []
    doc = scope_document(estate["engine"], catalog, Q3)
    row = next(r for r in doc["left_out"] if r["entry"] == entry["id"])
    assert (row["kind"], row["value"], row["records"], row["runs"]) == ("resource", arn, 1, 1)
    assert doc["out_of_scope"][0]["excluded_at"].startswith("2026-07-02")


def test_an_excluded_tag_drops_its_resources_and_a_lifted_entry_counts_again(estate):
    before = scan(estate, 1)
    assert {"ssh-open", "sandbox-rdp"} <= failing(before)
    put_out(estate, "tag", "env=sandbox", 2, "sandbox: no customer data")
    after = scan(estate, 3)
    assert failing(after) >= {"ssh-open"} and "sandbox-rdp" not in failing(after)
    from freezegun import freeze_time
    with freeze_time(dt.datetime(2026, 7, 4, 5, tzinfo=dt.timezone.utc)):
        include(estate["engine"], ADMIN, "tag", "env=sandbox", "the sandbox now holds customer data")
    again = scan(estate, 5)
    assert "sandbox-rdp" in failing(again)
    from auditbook.history.posture import latest_run
    assert latest_run(estate["engine"])["out_of_scope"] == []


def test_a_scan_with_nothing_out_of_scope_records_an_empty_list(estate):
    result = scan(estate, 1)
    from auditbook.history.posture import latest_run
    assert latest_run(estate["engine"])["out_of_scope"] == []
    assert result.run_id == latest_run(estate["engine"])["id"]


@pytest.mark.parametrize("entry", [
    {"id": 1, "kind": "account", "value": OTHER, "excluded": {"at": "yesterday", "reason": "x"}, "lifted": None},
    {"id": 1, "kind": "account", "value": OTHER, "excluded": {"at": "2026-07-01T00:00:00+00:00"}, "lifted": {"at": 5}},
    {"kind": "account", "value": OTHER, "excluded": {"at": "2026-07-01T00:00:00+00:00"}},
    "not an entry",
])
def test_a_scope_setting_the_scan_cannot_read_stops_it_before_anything_is_read(estate, entry):
    """Never taken for "nothing out of scope": the scan refuses with one line naming the setting."""
    from auditbook.errors import UserError
    from auditbook.store import scope as stored
    from auditbook.store.session import writing
    with writing(estate["engine"]) as session:
        assert stored.write_scope(session, {"version": 1, "entries": [entry]}, 0)
    with pytest.raises(UserError, match=r"^settings scope: entry .* is malformed"):
        scan(estate, 1)
    from auditbook.history.posture import latest_run
    assert latest_run(estate["engine"]) is None
