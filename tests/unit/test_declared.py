"""auditbook.evaluate.declared on plain records and findings: parsing a control tag's value (hostile
input), the state of each declared (resource, criterion), account-wide findings, the in-scope types and
the annotation of findings."""
from __future__ import annotations

import pytest

from auditbook.catalog.model import load_catalog
from auditbook.evaluate.declared import (
    TAGS_NOT_READ,
    Observed,
    annotate,
    control_tag_key,
    declared_view,
    parse_declaration,
    type_coverage,
)
from auditbook.plugins import resource_types
from tests.unit.test_declared_store import CATALOG

CRITERIA = {"CC6.1", "CC6.6", "CC7.2", "A1.2"}
ACCOUNT = "111122223333"
ACCOUNT_CHECK = """
  - id: s3-some-bucket-blocked
    title: The account has at least one blocked bucket
    controls: [CC7.2]
    resource: aws.s3.bucket
    scope: account
    expect: "length(resources[?public_access_blocked]) > `0`"
    severity: low
    remediation: Block public access on at least one bucket.
    actions: [s3:ListAllMyBuckets, s3:GetBucketPublicAccessBlock]
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("cat") / "controls.yaml"
    path.write_text(CATALOG + ACCOUNT_CHECK)
    return load_catalog(path)


def bucket(name: str, tags: dict, account: str = ACCOUNT) -> Observed:
    return Observed("aws.s3.bucket", account, "us-east-1", f"arn:aws:s3:::{name}", name, tags)


def finding(check: str, status: str, res: Observed, controls: list[str], message: str = "m") -> dict:
    return {"check": check, "status": status, "account": res.account, "resource_type": res.resource_type,
            "resource": res.resource, "controls": controls, "message": message}


def account_finding(check: str, status: str, account: str, controls: list[str]) -> dict:
    return {"check": check, "status": status, "account": account, "resource_type": "aws.s3.bucket",
            "resource": f"account {account}", "controls": controls, "message": "account-wide"}


@pytest.mark.parametrize("value,found,reasons", [
    ("CC6.1", ["CC6.1"], []),
    (" CC6.1 ,CC6.6\tA1.2 ", ["CC6.1", "CC6.6", "A1.2"], []),
    ("CC6.1,CC6.1", ["CC6.1"], []),
    ("", [], ["the tag is empty: no criterion declared"]),
    (" , ", [], ["the tag is empty: no criterion declared"]),
    ("cc6.1", [], ["'cc6.1' is not a criterion id (ids are upper case: CC6.1)"]),
    ("CC6.10", [], ["'CC6.10' is not a criterion of the catalog"]),
    ("CC6.1;CC6.6", [], ["'CC6.1;CC6.6' is not a criterion id"]),
    ("CC6.1\u202eA1.2", [], ["'CC6.1\\u202eA1.2' is not a criterion id"]),
])
def test_a_control_tag_value_is_read_strictly(value, found, reasons):
    assert parse_declaration(value, CRITERIA) == (found, reasons)


def test_a_huge_value_is_cut_and_its_reasons_are_short(catalog):
    res = bucket("huge", {"SOC2_Control": " ".join(f"X{i}" for i in range(5000))})
    view = declared_view(catalog, [res], [], "SOC2_Control", resource_types())
    [row] = view["invalid"]
    assert row["reason"].endswith("more") and len(row["reason"]) < 400
    assert len(row["value"]) < 160 and row["value"].startswith("'X0 X1")


def test_the_worst_finding_of_the_criterion_decides_and_other_criteria_do_not(catalog):
    res = bucket("pay-data", {"SOC2_Control": "CC6.6,A1.2"})
    found = [finding("s3-bucket-public-access-block", "ERROR", res, ["CC6.6"]),
             finding("s3-default-encryption", "FAIL", res, ["CC6.1"]),  # CC6.1 is not declared
             finding("s3-data-versioning", "EXCEPTED", res, ["A1.2"])]
    view = declared_view(catalog, [res], found, "SOC2_Control", resource_types())
    states = {r["criterion"]: r["state"] for r in view["declared"]}
    assert states == {"CC6.6": "ERROR", "A1.2": "EXCEPTED"}
    assert [(r["criterion"], r["state"]) for r in view["failing"]] == [("CC6.6", "ERROR")]


def test_an_account_wide_finding_evidences_the_resources_of_its_type_in_its_account_only(catalog):
    mine, theirs = bucket("logs-a", {"SOC2_Control": "CC7.2"}), bucket("logs-b", {"SOC2_Control": "CC7.2"}, "999988887777")
    found = [account_finding("s3-some-bucket-blocked", "FAIL", ACCOUNT, ["CC7.2"])]
    view = declared_view(catalog, [mine, theirs], found, "SOC2_Control", resource_types())
    [failing] = view["failing"]
    assert failing["name"] == "logs-a" and failing["checks"][0]["account_wide"] is True
    [unseen] = view["not_evidenced"]
    assert unseen["name"] == "logs-b"
    assert unseen["reason"] == ("the checks of CC7.2 that read aws.s3.bucket (s3-some-bucket-blocked) do not "
                                "apply to it")


def test_findings_of_checks_no_longer_in_the_catalog_are_ignored(catalog):
    res = bucket("gone", {"SOC2_Control": "CC6.6"})
    view = declared_view(catalog, [res], [finding("retired-check", "FAIL", res, ["CC6.6"])], "SOC2_Control",
                         resource_types())
    assert [r["state"] for r in view["declared"]] == ["NOT_EVIDENCED"]


def test_the_tag_key_is_the_parameter_and_exact(catalog, tmp_path):
    res = bucket("b", {"Compliance": "CC6.6", "SOC2_Control": "CC7.2"})
    view = declared_view(catalog, [res], [], "Compliance", resource_types())
    assert [r["criterion"] for r in view["declared"]] == ["CC6.6"] and view["tag_key"] == "Compliance"
    assert control_tag_key(catalog) == "SOC2_Control"  # a catalog that does not declare it: the default
    path = tmp_path / "controls.yaml"
    path.write_text("parameters:\n  control_tag_key: {type: string, default: Compliance, minimum: 1, maximum: 128,"
                    " description: the tag key}\n" + CATALOG)
    assert control_tag_key(load_catalog(path)) == "Compliance"


def test_only_listed_types_with_collected_tags_are_in_scope(catalog):
    in_scope, no_tags = type_coverage(load_catalog(), resource_types())
    specs = resource_types()
    assert all(specs[t].list is not None and specs[t].tags for t in in_scope)
    assert "aws.s3.bucket" in in_scope and "aws.s3.account_public_access_block" not in in_scope  # a singleton
    assert not set(in_scope) & set(TAGS_NOT_READ)
    assert {t["resource_type"] for t in no_tags} >= {t for t in TAGS_NOT_READ if t in specs}


@pytest.mark.parametrize("rtype", sorted(TAGS_NOT_READ))
def test_a_type_listed_as_not_reading_tags_still_does_not(rtype):
    """When a collector starts reading a type's tags, it leaves TAGS_NOT_READ (or its resources stay
    out of the untagged list for no reason)."""
    spec = resource_types().get(rtype)
    assert spec is not None, f"{rtype} is no longer collected: remove it from TAGS_NOT_READ"
    assert not any("tag" in call.method.lower() for call in spec.calls()), f"{rtype} reads tags now"


def test_annotate_names_declared_criteria_and_flags_only_a_fail_of_one(catalog):
    res = bucket("a", {"SOC2_Control": "CC6.6"})
    found = [finding("s3-bucket-public-access-block", "FAIL", res, ["CC6.6"]),
             finding("s3-default-encryption", "FAIL", res, ["CC6.1"]),
             account_finding("s3-some-bucket-blocked", "FAIL", ACCOUNT, ["CC7.2"])]
    view = declared_view(catalog, [res], found, "SOC2_Control", resource_types())
    rows = annotate(found, view)
    assert [(r["declared_criteria"], r["fails_declared"]) for r in rows] == [
        (["CC6.6"], ["CC6.6"]), (["CC6.6"], []), ([], [])]
    passing = annotate([{**found[0], "status": "PASS"}], view)
    assert passing[0]["fails_declared"] == []


def test_the_view_is_deterministic_whatever_the_order_read(catalog):
    resources = [bucket(n, {"SOC2_Control": "CC6.6 A1.2"}) for n in ("c", "a", "b")]
    one = declared_view(catalog, resources, [], "SOC2_Control", resource_types())
    other = declared_view(catalog, list(reversed(resources)), [], "SOC2_Control", resource_types())
    assert one == other
    assert [(r["criterion"], r["name"]) for r in one["declared"]] == [
        ("CC6.6", "a"), ("CC6.6", "b"), ("CC6.6", "c"), ("A1.2", "a"), ("A1.2", "b"), ("A1.2", "c")]


def test_untagged_lists_only_listed_types_a_check_reads_and_whose_tags_are_collected(catalog):
    bare = bucket("bare", {})
    others = [Observed("aws.kms.key", ACCOUNT, "us-east-1", "arn:aws:kms:us-east-1:1:key/k", "k", {}),  # tags not read
              Observed("aws.ec2.vpc", ACCOUNT, "us-east-1", "vpc-1", "v", {}),  # no check of this catalog reads VPCs
              Observed("aws.s3.account_public_access_block", ACCOUNT, "global", ACCOUNT, "account", {})]  # singleton
    view = declared_view(catalog, [bare, *others], [], "SOC2_Control", resource_types())
    assert [r["name"] for r in view["untagged"]] == ["bare"]


def test_a_key_in_another_letter_case_declares_nothing_and_says_why(catalog):
    res = bucket("case", {"soc2_CONTROL": "CC6.6"})
    view = declared_view(catalog, [res], [], "SOC2_Control", resource_types())
    assert view["declared"] == [] and view["untagged"] == []
    [row] = view["invalid"]
    assert row["reason"] == "tag key 'soc2_CONTROL' is not SOC2_Control (tag keys are case-sensitive)"
