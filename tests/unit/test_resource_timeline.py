"""The change behind a finding: a resource's timeline (its stored states, each change with the fields it
changed, the CloudTrail write events in that interval — who, when, from where, which call, session,
ticket — or the gap where no log covers it), in the service, the CLI and the control room's page for every
role. The store: tests/resource_timeline_store.py (real scans under moto, CloudTrail read by `watch`)."""
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from auditbook.auth import Actor
from auditbook.errors import UserError
from auditbook.evaluate.tickets import ticket_of, ticket_pattern
from auditbook.history.record_diff import diff
from auditbook.history.resource_timeline import (
    resources_touched,
    timeline,
    window_bound,
)
from auditbook.store.db import open_engine
from tests.resource_timeline_store import ROLE_ARN, SESSION, SOURCE_IP, build_store, day

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("timeline")
    info = build_store(f"sqlite:///{root}/store.db")
    return dict(info, engine=open_engine(info["db"]))


def test_the_regression_shows_who_opened_the_port_when_and_from_where(store):
    found = timeline(store["engine"], store["arn"])
    assert [s["first_run"] for s in found["states"]] == [1, 2, 3]
    kinds = [(c["kind"], c["from_run"], c["to_run"]) for c in found["changes"]]
    assert kinds == [("first_seen", None, 1), ("modified", 1, 2), ("modified", 2, 3)]
    opened = found["changes"][1]
    assert [(d["path"], d["change"]) for d in opened["diff"]] == [("IpPermissions[1]", "added"),
                                                                   ("public_ingress[1]", "added")]
    assert opened["diff"][1]["new"] == {"cidr": "0.0.0.0/0", "from_port": 22, "protocol": "tcp", "to_port": 22}
    [event] = opened["events"]
    assert (event["event_name"], event["principal"], event["principal_type"], event["source_ip"]) == \
        ("AuthorizeSecurityGroupIngress", ROLE_ARN, "AssumedRole", SOURCE_IP)
    assert (event["session_name"], event["ticket"], event["ticket_from"]) == (SESSION, "CHG-1042", "session name")
    assert event["at"] == day(1) + dt.timedelta(hours=9, minutes=41, seconds=7) and event["error_code"] == ""
    assert event["user_agent"].isprintable() and "\x1b" not in event["user_agent"]
    assert event["request"]["groupId"] == store["group_id"]
    assert opened["coverage"]["covered"] and opened["coverage"]["gaps"] == []
    # the port closed again: no CloudTrail log read for that day, so the author is an evidence gap
    closed = found["changes"][2]
    assert [(d["path"], d["change"]) for d in closed["diff"]] == [("IpPermissions[1]", "removed"),
                                                                   ("public_ingress[1]", "removed")]
    assert closed["events"] == [] and not closed["coverage"]["covered"]
    assert closed["coverage"]["gaps"][0]["to"] >= day(3) and found["other_events"] == []
    assert found["changes"][0]["coverage"] is None and found["changes"][0]["diff"] == []


def test_the_window_keeps_the_changes_that_overlap_it(store):
    found = timeline(store["engine"], store["arn"], since=day(2) + dt.timedelta(hours=1))
    assert [c["to_run"] for c in found["changes"]] == [3]
    found = timeline(store["engine"], store["arn"], until=day(1) + dt.timedelta(hours=12))
    assert [c["to_run"] for c in found["changes"]] == [1, 2]
    assert [e["event_name"] for e in found["changes"][1]["events"]] == ["AuthorizeSecurityGroupIngress"]
    with pytest.raises(UserError, match="--from: is after --to"):
        timeline(store["engine"], store["arn"], since=day(3), until=day(1))


def test_a_page_of_changes_reads_only_its_own_in_full_and_keeps_events_with_their_change(store):
    whole = timeline(store["engine"], store["arn"])
    newest = timeline(store["engine"], store["arn"], page=1, page_size=2)
    assert [c["to_run"] for c in newest["changes"]] == [2, 3] and (newest["changes_total"], newest["pages"]) == (3, 2)
    assert newest["changes"] == whole["changes"][1:] and newest["other_events"] == []
    oldest = timeline(store["engine"], store["arn"], page=2, page_size=2)
    assert [c["to_run"] for c in oldest["changes"]] == [1] and oldest["changes"][0]["coverage"] is None
    assert timeline(store["engine"], store["arn"], page=3, page_size=2)["changes"] == []
    assert (whole["changes_total"], whole["pages"]) == (3, 1)


def test_the_alerts_cloudtrail_records_lead_to_the_resources_they_touched(store):
    assert resources_touched(store["engine"], [store["event_id"], "unknown"]) == {store["event_id"]: [store["arn"]]}


def test_a_resource_the_store_never_saw_is_a_one_line_error(store):
    with pytest.raises(UserError, match="no stored state of 'arn:aws:ec2:nowhere'"):
        timeline(store["engine"], "arn:aws:ec2:nowhere")
    with pytest.raises(UserError, match="--type: 'aws.s3.bucket' is not a type stored"):
        timeline(store["engine"], store["arn"], "aws.s3.bucket")


def test_the_ticket_reference_comes_from_the_session_name_or_a_request_tag(monkeypatch):
    pattern = ticket_pattern()
    assert ticket_of({"session_name": "bob-OPS2-311", "tags": {"t": "CHG-1"}}, pattern) == ("OPS2-311", "session name")
    assert ticket_of({"session_name": "bob", "tags": {"change": "see CHG-77"}}, pattern) == ("CHG-77", "tag change")
    assert ticket_of({"session_name": "", "tags": None}, pattern) == (None, None)
    monkeypatch.setenv("AUDITBOOK_TICKET_PATTERN", r"#\d+")
    assert ticket_of({"session_name": "deploy #4411"}, ticket_pattern()) == ("#4411", "session name")
    monkeypatch.setenv("AUDITBOOK_TICKET_PATTERN", "(")
    with pytest.raises(UserError, match="AUDITBOOK_TICKET_PATTERN: '\\(' is not a regular expression"):
        ticket_pattern()
    with pytest.raises(UserError, match="--ticket-pattern: 201 characters"):
        ticket_pattern("x" * 201)


@pytest.mark.parametrize("text", [r"([A-Z]+[A-Z0-9]*)+-[0-9]+", r"(a+)+", r"(?:CHG-\d*){2,}", r"((x)*)+"])
def test_a_ticket_pattern_that_repeats_a_repetition_is_refused(text, monkeypatch):
    with pytest.raises(UserError, match=r"--ticket-pattern: .* repeats a group that holds a repetition"):
        ticket_pattern(text)
    monkeypatch.setenv("AUDITBOOK_TICKET_PATTERN", text)
    with pytest.raises(UserError, match=r"^AUDITBOOK_TICKET_PATTERN: "):
        ticket_pattern()


def test_ticket_patterns_without_nested_repetition_are_kept_and_run_on_bounded_text():
    for text in [r"(CHG|INC)-\d+", r"([A-Z]+-)?[0-9]+", r"\(a+\)+", r"[(+]+", r"(?P<t>[A-Z]+)-\d+"]:
        assert ticket_pattern(text).pattern == text
    pattern = ticket_pattern()
    assert ticket_of({"session_name": "x" * 60 + "CHG-1"}, pattern) == (None, None)  # past 64 characters
    assert ticket_of({"session_name": "x" * 58 + "CHG-1"}, pattern) == ("CHG-1", "session name")
    assert ticket_of({"tags": {"t": "x" * 124 + "CHG-1"}}, pattern) == (None, None)
    assert ticket_of({"tags": {"t": "x" * 123 + "CHG-1"}}, pattern) == ("CHG-1", "tag t")


@pytest.mark.parametrize("text, option", [
    ("0001-01-01T00:00:00+01:00", "--from"), ("9999-12-31T23:59:59-01:00", "--to"), ("9999-12-31", "--to"),
    ("0001-01-01", "--from"), ("1969-12-31T23:59:59Z", "--from")])
def test_times_at_the_edge_of_the_calendar_are_one_line_errors(text, option):
    with pytest.raises(UserError, match=f"^{option}: '{re.escape(text)}' is outside the years 1970-9998$"):
        window_bound(text, option, end=option == "--to")


def test_the_timeline_refuses_window_ends_it_cannot_widen(store):
    with pytest.raises(UserError, match="--to: .* is outside the years"):
        timeline(store["engine"], store["arn"], until=dt.datetime.max.replace(tzinfo=dt.timezone.utc))
    with pytest.raises(UserError, match="--from: .* has no time zone"):
        timeline(store["engine"], store["arn"], since=dt.datetime(2026, 1, 1))


def test_dates_and_times_of_the_window_are_checked():
    assert window_bound("2026-07-04", "--to", end=True) == dt.datetime(2026, 7, 4, 23, 59, 59, tzinfo=dt.timezone.utc)
    assert window_bound("2026-07-04T10:00:00+02:00", "--from") == dt.datetime(2026, 7, 4, 8, tzinfo=dt.timezone.utc)
    for bad in ["2026-13-01", "yesterday", "2026-07-04T10:00:00", "9" * 100]:
        with pytest.raises(UserError, match="--from: .* is not a day"):
            window_bound(bad, "--from")


def test_the_diff_names_field_paths_and_aligns_lists():
    old = {"a": 1, "b": {"c": [1, 2, 3]}, "rules": [{"port": 22}, {"port": 443}], "gone": True, "dot.key": "x"}
    new = {"a": 2, "b": {"c": [0, 1, 2, 3]}, "rules": [{"port": 23}, {"port": 443}], "new": None, "dot.key": "y"}
    assert [(c.path, c.change, c.old, c.new) for c in diff(old, new)] == [
        ("a", "changed", 1, 2), ("b.c[0]", "added", None, 0), ('["dot.key"]', "changed", "x", "y"),
        ("gone", "removed", True, None), ("new", "added", None, None), ("rules[0].port", "changed", 22, 23)]
    assert diff({"x": 1}, {"x": 1}) == [] and diff({"x": 1}, {"x": "1"})[0].change == "changed"


def test_the_diff_of_long_lists_takes_linear_time_and_still_names_the_change():
    import time
    old = {"Rules": [{"p": 22}, {"p": 443}] * 4000}
    new = {"Rules": [{"p": 443}, {"p": 22}] * 4000 + [{"p": 80}]}
    started = time.process_time()
    changes = diff(old, new)
    assert time.process_time() - started < 0.5  # aligning 8,000 × 8,001 elements took 2.3 s
    assert [(c.path, c.change, c.new) for c in changes] == [("Rules[8000]", "added", {"p": 80})]
    rules = [{"p": n} for n in range(3000)]
    moved = rules[:1500] + [{"p": -1}] + rules[1501:]
    assert [(c.path, c.old, c.new) for c in diff(rules, moved)] == [("[1500].p", 1500, -1)]
    shuffled = [{"p": n % 7} for n in range(1200)]
    fewer = [{"p": n % 7} for n in range(1, 1200)][::-1] + [{"p": 9}]
    assert sorted((c.change, json.dumps(c.old or c.new)) for c in diff(shuffled, fewer)) == [
        ("added", '{"p": 9}'), ("removed", '{"p": 0}')]


# -- the CLI ---------------------------------------------------------------------------------------------

def _cli(*args):
    from auditbook.cli.main import registered_app
    return CliRunner().invoke(registered_app(), ["resource", *args], catch_exceptions=False)


def test_the_cli_prints_the_timeline_as_a_table_or_json(store):
    r = _cli(store["arn"], "--db", store["db"])
    assert r.exit_code == 0, r.output
    text = r.output
    assert "changed between" in text and "IpPermissions[1]: added" in text
    assert f"AuthorizeSecurityGroupIngress by {ROLE_ARN}" in text and SOURCE_IP in text and "ticket CHG-1042" in text
    assert "evidence gap: no CloudTrail log read covers 123456789012 us-east-1" in text and "\x1b" not in text
    r = _cli(store["arn"], "--db", store["db"], "--format", "json", "--from", (day(1) + dt.timedelta(hours=1)).isoformat())
    doc = json.loads(r.output)
    assert [c["to_run"] for c in doc["changes"]] == [2, 3] and doc["changes"][0]["events"][0]["source_ip"] == SOURCE_IP
    assert doc["states"][0]["record"]["GroupId"] == store["group_id"]


@pytest.mark.parametrize("args, message", [
    (["arn:aws:ec2:nowhere"], "error: resource: no stored state of"),
    (["{arn}", "--from", "soon"], "error: --from: 'soon' is not a day"),
    (["{arn}", "--ticket-pattern", "[z-a]"], "error: --ticket-pattern: '[z-a]' is not a regular expression"),
    (["{arn}", "--from", "0001-01-01T00:00:00+01:00"], "error: --from: '0001-01-01T00:00:00+01:00' is outside"),
    (["{arn}", "--to", "9999-12-31"], "error: --to: '9999-12-31' is outside the years"),
    (["{arn}", "--ticket-pattern", "(A+)+-1"], "error: --ticket-pattern: '(A+)+-1' repeats a group"),
])
def test_the_cli_refuses_bad_input_in_one_line(store, args, message, capsys):
    import sys

    from auditbook.cli.main import main
    argv = ["auditbook", "resource", *[a.format(arn=store["arn"]) for a in args], "--db", store["db"]]
    old = sys.argv
    sys.argv = argv
    try:
        with pytest.raises(SystemExit) as exit_:
            main()
    finally:
        sys.argv = old
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


# -- the control room's page -----------------------------------------------------------------------------

@pytest.fixture
def page(store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", store["db"])

    def make(role: str, query: dict):
        monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", role)
        at = AppTest.from_file(str(APP / "control_room.py"), default_timeout=60)
        at.run()
        at.switch_page("views/resource.py")
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


def _texts(at) -> str:
    return "\n".join([t.value for t in at.text] + [re.sub(r"\\(.)", r"\1", m.value) for m in [*at.markdown, *at.caption,
                                                                                                 *at.warning]])


@pytest.mark.parametrize("role", ["viewer", "analyst", "admin", "auditor"])
def test_every_role_that_sees_evidence_sees_the_change_and_its_author(page, store, role):
    import sys
    sys.path.insert(0, str(APP))
    from links import resource_link
    link = resource_link(store["arn"])
    assert link.startswith("resource?arn=arn%3Aaws%3Aec2")
    at = page(role, {"arn": store["arn"]})
    assert at.title[0].value == "Resource timeline" and "resource" in at.session_state["ab_pages"]
    shown = _texts(at)
    assert f"AuthorizeSecurityGroupIngress by {ROLE_ARN}" in shown and f"from {SOURCE_IP}" in shown
    assert "ticket CHG-1042 (session name)" in shown and "**Changed** between" in shown
    assert "Evidence gap: no CloudTrail log read covers account 123456789012 · current in us-east-1" in shown
    assert not [m.value for m in [*at.markdown, *at.caption] if "<img" in m.value or "<b>" in m.value]
    diffs = [d.value for d in at.dataframe if "field" in d.value.columns]
    assert any("IpPermissions[1]" in set(d["field"]) for d in diffs)
    [events] = [d.value for d in at.dataframe if "API call" in d.value.columns]
    assert '"fromPort":22' in events["request (redacted)"][0] and events["source IP"][0] == SOURCE_IP
    assert not at.button or all(b.label in ("Show", "Sign out") for b in at.button)  # the page changes nothing


def test_the_wall_role_cannot_open_the_timeline(store):
    import importlib
    import sys
    sys.path.insert(0, str(APP))
    ui = importlib.import_module("ui")
    ctx = ui.Context(Actor("wall", "wall"), "wall-token", store["db"], store["engine"], None)
    at = AppTest.from_file(str(APP / "views" / "resource.py"), default_timeout=60)
    at.session_state["ab_ctx"] = ctx
    at.query_params["arn"] = store["arn"]
    at.run()
    assert [e.value for e in at.error] == ["Your role (wall) may not view evidence."]
    assert not at.dataframe and not at.text


def test_the_page_finds_a_resource_by_name_and_names_an_unknown_one(page, store):
    at = page("viewer", {})
    find = next(t for t in at.text_input if t.label.startswith("Find a resource"))
    find.input("web").run()
    assert not at.exception
    [found] = [d.value for d in at.dataframe]
    assert store["arn"] in set(found["resource"])
    assert any(link.startswith("resource?arn=") and "type=aws.ec2.security_group" in link for link in found["timeline"])
    at = page("viewer", {"arn": "arn:aws:ec2:nowhere"})
    assert [i.value.replace("\\", "") for i in at.info][-1] == "The store holds no state of arn:aws:ec2:nowhere."
    at = page("viewer", {"arn": "arn:" + "x" * 5000})
    assert [e.value.replace("\\", "") for e in at.error] == [
        "The address names a resource of 5,004 characters: an ARN has at most 2048."]


def test_the_page_shows_changes_twenty_at_a_time_newest_first(tmp_path, monkeypatch):
    from tests.resource_timeline_store import build_busy_store
    busy = build_busy_store(f"sqlite:///{tmp_path}/busy.db", 22)
    monkeypatch.setenv("AUDITBOOK_DB", busy["db"])
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "viewer")
    at = AppTest.from_file(str(APP / "control_room.py"), default_timeout=60)
    at.run()
    at.switch_page("views/resource.py")
    at.query_params["arn"] = busy["arn"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.subheader][0] == "Changes (23)"

    def shown_runs():
        return [int(re.findall(r"run (\d+)", m.value.replace("\\", ""))[-1]) for m in at.markdown
                if m.value.startswith("**Changed**") or m.value.startswith("**First seen**")]
    assert shown_runs() == list(range(23, 3, -1))  # the newest 20, newest first
    [pages] = [n for n in at.number_input if n.label.startswith("Page of 20")]
    pages.set_value(2).run()
    assert not at.exception and shown_runs() == [3, 2, 1]
    diffs = [d.value for d in at.dataframe if "field" in d.value.columns]
    assert any('Tags[0].Value' in set(d["field"]) or "tags.rev" in set(d["field"]) for d in diffs), \
        [set(d["field"]) for d in diffs]


def test_comparing_two_states_is_computed_once_per_pair(page, store, monkeypatch):
    import auditbook.history.resource_timeline as resource_timeline
    calls = []
    real = resource_timeline.diff_states

    def counted(old, new):
        calls.append(1)
        return real(old, new)
    monkeypatch.setattr(resource_timeline, "diff_states", counted)
    at = page("viewer", {"arn": store["arn"]})
    at.run()
    at.run()
    assert not at.exception and "Compare two states" in [h.value for h in at.subheader]
    assert len(calls) <= 1  # three runs of the page: one comparison at most (none when cached already)
