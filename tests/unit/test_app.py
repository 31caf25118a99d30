"""The control room under Streamlit's AppTest: every page, every role rule, sign-in modes, escaping of
untrusted strings, and the incident and alert flows. The store (`app_store`, tests/conftest.py) comes
from real scans under moto (tests/packet_store.py: it includes a PASS -> FAIL regression, so an alert is
firing)."""
import hashlib
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from auditbook.auth import Actor
from auditbook.monitor import alerts, incidents
from tests.packet_store import EVIL

APP = Path(__file__).resolve().parents[2] / "app"
ENTRY = str(APP / "control_room.py")
ANALYST = Actor("ana@soc.example", "analyst")
WALL_TOKEN = "wall-screen-token-123"
SECRETS = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                    "client_id": "auditbook", "client_secret": "s", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
           "auditbook": {"roles": {"admin": ["adm@soc.example"], "analyst": ["ana@soc.example"],
                                   "auditor": ["aud@audit.example"], "viewer": ["vic@soc.example"]},
                         "default_role": None,
                         "wall_token_sha256": hashlib.sha256(WALL_TOKEN.encode()).hexdigest()}}
EMAIL = {"admin": "adm@soc.example", "analyst": "ana@soc.example", "auditor": "aud@audit.example",
         "viewer": "vic@soc.example"}
PAGES = {"admin": ["posture", "declared", "alerts", "incidents", "evidence", "deviations", "signoffs", "resource", "packets", "settings", "wall"],
         "analyst": ["posture", "declared", "alerts", "incidents", "evidence", "deviations", "signoffs", "resource", "wall"],
         "auditor": ["posture", "declared", "alerts", "incidents", "evidence", "deviations", "signoffs", "resource", "packets", "wall"],
         "viewer": ["posture", "declared", "alerts", "incidents", "evidence", "deviations", "signoffs", "resource", "wall"]}


def trail(engine, object_type: str, object_id) -> list[dict]:
    """The audit trail of one object, read through its repository in one unit of work."""
    from auditbook.store import audit_log
    from auditbook.store.session import reading
    with reading(engine) as session:
        return audit_log.trail(session, object_type, object_id)


@pytest.fixture
def app(app_store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", app_store["db"])
    monkeypatch.delenv("AUDITBOOK_LOCAL_ROLE", raising=False)

    def make(role=None, local_role=None, query=None):
        if local_role:
            monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", local_role)
        at = AppTest.from_file(ENTRY, default_timeout=60)
        if role:
            at.secrets = SECRETS
            at.user = {"email": EMAIL[role], "email_verified": True, "is_logged_in": True}
        for k, v in (query or {}).items():
            at.query_params[k] = v
        return at
    return make


def shown(markdown: str) -> str:
    """What a reader sees of markdown written through ui.md (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _no_errors(at):
    assert not at.exception, [e.value for e in at.exception]


def _raw_html_leaks(at) -> list[str]:
    """Markdown or HTML elements showing the payload unescaped."""
    return [m.value for m in [*at.markdown, *at.caption] if "<img src=x" in m.value]


def test_every_page_renders_for_the_local_admin(app):
    at = app()
    at.run()
    _no_errors(at)
    assert at.session_state["ab_pages"] == PAGES["admin"]
    assert "Local single-user mode" in at.info[0].value and "127.0.0.1" in at.info[0].value
    assert at.title[0].value == "Posture"
    tiles = [m.value for m in at.markdown if "passing" in m.value and "border-left" in m.value]
    assert len(tiles) == 5 and "#cf222e" in tiles[0] and "<b>security</b>" in tiles[0]  # failures: red
    for page, title in [("views/alerts.py", "Alerts"), ("views/incidents.py", "Incidents"),
                        ("views/evidence.py", "Evidence"), ("views/packets.py", "Audit packets"),
                        ("views/settings.py", "Settings")]:
        at.switch_page(page).run()
        _no_errors(at)
        assert at.title[0].value == title
        assert _raw_html_leaks(at) == []
    at.switch_page("views/wall.py").run()
    _no_errors(at)
    assert any('data-tile="security"' in m.value for m in at.markdown)


@pytest.mark.parametrize("role", ["admin", "analyst", "auditor", "viewer"])
def test_each_role_reaches_only_its_pages_and_actions(app, role):
    at = app(role=role)
    at.run()
    _no_errors(at)
    assert at.session_state["ab_pages"] == PAGES[role]
    assert "Local single-user mode" not in " ".join(i.value for i in at.info)
    at.switch_page("views/incidents.py").run()
    _no_errors(at)
    can_write = role in ("admin", "analyst")
    buttons = {b.label for b in at.button}
    assert ("Create incident" in buttons) == can_write
    assert ("Save changes" in buttons) == can_write and ("Add note" in buttons) == can_write
    at.switch_page("views/alerts.py").run()
    _no_errors(at)
    assert ("Acknowledge" in {b.label for b in at.button}) == can_write


@pytest.mark.parametrize("role, page, action", [
    ("viewer", "settings.py", "manage settings"), ("analyst", "settings.py", "manage settings"),
    ("auditor", "settings.py", "manage settings"), ("viewer", "packets.py", "view packets"),
    ("analyst", "packets.py", "view packets"), ("wall", "posture.py", "view posture"),
    ("wall", "incidents.py", "view incidents"), ("wall", "evidence.py", "view evidence"),
])
def test_pages_refuse_roles_on_the_server_side(app_store, monkeypatch, role, page, action):
    """Even reached directly (not through the navigation), a page stops before showing anything."""
    import importlib
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")
    from auditbook.store.db import open_engine
    ctx = ui.Context(Actor("x", role), "oidc", app_store["db"], open_engine(app_store["db"]), None)
    at = AppTest.from_file(str(APP / "views" / page), default_timeout=60)
    at.session_state["ab_ctx"] = ctx
    at.run()
    assert [e.value for e in at.error] == [f"Your role ({role}) may not {action}."]
    assert not at.dataframe and not at.button and not at.title


def test_oidc_sign_in_required_and_unknown_users_refused(app):
    at = app()
    at.secrets = SECRETS
    at.user = {"is_logged_in": False}
    at.run()
    _no_errors(at)
    assert [b.label for b in at.button] == ["Sign in"] and not at.dataframe
    at = app()
    at.secrets = SECRETS
    at.user = {"email": "stranger@elsewhere.example", "email_verified": True, "is_logged_in": True}
    at.run()
    assert "no role in auditbook" in shown(at.error[0].value) and not at.dataframe


def test_wall_token_shows_only_the_wall(app):
    at = app(query={"wall_token": WALL_TOKEN})
    at.secrets = SECRETS
    at.user = {"is_logged_in": False}
    at.run()
    _no_errors(at)
    assert at.session_state["ab_pages"] == ["wall"]
    text = " ".join(m.value for m in at.markdown)
    assert 'data-tile="security"' in text and "open incidents" in text and "active alerts" in text
    at = app(query={"wall_token": "wrong"})
    at.secrets = SECRETS
    at.user = {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]


def test_wall_view_lists_incidents_and_alerts_escaped(app, app_store):
    at = app(query={"view": "wall"})
    at.run()
    _no_errors(at)
    text = " ".join(m.value for m in at.markdown)
    assert "1 active alerts" in text and "open incidents" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "<img src=x" not in text


def test_untrusted_strings_are_shown_as_text(app, app_store):
    at = app()
    at.run()
    at.switch_page("views/incidents.py").run()
    _no_errors(at)
    assert _raw_html_leaks(at) == []
    texts = [t.value for t in at.text]
    assert f"Group {EVIL} open to the world" in texts  # st.text: shown literally, never interpreted
    assert any(f"note with {EVIL} and **markdown**" in t for t in texts)


def test_analyst_creates_and_moves_an_incident_and_a_stale_write_is_refused(app, app_store):
    at = app(local_role="analyst")
    at.run()
    at.switch_page("views/incidents.py").run()
    _no_errors(at)
    title_box = next(t for t in at.text_input if t.label == "Title")
    title_box.input("Investigate audit-trail bucket")
    next(s for s in at.selectbox if s.label == "Severity").select("critical")
    next(b for b in at.button if b.label == "Create incident").click().run()
    _no_errors(at)
    made = next(i for i in incidents.list_incidents(app_store["engine"])
                if i["title"] == "Investigate audit-trail bucket")
    assert made["severity"] == "critical" and made["created_by"].endswith("(local)")
    assert at.session_state["incident"] == made["id"]
    next(s for s in at.selectbox if s.label == "Move to").select("investigating")
    next(b for b in at.button if b.label == "Save changes").click().run()
    _no_errors(at)
    assert incidents.get(app_store["engine"], made["id"])["status"] == "investigating"
    # another analyst changes it meanwhile: this page still holds the old version
    current = incidents.get(app_store["engine"], made["id"])
    incidents.update(app_store["engine"], Actor("bob", "analyst"), made["id"], current["version"], assignee="bob")
    next(s for s in at.selectbox if s.label == "Move to").select("contained")
    next(b for b in at.button if b.label == "Save changes").click().run()
    _no_errors(at)
    assert any("changed by someone else" in e.value for e in at.error)
    final = incidents.get(app_store["engine"], made["id"])
    assert final["status"] == "investigating" and final["assignee"] == "bob"  # bob's update survived
    assert any(m.value == "investigating" for m in at.metric)  # the page shows the current state


def test_analyst_acknowledges_the_regression_alert(app, app_store):
    firing = [a for a in alerts.list_alerts(app_store["engine"], ("firing",)) if a["rule"] == "CheckRegressed"]
    assert [a["labels"]["resource"].split(":")[-1] for a in firing] == ["audit-trail"]
    at = app(local_role="analyst")
    at.run()
    at.switch_page("views/alerts.py").run()
    _no_errors(at)
    assert "audit-trail" in at.dataframe[0].value.to_string()
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    _no_errors(at)
    assert alerts.get(app_store["engine"], firing[0]["id"])["state"] == "acknowledged"
    assert trail(app_store["engine"], "alert", firing[0]["id"])[0]["actor"].endswith("(local)")


def test_posture_drill_down_shows_failing_resources_and_evidence(app):
    at = app(local_role="viewer")
    at.run()
    _no_errors(at)
    crit = next(s for s in at.selectbox if s.label == "Criterion")
    crit.select("CC6.6").run()
    _no_errors(at)
    frame = next(d.value for d in at.dataframe if "message" in d.value.columns)  # the drill-down's table
    assert EVIL in set(frame["resource_name"]) and "audit-trail" in set(frame["resource_name"])
    assert any(e.label.startswith("Evidence ") for e in at.expander)
    assert not [b for b in at.button if b.label.startswith("Open an incident")]  # viewers cannot


def test_evidence_explorer_filters_and_verifies_hashes(app):
    at = app(local_role="auditor")
    at.run()
    at.switch_page("views/evidence.py").run()
    _no_errors(at)
    next(s for s in at.selectbox if s.label == "Resource type").select("aws.s3.bucket").run()
    _no_errors(at)
    frame = at.dataframe[0].value
    assert set(frame["resource_type"]) == {"aws.s3.bucket"} and "audit-trail" in set(frame["name"])
    assert any("matches" in c.value for c in at.caption)
    assert at.json






def test_identity_provider_detection(tmp_path, monkeypatch):
    from auditbook.web.server import identity_provider_configured, prepare
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert not identity_provider_configured(tmp_path)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[auth]\nredirect_uri = "https://x/oauth2callback"\n')
    assert identity_provider_configured(tmp_path)
    monkeypatch.chdir(tmp_path)
    launch = prepare("sqlite:////tmp/x.db", "0.0.0.0", 8600)  # allowed once sign-in is configured
    assert launch.argv[launch.argv.index("--server.address") + 1] == "0.0.0.0"
    assert launch.env["AUDITBOOK_DB"] == "sqlite:////tmp/x.db" and launch.token is None


def test_analyst_runs_a_containment_runbook_from_the_incident(app, app_store, monkeypatch):
    """Dry run first (the calls listed, nothing changed), then confirm; the timeline records it."""
    from moto import mock_aws
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        import boto3
        iam = boto3.client("iam")
        iam.create_user(UserName="leaky")
        key = iam.create_access_key(UserName="leaky")["AccessKey"]["AccessKeyId"]
        inc = incidents.create(app_store["engine"], ANALYST, title="Key leaked in a public repo", severity="critical")
        at = app(local_role="analyst")
        at.session_state["incident"] = inc["id"]
        at.run()
        at.switch_page("views/incidents.py").run()
        _no_errors(at)
        next(s for s in at.selectbox if s.label == "Runbook").select("deactivate-access-key").run()
        next(t for t in at.text_input if t.label == "IAM user").input("leaky")
        next(t for t in at.text_input if t.label == "Access key id").input(key)
        next(b for b in at.button if b.label == "Dry run").click().run()
        _no_errors(at)
        assert any("iam:update_access_key" in c.value for c in at.code)
        assert iam.list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Active"
        next(b for b in at.button if b.label == "Confirm and run").click().run()
        _no_errors(at)
        assert iam.list_access_keys(UserName="leaky")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    entry = [e for e in trail(app_store["engine"], "incident", inc["id"]) if e["action"] == "runbook"][0]
    assert entry["note"] == f"deactivate-access-key on leaky/{key}: done" and entry["role"] == "analyst"


def test_viewer_sees_no_runbooks(app, app_store):
    at = app(local_role="viewer")
    at.session_state["incident"] = app_store["incident"]
    at.run()
    at.switch_page("views/incidents.py").run()
    _no_errors(at)
    assert not [b for b in at.button if b.label in ("Dry run", "Confirm and run")]
