"""Notifications against fake Slack, PagerDuty and Jira servers on 127.0.0.1 (pytest-httpserver):
the payloads, PagerDuty's trigger/acknowledge/resolve under one dedup key, retries with backoff, a
failure recorded without stopping anything, nothing sent twice."""
import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug import Response

from auditbook.auth import Actor
from auditbook.monitor import alerts, incidents
from auditbook.monitor.notify import Channel, dispatch, load_channels
from auditbook.store.db import open_engine
from auditbook.store.models import Notification

ANALYST = Actor("ana", "analyst")


@pytest.fixture
def engine(tmp_path):
    e = open_engine(f"sqlite:///{tmp_path}/n.db")
    now = dt.datetime.now(dt.timezone.utc)
    with Session(e) as s, s.begin():
        alerts.fire(s, rule="RootAccountUsage", labels={"account": "111122223333"}, severity="critical",
                    soc2_control="CC6.1,CC7.2", summary="the root user was used", at=now, evidence=["e1"])
        alerts.fire(s, rule="IAMPolicyChanged", labels={"principal": "arn:aws:iam::1:user/x"}, severity="medium",
                    soc2_control="CC6.3", summary="an IAM policy was changed", at=now)
    return e


def _rows(engine):
    with Session(engine) as s:
        return [(n.channel, n.event, n.object_id, n.status, n.attempts) for n in s.scalars(select(Notification).order_by(Notification.id))]


def test_slack_and_pagerduty_lifecycle(engine, httpserver, monkeypatch):
    monkeypatch.setenv("PD_KEY", "routing-key-123")
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    httpserver.expect_request("/pd", method="POST").respond_with_json({"status": "success"}, status=202)
    channels = [Channel(name="soc", kind="slack", url=httpserver.url_for("/slack"), min_severity="high"),
                Channel(name="pd", kind="pagerduty", url=httpserver.url_for("/pd"), routing_key_env="PD_KEY")]
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 3, "failed": 0}
    bodies = [(r.path, r.get_json()) for r, _ in httpserver.log]
    slack = [b for p, b in bodies if p == "/slack"]
    assert len(slack) == 1 and slack[0]["text"].startswith("[CRITICAL] RootAccountUsage: the root user was used")
    pd = [b for p, b in bodies if p == "/pd"]
    assert {b["event_action"] for b in pd} == {"trigger"} and all(b["routing_key"] == "routing-key-123" for b in pd)
    root = next(b for b in pd if "RootAccountUsage" in b["payload"]["summary"])
    assert root["payload"]["severity"] == "critical" and root["payload"]["source"] == "111122223333"
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 0, "failed": 0}  # nothing twice
    alert = next(a for a in alerts.list_alerts(engine) if a["rule"] == "RootAccountUsage")
    alerts.acknowledge(engine, ANALYST, alert["id"], alert["version"])
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 1, "failed": 0}
    with Session(engine) as s, s.begin():
        alerts.resolve(s, "RootAccountUsage", {"account": "111122223333"}, dt.datetime.now(dt.timezone.utc))
    dispatch(engine, channels, backoff=0.01)
    pd = [r.get_json() for r, _ in httpserver.log if r.path == "/pd"]
    actions = [b["event_action"] for b in pd if b["dedup_key"] == root["dedup_key"]]
    assert actions == ["trigger", "acknowledge", "resolve"]


def test_retries_with_backoff_then_success_and_failures_recorded(engine, httpserver):
    answers = iter([Response("busy", 503), Response("busy", 503), Response("ok", 200)])
    httpserver.expect_request("/flaky").respond_with_handler(lambda req: next(answers))
    httpserver.expect_request("/down").respond_with_data("no", status=500)
    channels = [Channel(name="flaky", kind="slack", url=httpserver.url_for("/flaky"), min_severity="critical"),
                Channel(name="down", kind="slack", url=httpserver.url_for("/down"), min_severity="critical")]
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 1, "failed": 1}
    rows = _rows(engine)
    assert ("flaky", "trigger", "1", "sent", 3) in rows
    failed = [r for r in rows if r[0] == "down"]
    assert failed == [("down", "trigger", "1", "failed", 4)]
    with Session(engine) as s:
        assert "HTTP 500" in s.scalars(select(Notification.last_error).where(Notification.channel == "down")).first()
    # a failed delivery is tried again next cycle (and still never stops the engine)
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 0, "failed": 1}


def test_unreachable_endpoint_and_missing_secret_are_recorded(engine, monkeypatch):
    from auditbook.demo.run import free_port
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    channels = [Channel(name="gone", kind="slack", url=f"http://127.0.0.1:{free_port()}/x", min_severity="critical"),
                Channel(name="pd", kind="pagerduty", url="http://127.0.0.1:9/x", routing_key_env="NO_SUCH_KEY",
                        min_severity="critical")]
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 0, "failed": 2}
    rows = {r[0]: r for r in _rows(engine)}
    assert rows["gone"][3:] == ("failed", 4) and rows["pd"][3:] == ("failed", 0)


def test_jira_issue_per_incident(engine, httpserver, monkeypatch):
    monkeypatch.setenv("JIRA_USER", "bot@corp.example")
    monkeypatch.setenv("JIRA_TOKEN", "t0ken")
    httpserver.expect_request("/rest/api/2/issue", method="POST").respond_with_json({"key": "SEC-1"}, status=201)
    inc = incidents.create(engine, ANALYST, title="Root used from an unknown IP", severity="critical")
    channels = [Channel(name="jira", kind="jira", url=httpserver.url_for("/"), project="SEC",
                        user_env="JIRA_USER", token_env="JIRA_TOKEN")]
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 1, "failed": 0}
    request = httpserver.log[0][0]
    body = request.get_json()
    assert body["fields"]["project"] == {"key": "SEC"} and f"[auditbook #{inc['id']}]" in body["fields"]["summary"]
    import base64
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot@corp.example:t0ken").decode()
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 0, "failed": 0}


def test_notify_file_validation(tmp_path):
    from auditbook.errors import UserError
    path = tmp_path / "notify.yml"
    path.write_text("channels:\n  - name: pd\n    kind: pagerduty\n    url: http://127.0.0.1/x\n")
    with pytest.raises(UserError, match="channel pd: routing_key_env: required for PagerDuty"):
        load_channels(path)
    path.write_text("channels:\n  - name: x\n    kind: teams\n")
    with pytest.raises(UserError, match=r"channels\.0\.kind"):
        load_channels(path)


def test_secrets_from_a_secrets_file_when_the_environment_has_none(engine, httpserver, tmp_path, monkeypatch):
    monkeypatch.delenv("PD_KEY_FILE_ONLY", raising=False)
    httpserver.expect_request("/pd", method="POST").respond_with_json({"status": "success"}, status=202)
    (tmp_path / "secrets.yml").write_text("PD_KEY_FILE_ONLY: from-the-file\n")
    (tmp_path / "notify.yml").write_text(
        f"secrets_file: secrets.yml\nchannels:\n  - name: pd\n    kind: pagerduty\n    url: {httpserver.url_for('/pd')}\n"
        "    routing_key_env: PD_KEY_FILE_ONLY\n    min_severity: critical\n")
    channels = load_channels(tmp_path / "notify.yml")
    assert dispatch(engine, channels, backoff=0.01) == {"sent": 1, "failed": 0}
    assert httpserver.log[0][0].get_json()["routing_key"] == "from-the-file"
    with Session(engine) as s:  # the outcome is stored, never the secret
        assert all("from-the-file" not in (n.response or "") + (n.last_error or "")
                   for n in s.scalars(select(Notification)))


# --- secrets of a channel never reach the store, and notify.yml is hostile input ---------------------------

HOOK_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETwebhook"
ROUTING_KEY = "R0UTING-KEY-SECRET-1234567890ab"


def _stored_text(engine) -> str:
    with Session(engine) as s:
        return " ".join(f"{n.last_error} {n.response}" for n in s.scalars(select(Notification)))


def test_a_failure_keeps_the_channel_and_error_class_never_the_url_or_key(engine, httpserver, monkeypatch, tmp_path):
    from auditbook.demo.run import free_port
    # an unreachable webhook: requests' ConnectionError names the whole URL
    monkeypatch.setenv("SLACK_HOOK", f"http://127.0.0.1:{free_port()}{HOOK_PATH}")
    monkeypatch.setenv("PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("JIRA_USER", "bot@corp.example")
    monkeypatch.setenv("JIRA_TOKEN", "J1RA-T0KEN-SECRET")
    # a server that echoes what it got (the URL, the routing key in the body) in its error, and in a success
    echo = lambda req: Response(f"bad {req.url} {req.get_data(as_text=True)} {req.headers.get('Authorization')}", 500)  # noqa: E731
    httpserver.expect_request("/pd-echo").respond_with_handler(echo)
    httpserver.expect_request("/ok-echo").respond_with_handler(
        lambda req: Response(f"ok {req.get_data(as_text=True)} {req.url}", 202))
    httpserver.expect_request("/rest/api/2/issue").respond_with_handler(echo)
    incidents.create(engine, ANALYST, title="t", severity="critical")
    channels = [Channel(name="soc", kind="slack", url_env="SLACK_HOOK", min_severity="critical"),
                Channel(name="pd", kind="pagerduty", url=httpserver.url_for("/pd-echo"), routing_key_env="PD_KEY",
                        min_severity="critical"),
                Channel(name="pd-ok", kind="pagerduty", url=httpserver.url_for("/ok-echo"), routing_key_env="PD_KEY",
                        min_severity="critical"),
                Channel(name="jira", kind="jira", url=httpserver.url_for("/"), project="SEC", user_env="JIRA_USER",
                        token_env="JIRA_TOKEN")]
    assert dispatch(engine, channels, backoff=0.001) == {"sent": 1, "failed": 3}
    with Session(engine) as s:
        errors = {n.channel: n.last_error for n in s.scalars(select(Notification))}
        answer = s.scalar(select(Notification.response).where(Notification.channel == "pd-ok"))
    assert errors["soc"] == "ConnectionError" and errors["pd"].startswith("HTTP 500")
    assert answer.startswith("ok ") and "***" in answer and "event_action" in answer  # kept, the key cut out
    stored = _stored_text(engine)
    assert "/services/" not in stored and "T0SECRET" not in stored and ROUTING_KEY not in stored
    assert "J1RA-T0KEN-SECRET" not in stored and "bot@corp.example" not in stored
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("n.db*"))
    for secret in (b"xoxSECRETwebhook", ROUTING_KEY.encode(), b"J1RA-T0KEN-SECRET"):
        assert secret not in raw


@pytest.mark.parametrize("value", ["not a url", "ftp://127.0.0.1/x", "http://", "http://127.0.0.1/\nInjected: 1",
                                   "https://[::1/x"])
def test_a_bad_url_in_the_environment_is_a_failure_naming_the_variable_not_the_value(engine, monkeypatch, value):
    monkeypatch.setenv("SLACK_HOOK", value)
    channels = [Channel(name="soc", kind="slack", url_env="SLACK_HOOK", min_severity="critical")]
    assert dispatch(engine, channels, backoff=0.001) == {"sent": 0, "failed": 1}
    with Session(engine) as s:
        error = s.scalars(select(Notification.last_error)).one()
    assert "SLACK_HOOK" in error and value not in error and "\n" not in error


def _load_error(path, text) -> str:
    from auditbook.errors import UserError
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_channels(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_notify_file_hostile_values_get_one_line(tmp_path):
    path = tmp_path / "notify.yml"
    assert "channels.0.min_severity" in _load_error(
        path, "channels:\n  - name: soc\n    kind: slack\n    url_env: X\n    min_severity: 2026-02-30\n")
    assert "2026-02-30" in _load_error(
        path, "channels:\n  - name: soc\n    kind: slack\n    url_env: X\n    when: 2026-02-30\n")
    message = _load_error(path, "channels:\n  - {name: soc, kind: slack, url_env: X}\n  - {name: soc, kind: pagerduty, "
                                "url: 'http://127.0.0.1/x', routing_key_env: K}\n")
    assert "channels.1.name" in message and "'soc'" in message and "twice" in message
    assert "top level" in _load_error(path, "- name: soc\n")
    assert "aliases" in _load_error(path, "a: &x [1]\nchannels: *x\n")


def test_notify_secrets_file_dates_stay_text_and_values_are_never_echoed(engine, httpserver, tmp_path, monkeypatch):
    monkeypatch.delenv("PD_DATE_KEY", raising=False)
    httpserver.expect_request("/pd", method="POST").respond_with_json({"status": "success"}, status=202)
    (tmp_path / "secrets.yml").write_text("PD_DATE_KEY: 2026-02-30\n")
    path = tmp_path / "notify.yml"
    path.write_text(f"secrets_file: secrets.yml\nchannels:\n  - name: pd\n    kind: pagerduty\n"
                    f"    url: {httpserver.url_for('/pd')}\n    routing_key_env: PD_DATE_KEY\n    min_severity: critical\n")
    assert dispatch(engine, load_channels(path), backoff=0.001) == {"sent": 1, "failed": 0}
    assert httpserver.log[0][0].get_json()["routing_key"] == "2026-02-30"
    (tmp_path / "secrets.yml").write_text("PD_DATE_KEY: [s3cr3t-in-a-list]\n")
    message = _load_error(path, path.read_text())
    assert "PD_DATE_KEY" in message and "s3cr3t" not in message
    (tmp_path / "secrets.yml").write_text("- s3cr3t-at-the-top\n")
    message = _load_error(path, path.read_text())
    assert "secrets.yml" in message and "s3cr3t" not in message


@pytest.mark.parametrize("escape", ["json", "percent-lower", "percent-twice", "unicode", "html"])
def test_a_server_echoing_the_webhook_in_any_escaping_never_gets_it_stored(engine, httpserver, monkeypatch, tmp_path,
                                                                         escape):
    """The secret part of a Slack webhook came back JSON-escaped (`\\/`, as PHP and several Java
    libraries write it) or percent-escaped in lower case, and was stored in last_error / response."""
    import json as _json
    from urllib.parse import quote
    secret = "XyZsEcReTwebhookPart123"
    hook = httpserver.url_for(f"/services/T000/B000/{secret}")
    forms = {"json": lambda u: _json.dumps(u).replace("/", "\\/"), "percent-lower": lambda u: quote(u, safe="").lower(),
             "percent-twice": lambda u: quote(quote(u, safe=""), safe=""), "unicode": lambda u: u.replace("/", "\\u002f"),
             "html": lambda u: u.replace("/", "&#x2F;")}
    echoed = forms[escape](hook)
    monkeypatch.setenv("SLACK_HOOK", hook)
    monkeypatch.setenv("SLACK_OK", httpserver.url_for(f"/services/T000/B001/{secret}"))
    httpserver.expect_request(f"/services/T000/B000/{secret}").respond_with_data(f'{{"hook": "{echoed}"}}', status=404)
    httpserver.expect_request(f"/services/T000/B001/{secret}").respond_with_data(
        f'ok {forms[escape](httpserver.url_for(f"/services/T000/B001/{secret}"))}', status=200)
    channels = [Channel(name="soc", kind="slack", url_env="SLACK_HOOK", min_severity="critical"),
                Channel(name="soc-ok", kind="slack", url_env="SLACK_OK", min_severity="critical")]
    assert dispatch(engine, channels, backoff=0.001) == {"sent": 1, "failed": 1}
    with Session(engine) as s:
        rows = {n.channel: n for n in s.scalars(select(Notification))}
    assert rows["soc"].last_error == "HTTP 404" and rows["soc"].response is None  # a failure: its class, no text
    assert rows["soc-ok"].response.startswith("ok ") and "***" in rows["soc-ok"].response
    stored = _stored_text(engine)
    assert secret.lower() not in stored.lower() and "services" not in stored
    engine.dispose()
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("n.db*"))


def test_scrub_undoes_escapes_before_cutting_and_gives_up_on_endless_ones():
    from auditbook.monitor.notify import scrub, secret_forms
    forms = secret_forms(["https://hooks.example/services/T/B/s3cretPart"])
    assert scrub("a https:\\/\\/hooks.example\\/services\\/T\\/B\\/S3CRETPART b", forms, 100) == "a *** b"
    assert scrub("%2fservices%2Ft%2fb%2Fs3cretPart\0", forms, 100) == "***\\0"
    assert scrub("x" * 5000, forms, 2000) == "x" * 2000
    nested = "/services/T/B/s3cretPart"
    for _ in range(9):
        nested = nested.replace("%", "%25").replace("/", "%2F")
    assert "s3cret" not in scrub(nested, forms, 2000)


# --- channel kinds are a registry; a pending alert is not notified -------------------------------------------

def test_a_kind_that_is_not_registered_is_one_line_listing_the_kinds(tmp_path):
    message = _load_error(tmp_path / "notify.yml", "channels:\n  - name: x\n    kind: teams\n    url_env: X\n")
    assert "channels.0.kind" in message and "not a channel kind: one of email, jira, pagerduty, slack" in message
    message = _load_error(tmp_path / "notify.yml", "channels:\n  - name: j\n    kind: jira\n    url: http://127.0.0.1/x\n"
                                                   "    project: SEC\n")
    assert "channel j: user_env and token_env: required for Jira" in message


def test_a_plugin_channel_kind_is_validated_and_dispatched_like_the_built_ins(engine, httpserver, tmp_path):
    import types

    from auditbook import plugins
    from auditbook.hookspecs import hookimpl
    from auditbook.monitor.channels import ChannelKind, Delivery
    httpserver.expect_request("/teams", method="POST").respond_with_data("1")
    plugin = types.ModuleType("teams_plugin")
    plugin.notification_channels = hookimpl(lambda: [ChannelKind(
        "teams", "Teams", alert_events=("trigger",),
        alert=lambda ch, alert, event: Delivery(ch.endpoint(), {"title": alert["rule"]}))])
    plugins.register(plugin, name="teams_plugin")
    try:
        (tmp_path / "notify.yml").write_text(f"channels:\n  - name: t\n    kind: teams\n    url: {httpserver.url_for('/teams')}\n"
                                             "    min_severity: critical\n")
        channels = load_channels(tmp_path / "notify.yml")
        assert dispatch(engine, channels, backoff=0.01) == {"sent": 1, "failed": 0}
        assert httpserver.log[0][0].get_json() == {"title": "RootAccountUsage"}
        assert [(c, event, status) for c, event, _id, status, _n in _rows(engine)] == [("t", "trigger", "sent")]
    finally:
        plugins.unregister(plugin)
    assert "teams" not in plugins.channel_kinds()


def test_a_pending_alert_is_not_notified_and_stops_nothing(tmp_path, httpserver):
    """A posture rule with `for` keeps its alert pending: dispatch used to raise KeyError('pending')
    on it, which ended the whole watch cycle."""
    from auditbook.store import alerts as stored_alerts
    from auditbook.store.session import writing
    e = open_engine(f"sqlite:///{tmp_path}/p.db")
    with writing(e) as s:  # as a posture rule with `for: 1h` leaves it after its first cycle
        stored_alerts.insert_alert(s, rule="KeyNotRotating", dedup_key="KeyNotRotating|resource=k1", state="pending",
                                   severity="high", soc2_control="CC6.1", labels={"resource": "k1"},
                                   summary="no rotation", at=dt.datetime.now(dt.timezone.utc), evidence=[])
    assert [a["state"] for a in alerts.list_alerts(e)] == ["pending"]
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    channels = [Channel(name="soc", kind="slack", url=httpserver.url_for("/slack")),
                Channel(name="pd", kind="pagerduty", url=httpserver.url_for("/slack"), routing_key_env="NOPE")]
    assert dispatch(e, channels, backoff=0.01) == {"sent": 0, "failed": 0}
    assert httpserver.log == []
