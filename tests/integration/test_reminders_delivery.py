"""Manual-evidence reminders over real transports on 127.0.0.1: e-mail to a local SMTP server
(aiosmtpd), with and without AUTH, and Slack's incoming webhook (pytest-httpserver). A failure is
recorded by its class, never with a secret, and tried again; `auditbook evidence remind` as a
process."""
import datetime as dt
import email
import os
import subprocess
import sys

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from auditbook.auth import Actor
from auditbook.catalog.model import DEFAULT_PATH, load_catalog
from auditbook.demo.run import free_port
from auditbook.history.evidence_events import annotate_evidence
from auditbook.monitor.notify import load_channels
from auditbook.monitor.reminders import remind, reminders_sent
from auditbook.scan import add_evidence, decide_evidence
from auditbook.store.db import open_engine

DAY = dt.date(2026, 12, 1)
PASSWORD = "smtp-pass-Wd8kq2"


class Sink:
    """An SMTP server's handler that keeps every message."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content)))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == b"auditbook" and auth_data.password == PASSWORD.encode(),
                      handled=False)  # handled=False: the server answers 535 itself


@pytest.fixture
def smtp():
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    controller.start()
    try:
        yield {"sink": sink, "port": port}
    finally:
        controller.stop()


@pytest.fixture
def setup(tmp_path):
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw.pop("parameters_file", None)  # the thresholds' defaults: the company file is not copied
    raw.pop("include", None)  # the company library maps criteria this cut-down catalog drops
    raw["controls"] = [c for c in raw["controls"] if c["id"] in ("CC1.2", "CC6.6")]
    raw["checks"] = []
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    catalog = load_catalog(tmp_path / "catalog.yaml")
    db = f"sqlite:///{tmp_path}/r.db"
    engine = open_engine(db)
    doc = tmp_path / "minutes.txt"
    doc.write_text("minutes")
    row = add_evidence(engine, catalog, "CC1.2", doc, effective=dt.date(2026, 8, 1), owner="Alice Board",
                       item="Board meeting minutes covering security", uploaded_by="tests", today=DAY)
    row = annotate_evidence(engine, catalog, Actor("tests", "analyst"), row.id, row.version,
                            explanation="filed after the meeting's quarter")  # uploaded late: explained
    if row.timeline_flags:  # dated back: it counts only with its submitter's explanation, approved with it
        row = annotate_evidence(engine, catalog, Actor("tests", "analyst"), row.id, row.version,
                                explanation="signed on paper, scanned later")
    decide_evidence(engine, Actor("reviewer@tests.example", "approver"), row.id, row.version, "approve", "read")
    return {"catalog": catalog, "engine": engine, "db": db, "tmp": tmp_path}


def _channels(tmp_path, text):
    (tmp_path / "notify.yml").write_text(text)
    return load_channels(tmp_path / "notify.yml")


def test_email_reminders_reach_the_smtp_server_with_auth(setup, smtp, monkeypatch):
    monkeypatch.setenv("SMTP_USER", "auditbook")
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    chs = _channels(setup["tmp"], f"""
channels:
  - {{name: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: {smtp['port']}, mail_from: auditbook@example.com,
     mail_to: [board@example.com, grc@example.com], user_env: SMTP_USER, token_env: SMTP_PASSWORD, owners: ["*"]}}
""")
    result = remind(setup["engine"], setup["catalog"], chs, day=DAY)
    # CC1.2's minutes (Alice Board's, expired), its charter (none on file: the catalog's owner, Board of
    # directors) and CC6.6's network diagram (Security engineering's): a mail per owner
    assert result.failed == [] and len(result.sent) == 3
    assert len(smtp["sink"].messages) == 3
    by_subject = {m["Subject"]: (sender, rcpt, m) for sender, rcpt, m in smtp["sink"].messages}
    sender, rcpt, mail = by_subject["auditbook: 1 manual evidence item(s) due for Alice Board"]
    assert sender == "auditbook@example.com" and rcpt == ["board@example.com", "grc@example.com"]
    body = mail.get_payload(decode=True).decode()
    assert "CC1.2 Board meeting minutes covering security (quarterly): expired on 2026-11-01" in body
    assert "auditbook evidence add" in body
    assert remind(setup["engine"], setup["catalog"], chs, day=DAY).already == 3
    assert len(smtp["sink"].messages) == 3  # not sent again the same day


def test_a_refused_login_is_recorded_without_the_password_and_retried(setup, smtp, monkeypatch):
    monkeypatch.setenv("SMTP_USER", "auditbook")
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-" + PASSWORD)
    text = f"""
channels:
  - {{name: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: {smtp['port']}, mail_from: a@example.com,
     mail_to: [b@example.com], user_env: SMTP_USER, token_env: SMTP_PASSWORD, owners: ["*"]}}
"""
    result = remind(setup["engine"], setup["catalog"], _channels(setup["tmp"], text), day=DAY)
    assert result.sent == [] and {r["error"] for r in result.failed} == {"SMTPAuthenticationError"}
    assert PASSWORD not in repr(reminders_sent(setup["engine"])) and smtp["sink"].messages == []
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    retried = remind(setup["engine"], setup["catalog"], _channels(setup["tmp"], text), day=DAY)
    assert len(retried.sent) == 3 and len(smtp["sink"].messages) == 3


def test_unreachable_smtp_server_is_a_recorded_failure(setup):
    text = f"""
channels:
  - {{name: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: {free_port()}, mail_from: a@example.com,
     mail_to: [b@example.com], owners: ["*"]}}
"""
    result = remind(setup["engine"], setup["catalog"], _channels(setup["tmp"], text), day=DAY)
    assert {r["error"] for r in result.failed} == {"ConnectionRefusedError"} and result.sent == []


def test_slack_reminders_post_escaped_text_and_failures_keep_no_url(setup, httpserver, monkeypatch):
    secret_path = "/services/T000/B000/XXXXsecret"
    monkeypatch.setenv("SLACK_URL", httpserver.url_for(secret_path))
    httpserver.expect_oneshot_request(secret_path, method="POST").respond_with_data("boom", status=500)
    text = "channels:\n  - {name: board, kind: slack, url_env: SLACK_URL, owners: ['Alice Board', '*']}\n"
    failed = remind(setup["engine"], setup["catalog"], _channels(setup["tmp"], text), day=DAY)
    assert {r["error"] for r in failed.failed} == {"HTTP 500"}
    assert "secret" not in repr(reminders_sent(setup["engine"]))
    httpserver.expect_request(secret_path, method="POST").respond_with_data("ok")
    sent = remind(setup["engine"], setup["catalog"], _channels(setup["tmp"], text), day=DAY)
    assert len(sent.sent) == 3 and sent.failed == []
    posted = [r.get_json()["text"] for r, _ in httpserver.log if r.get_json()]
    assert any("expired on 2026-11-01" in t and "Alice Board" in t for t in posted)


def test_cli_remind_sends_and_exits_0(setup, smtp):
    (setup["tmp"] / "notify.yml").write_text(f"""
channels:
  - {{name: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: {smtp['port']}, mail_from: a@example.com,
     mail_to: [b@example.com], owners: ["*"]}}
""")
    proc = subprocess.run([sys.executable, "-m", "auditbook.cli.main", "evidence", "remind", "--notify",
                           str(setup["tmp"] / "notify.yml"), "--db", setup["db"], "--catalog",
                           str(setup["tmp"] / "catalog.yaml"), "--on", str(DAY)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, cwd=setup["tmp"])
    assert proc.returncode == 0, proc.stderr
    assert "3 reminder(s) sent, 0 failed" in proc.stdout and len(smtp["sink"].messages) == 3
