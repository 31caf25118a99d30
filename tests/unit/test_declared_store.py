"""Declared controls read from a stored run (history/declared.py), through the CLI (`auditbook declared`)
and annotated findings: a real scan under in-process moto of buckets and security groups carrying the
control tag in every shape — declared and failing, declared and passing, declared for a criterion no
check reads, excluded by a check's applies, untagged, a typo, a key in the wrong case, an HTML payload.

build_declared_store is shared with tests/unit/test_declared_app.py."""
from __future__ import annotations

import json
import os

import pytest

EVIL = "<img src=x onerror=alert(1)>"
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
CATALOG = """
version: 1
framework: declared controls test catalog
controls:
  - {id: CC6.1, category: security, group: CC6 Logical access, title: Logical access security, owner: Security,
     test_procedure: Inspect encryption at rest of every data store in scope.}
  - {id: CC6.6, category: security, group: CC6 Logical access, title: Threats from outside the boundary,
     owner: Security, test_procedure: Inspect public access settings of every data store in scope.}
  - {id: CC7.2, category: security, group: CC7 System operations, title: Monitoring for anomalies, owner: Security,
     test_procedure: Inspect the monitoring of the system components in scope.}
  - {id: A1.2, category: availability, group: A1 Availability, title: Backups and recovery infrastructure,
     owner: Operations, test_procedure: Inspect versioning and backups of every data store in scope.}
checks:
  - id: s3-default-encryption
    title: S3 buckets have default encryption configured
    controls: [CC6.1]
    resource: aws.s3.bucket
    expect: "length(encryption_algorithms) > `0`"
    severity: high
    remediation: Configure default encryption on the bucket.
    actions: [s3:ListAllMyBuckets, s3:GetEncryptionConfiguration]
  - id: s3-bucket-public-access-block
    title: S3 buckets block all public access
    controls: [CC6.6]
    resource: aws.s3.bucket
    expect: "public_access_blocked"
    severity: high
    remediation: Turn on all four Block Public Access settings for the bucket.
    actions: [s3:ListAllMyBuckets, s3:GetBucketPublicAccessBlock]
  - id: s3-data-versioning
    title: Data buckets keep versions
    controls: [A1.2]
    resource: aws.s3.bucket
    applies: "contains(Name, 'data')"
    expect: "versioning_status == 'Enabled'"
    severity: medium
    remediation: Enable versioning on the bucket.
    actions: [s3:ListAllMyBuckets, s3:GetBucketVersioning]
  - id: ec2-sg-no-public-ingress
    title: Security groups allow no ingress from the internet
    controls: [CC6.6]
    resource: aws.ec2.security_group
    expect: "length(public_ingress) == `0`"
    severity: high
    remediation: Remove the rule open to the internet.
    actions: [ec2:DescribeSecurityGroups]
"""
# bucket name -> (its tags, whether its public access is blocked)
BUCKETS = {
    "open-declared": ({"SOC2_Control": "CC6.6"}, False),          # declared, FAIL on CC6.6
    "blocked-declared": ({"SOC2_Control": "CC6.6"}, True),        # declared, PASS
    "monitored-only": ({"SOC2_Control": "CC7.2"}, True),          # no check of CC7.2 reads buckets
    "archive-logs": ({"SOC2_Control": "A1.2"}, True),             # the A1.2 check applies to data buckets only
    "untagged-bucket": ({"Team": "data"}, True),                  # in scope, no control tag
    "typo-bucket": ({"SOC2_Control": "cc6.1,CC6.10 CC6.6"}, True),  # two bad ids, CC6.6 still declared
    "case-bucket": ({"soc2_control": "CC6.6"}, True),             # the key in another letter case
}


def build_declared_store(db: str, catalog_path) -> None:
    """One scan of the buckets above and two security groups (one named and tagged with an HTML
    payload, declared CC6.6 and open to the world) into the store `db`."""
    from moto import mock_aws

    from tests.conftest import FAKE_ENV
    old = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        with mock_aws():
            import boto3

            from auditbook.scan import run_scan
            s = boto3.Session(region_name="us-east-1")
            s3, ec2 = s.client("s3"), s.client("ec2")
            for name, (tags, blocked) in BUCKETS.items():
                s3.create_bucket(Bucket=name)
                s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
                if blocked:
                    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=BLOCK_ALL)
            vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
            sg = ec2.create_security_group(GroupName=EVIL, Description="x", VpcId=vpc, TagSpecifications=[
                {"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": EVIL},
                                                            {"Key": "SOC2_Control", "Value": f"CC6.6 {EVIL}"}]}])["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            run_scan(regions="us-east-1", db=db, catalog_path=catalog_path)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from auditbook.catalog.model import load_catalog
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("declared")
    (root / "controls.yaml").write_text(CATALOG)
    db = f"sqlite:///{root}/store.db"
    build_declared_store(db, root / "controls.yaml")
    return {"db": db, "engine": open_engine(db, create=False), "catalog": load_catalog(root / "controls.yaml"),
            "catalog_path": root / "controls.yaml"}


@pytest.fixture(scope="module")
def view(store):
    from auditbook.history.declared import declared
    return declared(store["engine"], store["catalog"], "latest")


def _rows(rows, name, criterion=None):
    return [r for r in rows if r["name"] == name and (criterion is None or r["criterion"] == criterion)]


def test_a_declared_resource_failing_its_criterion_is_listed_with_the_failing_check(view):
    [row] = _rows(view["failing"], "open-declared", "CC6.6")
    assert row["state"] == "FAIL"
    assert [(c["check"], c["status"]) for c in row["checks"]] == [("s3-bucket-public-access-block", "FAIL")]
    [sg] = _rows(view["failing"], EVIL, "CC6.6")
    assert sg["resource_type"] == "aws.ec2.security_group" and sg["checks"][0]["check"] == "ec2-sg-no-public-ingress"


def test_a_declared_resource_passing_its_criterion_is_not_failing(view):
    [row] = _rows(view["declared"], "blocked-declared", "CC6.6")
    assert row["state"] == "PASS" and not _rows(view["failing"], "blocked-declared")


def test_a_declared_criterion_no_check_reads_is_not_evidenced(view):
    [row] = _rows(view["not_evidenced"], "monitored-only", "CC7.2")
    assert row["reason"] == "no check of CC7.2 reads aws.s3.bucket"


def test_a_declared_criterion_whose_checks_do_not_apply_is_not_evidenced(view):
    [row] = _rows(view["not_evidenced"], "archive-logs", "A1.2")
    assert row["reason"] == "the checks of A1.2 that read aws.s3.bucket (s3-data-versioning) do not apply to it"


def test_in_scope_resources_without_the_tag_are_listed(view):
    names = {r["name"] for r in view["untagged"]}
    assert "untagged-bucket" in names
    assert not names & {"open-declared", "typo-bucket", "case-bucket", EVIL}
    # the VPC's default security group carries no tag: in scope (a check reads security groups)
    assert any(r["resource_type"] == "aws.ec2.security_group" and r["name"] != EVIL for r in view["untagged"])


def test_tag_values_that_are_not_criteria_get_a_reason(view):
    [typo] = _rows(view["invalid"], "typo-bucket")
    assert typo["reason"] == ("'cc6.1' is not a criterion id (ids are upper case: CC6.1); "
                              "'CC6.10' is not a criterion of the catalog")
    assert _rows(view["declared"], "typo-bucket", "CC6.6")  # the valid id in the same value still counts
    [case] = _rows(view["invalid"], "case-bucket")
    assert case["reason"] == "tag key 'soc2_control' is not SOC2_Control (tag keys are case-sensitive)"
    assert not _rows(view["declared"], "case-bucket")
    [evil] = _rows(view["invalid"], EVIL)
    assert evil["reason"].startswith("'<img") and "is not a criterion id" in evil["reason"]


def test_per_criterion_counts_and_types_whose_tags_are_not_read(view):
    counts = {c["criterion"]: c for c in view["criteria"]}
    assert counts["CC6.6"]["declared"] == 4 and counts["CC6.6"]["fail"] == 2 and counts["CC6.6"]["pass"] == 2
    assert counts["CC7.2"]["not_evidenced"] == 1 and "CC6.1" not in counts
    assert view["tag_key"] == "SOC2_Control" and view["run"] >= 1


def test_findings_carry_their_resources_declared_criteria_and_flag_a_declared_failure(store):
    from auditbook.history.declared import annotated_findings
    _, rows = annotated_findings(store["engine"], store["catalog"], "latest")
    by = {(r["check"], r["resource_name"]): r for r in rows}
    open_block = by[("s3-bucket-public-access-block", "open-declared")]
    assert open_block["declared_criteria"] == ["CC6.6"] and open_block["fails_declared"] == ["CC6.6"]
    # a FAIL of a criterion the resource does not declare is not flagged
    open_enc = by[("s3-default-encryption", "open-declared")]
    assert open_enc["status"] == "FAIL" and open_enc["fails_declared"] == []
    passing = by[("s3-bucket-public-access-block", "blocked-declared")]
    assert passing["declared_criteria"] == ["CC6.6"] and passing["fails_declared"] == []
    assert by[("s3-bucket-public-access-block", "untagged-bucket")]["declared_criteria"] == []


def test_the_cli_prints_the_lists_escaped_and_json_in_full(store, capsys, monkeypatch):
    from tests.conftest import run_main
    args = ("declared", "--db", store["db"], "--catalog", str(store["catalog_path"]))
    code, out, err = run_main(capsys, monkeypatch, *args)
    assert code == 0, err
    assert "failing their criterion 2" in out and "not evidenced by any check 2" in out
    assert "open-declared" in out and EVIL in out and "[/" not in out
    code, out, _ = run_main(capsys, monkeypatch, *args, "--format", "json", "--criterion", "CC7.2")
    doc = json.loads(out)
    assert code == 0 and [r["name"] for r in doc["declared"]] == ["monitored-only"]
    code, _, err = run_main(capsys, monkeypatch, *args, "--criterion", "CC6.10")
    assert code == 2 and "--criterion: 'CC6.10' is not a criterion of the catalog" in err
    code, _, err = run_main(capsys, monkeypatch, *args, "--run", "x1")
    assert code == 2 and "--run" in err and "Traceback" not in err


def test_the_tags_read_for_declared_controls_are_those_of_the_whole_collection(store):
    """history.declared reads each record's type, place, names and tags only (store.scan_records.tagged_at),
    not the run's whole collection: the same resources, in the same order, with the same tags."""
    from auditbook.plugins import resource_types
    from auditbook.store import scan_records
    from auditbook.store.session import reading
    types = [n for n, spec in resource_types().items() if spec.tags]
    with reading(store["engine"]) as session:
        whole = scan_records.collection_at(session, 1, types)
        light = scan_records.tagged_at(session, 1, types)
    assert light == [(r.type, r.account, r.region, r.arn, r.name, r.tags) for r in whole.records]
    assert any(tags.get("SOC2_Control") for *_, tags in light) and len(light) >= 5


def test_a_run_without_any_control_tag_reads_no_findings(store, monkeypatch):
    """Nothing carries the tag: the findings (a 1,000-account run's largest read) are not read at all."""
    from auditbook.history import declared as history_declared
    from auditbook.store import findings
    calls = []
    monkeypatch.setattr(findings, "at_run", lambda *a, **k: calls.append(a) or [])
    real_key = history_declared.control_tag_key
    monkeypatch.setattr(history_declared, "control_tag_key", lambda catalog: "No_Such_Tag_Key")
    view = history_declared.declared_at(store["engine"], store["catalog"], 1)
    assert calls == [] and view["declared"] == [] and view["untagged"]
    monkeypatch.setattr(history_declared, "control_tag_key", real_key)
    history_declared.declared_at(store["engine"], store["catalog"], 1)
    assert len(calls) == 1
