"""Out of scope is not evaluated, end to end on a moto_server (issue 14 §7, docs/scope.md): an organisation
of two accounts scanned with --org in two regions; an admin puts the member account, a region and one
security group out of scope with `auditbook scope exclude`; the next scan never reaches the member account
(no AssumeRole into it, fewer API calls), never reads the region, and drops the group before evaluation;
the reconciliation shows the member as "out of scope: <reason>" (not a deviation), the scope document
states what each entry left out, and the run's counts, posture and findings no longer hold the group's
failure — while the run before keeps what it evaluated."""
import os

import boto3
import pytest

from auditbook.demo.run import MotoServer, demo_environment
from tests.conftest import run_main

ROLE = "OrganizationAccountAccessRole"
REGIONS = "us-east-1,eu-west-1"


def _open_group(ec2, name: str) -> str:
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return gid


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Two scans of the organisation: before and after the exclusions (made through the CLI)."""
    from auditbook.scan import run_scan
    from tests.packet_store import small_catalog
    root = tmp_path_factory.mktemp("scope")
    db, catalog = f"sqlite:///{root}/scope.db", small_catalog(root / "catalog.yaml")
    old = dict(os.environ)
    with MotoServer() as server:
        os.environ.update(demo_environment(server.url))
        try:
            org = boto3.client("organizations", region_name="us-east-1")
            org.create_organization(FeatureSet="ALL")
            member = org.create_account(Email="m@example.com", AccountName="sandbox")["CreateAccountStatus"]["AccountId"]
            home = boto3.client("sts").get_caller_identity()["Account"]
            group = _open_group(boto3.client("ec2", region_name="us-east-1"), "admin-ssh")
            before = run_scan(org_role=ROLE, regions=REGIONS, db=db, catalog_path=catalog, criterion="CC6.6", workers=4)
            arn = f"arn:aws:ec2:us-east-1:{home}:security-group/{group}"
            exclusions = [("--account", member, "sandbox account: no customer data"),
                          ("--region", "eu-west-1", "no workload in Ireland"),
                          ("--resource", arn, "break-glass bastion, reviewed separately")]
            yield {"url": server.url, "db": db, "catalog": catalog, "member": member, "home": home, "arn": arn, "before": before,
                   "exclusions": exclusions, "run_excluded": lambda: run_scan(
                       org_role=ROLE, regions=REGIONS, db=db, catalog_path=catalog, criterion="CC6.6", workers=4)}
        finally:
            os.environ.clear()
            os.environ.update(old)


def test_the_scope_in_force_is_applied_by_the_next_scan(scanned, capsys, monkeypatch):
    from auditbook.catalog.model import load_catalog
    from auditbook.history import posture
    from auditbook.history.period import parse_period
    from auditbook.history.scope import scope_document
    from auditbook.store.db import open_engine
    before, member, arn = scanned["before"], scanned["member"], scanned["arn"]
    assert {a["account"] for a in before.accounts} == {scanned["home"], member}
    assert any(f.resource == arn and f.status == "FAIL" for f in before.findings)
    for option, value, reason in scanned["exclusions"]:
        code, out, err = run_main(capsys, monkeypatch, "scope", "exclude", option, value, "--reason", reason,
                                  "--db", scanned["db"])
        assert code == 0, err
    for key, value in demo_environment(scanned["url"]).items():  # the test's own environment is a fake one
        monkeypatch.setenv(key, value)
    result = scanned["run_excluded"]()
    engine, catalog = open_engine(scanned["db"]), load_catalog(scanned["catalog"])

    # never reached, never read: no AssumeRole into the member, no scope in eu-west-1, fewer calls
    assert result.collection.calls_by_operation.get("sts:AssumeRole", 0) == 0
    read = posture.scope_values(engine, result.run_id)
    assert read["account"] == [scanned["home"]] and set(read["region"]) - {"global"} == {"us-east-1"}
    assert result.collection.calls < before.collection.calls / 2

    # the excluded group is not evaluated: not in the run's findings nor its counts; the run before keeps it
    assert not any(f.resource == arn for f in result.findings)
    then = {r["criterion"]: r for r in posture.criteria(engine, catalog, before.run_id)}
    now = {r["criterion"]: r for r in posture.criteria(engine, catalog, result.run_id)}
    assert now["CC6.6"]["fail"] < then["CC6.6"]["fail"]
    assert {e["kind"]: e["records"] for e in posture.latest_run(engine, catalog)["out_of_scope"]}["resource"] == 1

    # the scope section: reconciliation, what each entry left out, regions declared
    doc = scope_document(engine, catalog, parse_period(start=str(_day(before)), end=str(_day(result))))
    status = {a["account"]: a["status"] for a in doc["reconciliation"]["accounts"]}
    assert status[member] == "out of scope: sandbox account: no customer data"
    assert not [d for d in doc["deviations"] if d["account"] == member]
    left = {r["kind"]: r for r in doc["left_out"]}
    assert left["account"]["accounts_not_read"] == [member] and left["region"]["regions_not_read"] == ["eu-west-1"]
    assert left["resource"]["records"] == 1 and left["resource"]["value"] == arn
    assert "excluded from every count" in left["resource"]["statement"]
    home = next(a for a in doc["accounts"] if a["account"] == scanned["home"])
    why = {r["region"]: r["reason"] for r in home["regions_not_read"]}
    assert "eu-west-1" in home["regions"] and "eu-west-1" not in why  # read by the run before the exclusion
    assert why["ap-south-1"] == "not in the scan's --regions"
    assert [r["kind"] for r in doc["out_of_scope"]] == ["account", "region", "resource"]


def _day(result):
    from auditbook.store.db import open_engine
    from auditbook.store.runs import get
    from auditbook.store.session import reading
    with reading(open_engine(result.db_url)) as session:
        return get(session, result.run_id).started_at.date()
