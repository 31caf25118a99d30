"""The change population declares its completeness (issue 14 §3): per account and region in scope, the
CloudTrail input the store read over the period, and every interval no input covered listed as a
completeness limit — in the population CSV's heading lines and in what the criterion page reads. The
access population's IAM write events say what they did to someone's access (joiner, leaver, …)."""
import datetime as dt

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history.period import parse_period
from auditbook.history.populations import (
    access_change_kind,
    change_completeness,
    population,
    read_csv,
    rows_sha256,
    write_csv,
)
from auditbook.store import changes as stored_changes
from auditbook.store.session import writing

UTC = dt.timezone.utc
A = "111111111111"
Q4 = parse_period("2026Q4")
END = dt.datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    from auditbook.collect.records import GLOBAL, Collection, Scope
    from auditbook.evaluate.risk_register import load_register
    from auditbook.scan import record_run
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/c.db")
    at = dt.datetime(2026, 10, 5, 6, tzinfo=UTC)
    scopes = [Scope(A, "eu-west-1", "aws.ec2.security_group"), Scope(A, "ap-south-1", "aws.ec2.security_group"),
              Scope(A, GLOBAL, "aws.iam.user")]
    record_run(engine, load_catalog(), load_register(tmp_path / "none.yaml"), Collection(scopes=scopes), [],
               {"regions": ["eu-west-1", "ap-south-1"]}, at, at + dt.timedelta(minutes=1))
    with writing(engine) as session:  # eu-west-1 read but for 3-4 November; us-east-1 (global calls) never
        stored_changes.add_coverage(session, [
            {"account": A, "region": "eu-west-1", "first_at": dt.datetime(2026, 10, 1, tzinfo=UTC) + dt.timedelta(days=d),
             "last_at": dt.datetime(2026, 10, 2, tzinfo=UTC) + dt.timedelta(days=d), "source": f"s3://logs/{d}",
             "records": 10, "unread": 0}
            for d in range(92) if d not in (33, 34)])
    return engine


def test_every_interval_no_cloudtrail_input_covered_is_a_completeness_limit(engine):
    found = change_completeness(engine, Q4, now=END + dt.timedelta(days=30))
    assert [(p["account"], p["region"], p["gaps"]) for p in found["accounts_regions"]] == [
        (A, "ap-south-1", 1), (A, "eu-west-1", 1), (A, "us-east-1", 1)]  # global services log in us-east-1
    limits = {(x["region"], x["from"], x["to"]) for x in found["limits"]}
    assert limits == {("eu-west-1", "2026-11-03T00:00:00+00:00", "2026-11-05T00:00:00+00:00"),
                      ("us-east-1", "2026-10-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
                      ("ap-south-1", "2026-10-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")}
    never = next(x for x in found["limits"] if x["region"] == "us-east-1")
    assert "never logged" in never["reason"] and found["complete"] is False
    while_running = change_completeness(engine, Q4, now=dt.datetime(2026, 11, 4, tzinfo=UTC))
    assert {x["to"] for x in while_running["limits"]} == {"2026-11-04T00:00:00+00:00"}  # the period so far


def test_a_region_put_out_of_scope_is_not_a_limit(engine):
    from auditbook.history.scope import exclude
    with freeze_time("2026-09-30 12:00:00"):  # out of scope for the whole quarter
        exclude(engine, Actor("root", "admin"), "region", "ap-south-1", reason="no workloads there")
    found = change_completeness(engine, Q4, now=END)
    assert "ap-south-1" not in {p["region"] for p in found["accounts_regions"]}


def test_a_region_out_of_scope_for_part_of_the_period_keeps_its_limits(engine):
    """An attack pass hid a region's coverage gaps with a one-minute exclusion: only an exclusion that
    covers the whole period removes a region from the completeness."""
    from auditbook.history.scope import exclude, include
    with freeze_time("2026-11-10 10:00:00"):
        exclude(engine, Actor("root", "admin"), "region", "ap-south-1", reason="no workloads there")
    with freeze_time("2026-11-10 10:01:00"):
        include(engine, Actor("root", "admin"), "region", "ap-south-1", reason="it has workloads after all")
    found = change_completeness(engine, Q4, now=END)
    assert "ap-south-1" in {p["region"] for p in found["accounts_regions"]}


def test_no_run_means_completeness_unknown(tmp_path):
    from auditbook.store.db import open_engine
    found = change_completeness(open_engine(f"sqlite:///{tmp_path}/e.db"), Q4, now=END)
    assert (found["accounts_regions"], found["complete"]) == ([], False) and "unknown" in found["note"]


def test_the_population_csv_is_headed_by_its_limits_and_reads_back_to_its_hash(engine, tmp_path):
    pop = population(engine, load_catalog(), "changes", Q4)
    assert pop.completeness and len(pop.completeness["limits"]) == 3
    path = tmp_path / "population-changes.csv"
    write_csv(pop, path)
    lines = path.read_text().splitlines()  # each heading line one cell (quoted: it holds commas)
    assert lines[0].startswith('"# completeness: CloudTrail input read by the store') and "3 interval(s) not covered" in lines[0]
    assert sum(line.lstrip('"').startswith("# not covered: account 111111111111 region ") for line in lines) == 3
    assert lines[4].startswith("id,event_id,")
    assert rows_sha256(read_csv(path)) == pop.sha256


def test_the_criterion_page_reads_the_completeness_of_its_change_population(engine):
    from auditbook.history.sampling import criterion_samples
    shown = criterion_samples(engine, load_catalog(), "CC8.1", Q4)
    assert shown["kind"] == "changes" and len(shown["completeness"]["limits"]) == 3
    assert shown["completeness_lines"][0].startswith("completeness: ")


@pytest.mark.parametrize("name,kind", [("CreateUser", "joiner"), ("CreateLoginProfile", "joiner"),
                                       ("AddUserToGroup", "joiner"), ("DeleteUser", "leaver"),
                                       ("RemoveUserFromGroup", "leaver"), ("CreateAccessKey", "credential"),
                                       ("AttachUserPolicy", "permission"), ("PutUserPolicy", "permission"),
                                       ("UpdateAssumeRolePolicy", "permission"), ("TagUser", "other")])
def test_each_access_change_says_what_it_did(name, kind):
    assert access_change_kind(name) == kind


def test_the_access_population_lists_joiners_and_leavers_with_their_ticket(engine):
    from tests.unit.test_populations import write_event
    joiner = write_event(engine, name="CreateUser", source="iam.amazonaws.com", request={"userName": "new-joiner"},
                         at=dt.datetime(2026, 11, 2, 9, tzinfo=UTC), session_name="onboard-HR-42")
    write_event(engine, name="DeleteUser", source="iam.amazonaws.com", request={"userName": "leaver"},
                at=dt.datetime(2026, 11, 3, 9, tzinfo=UTC))
    rows = {r["event_name"]: r for r in population(engine, load_catalog(), "access", Q4).rows if r["record"] == "access change"}
    assert (rows["CreateUser"]["change_kind"], rows["CreateUser"]["ticket"], rows["CreateUser"]["linked"]) == (
        "joiner", "HR-42", "true")
    assert rows["CreateUser"]["principal"].endswith(":user/new-joiner") and rows["CreateUser"]["at"].startswith("2026-11-02")
    assert (rows["DeleteUser"]["change_kind"], rows["DeleteUser"]["linked"]) == ("leaver", "false")
    assert rows["CreateUser"]["id"] == f"access-change-{joiner['event_id']}"
