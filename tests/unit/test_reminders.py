"""Manual evidence that is due (issue 13 §6): what is due on a day and whose it is, which channels an
owner's reminders go to (notify.yml: a channel's `owners:`, "*" for every other owner), one message
per owner and channel, recorded, never sent twice the same day, a failure recorded by its class and
tried again. The transports themselves (SMTP, Slack's HTTP POST) are tested against local servers in
tests/integration/test_reminders_delivery.py."""
import datetime as dt

import pytest
import yaml
from typer.testing import CliRunner

from auditbook.auth import Actor
from auditbook.catalog.model import DEFAULT_PATH, load_catalog
from auditbook.cli.main import registered_app
from auditbook.errors import UserError
from auditbook.history.evidence_events import annotate_evidence
from auditbook.monitor.channels import email_reminder, slack_reminder
from auditbook.monitor.notify import load_channels
from auditbook.monitor.reminders import (
    daily_reminders,
    due_items,
    remind,
    reminders_sent,
    routes,
)
from auditbook.scan import add_evidence, decide_evidence
from auditbook.store.db import open_engine

DAY = dt.date(2026, 12, 1)
CHARTER, MINUTES, DIAGRAM = "Board charter", "Board meeting minutes covering security", \
    "Network diagram and boundary description"


@pytest.fixture
def catalog(tmp_path):
    """CC1.2 (board charter, annual; minutes, quarterly) and CC6.6 (network diagram, annual)."""
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw.pop("parameters_file", None)  # the thresholds' defaults: the company file is not copied
    raw.pop("include", None)  # the company library maps criteria this cut-down catalog drops
    raw["controls"] = [c for c in raw["controls"] if c["id"] in ("CC1.2", "CC6.6")]
    raw["checks"] = []
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_catalog(path)


@pytest.fixture
def engine(tmp_path, catalog):
    """The charter lapses on 10 December (due in 9 days), the minutes lapsed on 1 November, no
    network diagram is on file (its owner: the catalog's, Security engineering)."""
    engine = open_engine(f"sqlite:///{tmp_path}/r.db")
    doc = tmp_path / "doc.txt"
    doc.write_text("evidence")
    for item, effective in ((CHARTER, dt.date(2025, 12, 10)), (MINUTES, dt.date(2026, 8, 1))):
        row = add_evidence(engine, catalog, "CC1.2", doc, effective=effective, owner="Alice Board", item=item,
                           uploaded_by="tests", today=DAY)
        row = annotate_evidence(engine, catalog, Actor("tests", "analyst"), row.id, row.version,
                                explanation="filed after the fact")  # uploaded late: explained, then approved
        if row.timeline_flags:  # dated back: it counts only with its submitter's explanation, approved with it
            row = annotate_evidence(engine, catalog, Actor("tests", "analyst"), row.id, row.version,
                                    explanation="signed on paper, scanned later")
        decide_evidence(engine, Actor("approver", "approver"), row.id, row.version, "approve", "checked")
    return engine


def channels(tmp_path, text: str):
    path = tmp_path / "notify.yml"
    path.write_text(text)
    return load_channels(path)


NOTIFY = """
channels:
  - {name: board-slack, kind: slack, url: "http://127.0.0.1:9/hook", owners: ["alice  BOARD"]}
  - {name: sec-mail, kind: email, smtp_host: 127.0.0.1, mail_from: auditbook@example.com,
     mail_to: [security@example.com], owners: ["*"]}
  - {name: pager, kind: pagerduty, url: "http://127.0.0.1:9/pd", routing_key_env: PD_KEY, owners: ["*"]}
"""


def test_due_items_are_missing_expired_or_lapsing_within_the_lead_time(engine, catalog):
    due = {(i.item, i.state, i.due_on, i.owner) for i in due_items(engine, catalog, DAY, within=14)}
    assert due == {(CHARTER, "due", dt.date(2026, 12, 10), "Alice Board"),
                   (MINUTES, "expired", dt.date(2026, 11, 1), "Alice Board"),
                   (DIAGRAM, "missing", None, "Security engineering")}
    assert {i.item for i in due_items(engine, catalog, DAY, within=5)} == {MINUTES, DIAGRAM}
    with pytest.raises(UserError, match="--within"):
        due_items(engine, catalog, DAY, within=-1)


def test_owners_are_routed_by_name_then_to_the_catch_all(tmp_path):
    chs = channels(tmp_path, NOTIFY)
    routed, unrouted = routes(chs, {"Alice Board", "Security engineering"})
    assert [c.name for c in routed["Alice Board"]] == ["board-slack"]  # case and spaces do not matter
    assert [c.name for c in routed["Security engineering"]] == ["sec-mail"]  # PagerDuty takes no reminders
    assert unrouted == []
    only_named = channels(tmp_path, NOTIFY.replace('owners: ["*"]', 'owners: ["CISO"]'))
    routed, unrouted = routes(only_named, {"Alice Board", "Security engineering"})
    assert set(routed) == {"Alice Board"} and unrouted == ["Security engineering"]


def test_email_channel_fields_are_checked_when_notify_yml_is_read(tmp_path):
    with pytest.raises(UserError, match="channel m: smtp_host, mail_from and mail_to: required for E-mail"):
        channels(tmp_path, "channels:\n  - {name: m, kind: email}\n")
    with pytest.raises(UserError, match=r"channels\.0\.mail_to\.0"):
        channels(tmp_path, "channels:\n  - {name: m, kind: email, smtp_host: h, mail_from: a@b.example, "
                           "mail_to: ['x@y.example\\r\\nBcc: evil@z.example']}\n")


class Recorder:
    """Stands in for the transports: records each delivery, fails while `failing` is set."""

    def __init__(self):
        self.deliveries, self.failing = [], None

    def __call__(self, ch, delivery):
        self.deliveries.append((ch.name, delivery))
        return self.failing


def test_reminders_are_recorded_and_not_sent_twice_the_same_day(engine, catalog, tmp_path):
    chs, send = channels(tmp_path, NOTIFY), Recorder()
    first = remind(engine, catalog, chs, day=DAY, send=send)
    assert [name for name, _ in send.deliveries] == ["board-slack", "sec-mail"]  # one message per owner and channel
    assert "Board charter (annual): lapses on 2026-12-10" in send.deliveries[0][1].body["text"]
    assert send.deliveries[1][1].body["to"] == ["security@example.com"]
    assert len(first.sent) == 3 and first.failed == [] and first.unrouted == []
    stored = reminders_sent(engine, DAY)
    assert {(r["owner"], r["channel"], r["item"], r["state"], r["status"]) for r in stored} == {
        ("Alice Board", "board-slack", CHARTER, "due", "sent"), ("Alice Board", "board-slack", MINUTES, "expired", "sent"),
        ("Security engineering", "sec-mail", DIAGRAM, "missing", "sent")}
    again = remind(engine, catalog, chs, day=DAY, send=send)
    assert len(send.deliveries) == 2 and again.sent == [] and again.already == 3
    remind(engine, catalog, chs, day=DAY + dt.timedelta(days=1), send=send)
    assert len(send.deliveries) == 4  # the next day, told again


def test_a_failed_reminder_is_recorded_by_its_class_and_tried_again(engine, catalog, tmp_path):
    chs, send = channels(tmp_path, NOTIFY), Recorder()
    send.failing = "ConnectionRefusedError"
    failed = remind(engine, catalog, chs, day=DAY, send=send)
    assert failed.sent == [] and {r["error"] for r in failed.failed} == {"ConnectionRefusedError"}
    send.failing = None
    retried = remind(engine, catalog, chs, day=DAY, send=send)
    assert len(retried.sent) == 3 and retried.already == 0
    assert sorted(r["status"] for r in reminders_sent(engine, DAY)) == ["failed"] * 3 + ["sent"] * 3


def test_dry_run_sends_and_records_nothing(engine, catalog, tmp_path):
    send = Recorder()
    result = remind(engine, catalog, channels(tmp_path, NOTIFY), day=DAY, dry_run=True, send=send)
    assert len(result.sent) == 3 and send.deliveries == [] and reminders_sent(engine) == []


def test_untrusted_names_cannot_inject_into_slack_or_mail_headers(tmp_path):
    slack, mail = channels(tmp_path, NOTIFY)[:2]
    items = [{"criterion": "CC1.2", "item": "Board <!channel> charter", "cadence": "annual", "state": "missing",
              "due_on": None}]
    text = slack_reminder(slack, "<!everyone> & co", items).body["text"]
    assert "<!" not in text and "&lt;!channel&gt;" in text and "&lt;!everyone&gt; &amp; co" in text
    body = email_reminder(mail, "Eve\r\nBcc: victim@example.com", items).body
    assert "\r" not in body["subject"] and "\n" not in body["subject"] and "Bcc: victim" in body["subject"]


def test_cli_remind_dry_run_and_unrouted_owners(engine, catalog, tmp_path):
    app = registered_app()
    notify = tmp_path / "notify.yml"
    notify.write_text(NOTIFY)
    db = str(engine.url)
    args = ["evidence", "remind", "--notify", str(notify), "--db", db, "--on", str(DAY), "--dry-run"]
    catalog_path = tmp_path / "catalog.yaml"
    r = CliRunner().invoke(app, [*args, "--catalog", str(catalog_path)])
    assert r.exit_code == 0, r.output
    assert "would send: Alice Board via board-slack: CC1.2 Board charter (due)" in r.stdout
    assert "3 item(s) due; 3 reminder(s) would be sent" in r.stdout
    notify.write_text(NOTIFY.replace('owners: ["*"]', 'owners: ["CISO"]'))
    r = CliRunner().invoke(app, [*args, "--catalog", str(catalog_path)])
    assert r.exit_code == 1 and "no channel takes Security engineering's reminders" in r.stderr
    notify.write_text("channels: [{name: m, kind: email}]\n")
    r = CliRunner().invoke(app, [*args, "--catalog", str(catalog_path)])
    assert isinstance(r.exception, UserError)  # the CLI's main() prints it in one line, exit 2
    assert "notify.yml: channel m: smtp_host, mail_from and mail_to: required" in str(r.exception)
    assert reminders_sent(engine) == []


def test_the_watch_loop_reminds_on_the_first_cycle_of_each_day_only(engine, catalog, tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr("auditbook.monitor.reminders.transmit", lambda ch, d: sent.append(ch.name))
    chs = channels(tmp_path, NOTIFY)
    morning = dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.timezone.utc)
    first = daily_reminders(engine, chs, morning, catalog)
    assert first is not None and len(first.sent) == 3 and sent == ["board-slack", "sec-mail"]
    assert daily_reminders(engine, chs, morning + dt.timedelta(hours=6), catalog) is None
    assert sent == ["board-slack", "sec-mail"]
    assert len(daily_reminders(engine, chs, morning + dt.timedelta(days=1), catalog).sent) == 3
    pager_only = [c for c in chs if c.kind == "pagerduty"]
    assert daily_reminders(engine, pager_only, morning + dt.timedelta(days=2), catalog) is None


def test_a_password_never_crosses_the_network_without_starttls(engine, catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("SMTP_USER", "auditbook")
    monkeypatch.setenv("SMTP_PASSWORD", "pw-Kq81")
    text = ("channels:\n  - {name: m, kind: email, smtp_host: smtp.example.com, mail_from: a@example.com, "
            "mail_to: [b@example.com], user_env: SMTP_USER, token_env: SMTP_PASSWORD, owners: ['*']%s}\n")
    send = Recorder()
    result = remind(engine, catalog, channels(tmp_path, text % ""), day=DAY, send=send)
    assert send.deliveries == [] and result.sent == []
    assert {r["error"] for r in result.failed} == {
        "notify: channel m: smtp_starttls: AUTH to smtp.example.com needs STARTTLS (the password would cross "
        "the network in clear)"}
    assert "pw-Kq81" not in repr(reminders_sent(engine))
    tls = remind(engine, catalog, channels(tmp_path, text % ", smtp_starttls: true"), day=DAY, send=send)
    assert len(tls.sent) == 3 and send.deliveries[0][1].auth == ("auditbook", "pw-Kq81")


def test_a_watch_cycle_sends_the_days_reminders_once(engine, tmp_path, monkeypatch):
    """The watch loop (monitor/watch.cycle) sends the day's reminders on its first cycle of the day
    (with the bundled catalog: every manual item of the store is due), not on the next one."""
    from auditbook.monitor.watch import cycle
    sent = []
    monkeypatch.setattr("auditbook.monitor.reminders.transmit", lambda ch, d: sent.append(ch.name))
    monkeypatch.setattr("auditbook.monitor.watch.dispatch", lambda engine, chs: {"sent": 0, "failed": 0})
    chs = channels(tmp_path, NOTIFY)
    morning = dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.timezone.utc)
    first = cycle(engine, lambda bucket: None, [], now=morning, channels=chs)
    assert first.reminders is not None and first.reminders.sent and "sec-mail" in sent
    again = cycle(engine, lambda bucket: None, [], now=morning + dt.timedelta(hours=1), channels=chs)
    assert again.reminders is None


def test_a_watch_given_a_catalog_reminds_of_its_items_not_the_bundled_ones(engine, tmp_path, monkeypatch):
    """`auditbook watch --catalog`: prepare() loads the catalog once and every cycle's reminders use it
    (the bundled catalog would make every manual item of the bundled controls due)."""
    from auditbook.monitor.watch import prepare, run_cycle
    monkeypatch.setattr("auditbook.monitor.reminders.transmit", lambda ch, d: None)
    monkeypatch.setattr("auditbook.monitor.watch.dispatch", lambda engine, chs: {"sent": 0, "failed": 0})
    (tmp_path / "notify.yml").write_text(NOTIFY)
    plan = prepare([], notify_path=tmp_path / "notify.yml", catalog_path=tmp_path / "catalog.yaml")
    first = run_cycle(engine, plan, now=dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.timezone.utc))
    assert {i.item for i in first.reminders.due} == {CHARTER, MINUTES, DIAGRAM}
    assert {row["item"] for row in reminders_sent(engine)} == {CHARTER, MINUTES, DIAGRAM}


def test_watch_refuses_a_bad_catalog_before_its_first_cycle(tmp_path):
    (tmp_path / "bad.yaml").write_text("controls: [")
    result = CliRunner().invoke(registered_app(), ["watch", "--once", "--catalog", str(tmp_path / "bad.yaml"),
                                                   "--db", f"sqlite:///{tmp_path}/w.db"])
    assert isinstance(result.exception, UserError) and "bad.yaml" in str(result.exception)
    assert not (tmp_path / "w.db").exists()  # refused before the store is opened
