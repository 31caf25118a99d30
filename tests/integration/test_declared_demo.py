"""The demo organisation's control tags (auditbook/demo/estate_declared.py) read back as the declared
view says they should: failing in staging, passing in prod-us-east, PI1.1 declared but not evidenced,
a typo reported, and the untagged resources of the checked types listed (in-process moto, one scan)."""
from __future__ import annotations

import os

import pytest

from auditbook.demo.estate_declared import DECLARED, INVALID


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from moto import mock_aws

    from auditbook.catalog.model import load_catalog
    from auditbook.demo.estate import REGIONS, ROLE, build
    from auditbook.history.declared import declared
    from auditbook.scan import run_scan
    from auditbook.store.db import open_engine
    from tests.conftest import FAKE_ENV
    old = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        with mock_aws():
            import boto3
            ids = build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
            db = f"sqlite:///{tmp_path_factory.mktemp('demo')}/a.db"
            result = run_scan(org_role=ROLE, regions=",".join(REGIONS), db=db)
        view = declared(open_engine(db, create=False), load_catalog(), "latest")
        yield {"ids": ids, "view": view, "findings": result.findings}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.parametrize("account,name,criterion,state", DECLARED, ids=[f"{n}:{c}" for _, n, c, _ in DECLARED])
def test_each_declared_resource_has_its_state(demo, account, name, criterion, state):
    rows = [r for r in demo["view"]["declared"] if r["account"] == demo["ids"][account] and r["name"] == name
            and r["criterion"] == criterion]
    assert rows and {r["state"] for r in rows} == {state}, rows


def test_the_lists_hold_the_demo_cases_and_nothing_declared_elsewhere(demo):
    view, ids = demo["view"], demo["ids"]
    names = {v: k for k, v in ids.items()}
    declared = {(names[r["account"]], r["name"], r["criterion"]) for r in view["declared"]}
    assert declared == {(a, n, c) for a, n, c, _ in DECLARED}
    assert {(names[r["account"]], r["name"]) for r in view["failing"]} == {
        (a, n) for a, n, _, s in DECLARED if s in ("FAIL", "ERROR")}
    assert {(names[r["account"]], r["name"]) for r in view["invalid"]} == set(INVALID)
    assert [r["reason"] for r in view["invalid"]] == [
        "'cc6.1' is not a criterion id (ids are upper case: CC6.1); 'CC6.10' is not a criterion of the catalog"]
    untagged = {(names[r["account"]], r["name"]) for r in view["untagged"]}
    assert ("staging", "staging-db") in untagged and ("prod-us-east", "prod-customer-data") not in untagged
    assert not {(a, n) for a, n, _, _ in DECLARED} & untagged


def test_the_tagged_resources_fail_only_their_planted_checks(demo):
    """Tagging changes no verdict: a FAIL on a resource this area tags is a planted one (the whole
    estate's rule is tests/unit/test_demo_estate.py's)."""
    from auditbook.demo.estate import PLANTED, SIMULATION_ARTEFACTS
    names = {v: k for k, v in demo["ids"].items()}
    tagged = {(a, n) for a, n, _, _ in DECLARED} | set(INVALID)
    fails = {(f.check, names[f.account], f.resource_name) for f in demo["findings"] if f.status == "FAIL"
             and (names[f.account], f.resource_name) in tagged and f.check not in SIMULATION_ARTEFACTS}
    assert fails and fails <= set(PLANTED), fails - set(PLANTED)
