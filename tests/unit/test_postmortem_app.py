"""The incidents page's post-mortem under Streamlit's AppTest: an analyst fills category, impact,
notifications, root cause and lessons, adds and finishes action items, attaches a file (a download,
never rendered); closing a high incident without root cause and lessons is refused and the page says
why; viewers and auditors read it, and cannot change it; the wall never reaches it."""
import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from auditbook.auth import Actor
from auditbook.monitor import alerts, incident_attachments, incidents
from tests.packet_store import EVIL

ENTRY = str(Path(__file__).resolve().parents[2] / "app" / "control_room.py")
ANALYST = Actor("ana@soc.example", "analyst")
EDITING = ("Save post-mortem", "Add action item", "Save action items", "Attach")


@pytest.fixture
def app(app_store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", app_store["db"])

    def make(local_role: str, incident: int) -> AppTest:
        monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", local_role)
        at = AppTest.from_file(ENTRY, default_timeout=60)
        at.session_state["incident"] = incident
        return at
    return make


@pytest.fixture
def high_incident(app_store):
    """A high incident opened from the store's firing CheckRegressed alert, through the core."""
    engine = app_store["engine"]
    firing = next(a for a in alerts.list_alerts(engine, ("firing",)) if a["rule"] == "CheckRegressed")
    made = incidents.from_alert(engine, ANALYST, firing["id"])
    return incidents.update(engine, ANALYST, made["id"], made["version"], severity="high")


def _open(at: AppTest) -> AppTest:
    at.run()
    at.switch_page("views/incidents.py").run()
    _no_errors(at)
    return at


def _no_errors(at):
    assert not at.exception, [e.value for e in at.exception]


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _labelled(widgets, label):
    return next(w for w in widgets if w.label == label)


def _move(at, status):
    _labelled(at.selectbox, "Move to").select(status)
    _button(at, "Save changes").click().run()
    _no_errors(at)


def test_analyst_writes_the_post_mortem_and_closes_only_when_it_is_complete(app, app_store, high_incident):
    engine, inc_id = app_store["engine"], high_incident["id"]
    at = _open(app(local_role="analyst", incident=inc_id))
    assert any(s.value == "Post-mortem" for s in at.subheader)
    _move(at, "resolved")
    assert any("Closing this high incident needs root cause and lessons learned" in w.value for w in at.warning)
    _move(at, "closed")  # refused by the core, and the page says why
    assert any("a high incident is closed only with its root cause and lessons learned" in e.value.replace("\\", "")
               for e in at.error)
    assert incidents.get(engine, inc_id)["status"] == "resolved"

    _labelled(at.selectbox, "Category").select("misconfiguration")
    _labelled(at.text_input, "Customers affected").input("0")
    _labelled(at.text_area, "Systems affected").input("audit-trail bucket")
    _labelled(at.selectbox, "Customer notification required").select("no")
    _labelled(at.text_area, "Root cause").input(f"Public access block removed by {EVIL}")
    _labelled(at.text_area, "Lessons learned").input("Guard the block with an SCP.")
    _button(at, "Save post-mortem").click().run()
    _no_errors(at)
    saved = incidents.get(engine, inc_id)
    assert (saved["category"], saved["customers_affected"], saved["customer_notice_required"]) == (
        "misconfiguration", 0, False)
    assert saved["root_cause"] == f"Public access block removed by {EVIL}"  # stored as typed

    _labelled(at.text_input, "Action owner").input("kim")
    _labelled(at.text_input, "What is to be done").input("Add an SCP denying s3:DeletePublicAccessBlock")
    _button(at, "Add action item").click().run()
    _no_errors(at)
    item = incidents.detail(engine, inc_id)["actions"][0]
    assert (item["owner"], item["done_at"]) == ("kim", None)
    _labelled(at.multiselect, "Mark done").select(item["id"])
    _button(at, "Save action items").click().run()
    _no_errors(at)
    assert incidents.detail(engine, inc_id)["actions"][0]["done_by"].endswith("(local)")

    body = b"<html><script>alert(1)</script></html>"
    at.file_uploader[0].upload(f"{EVIL}.html", body, "text/html")
    _button(at, "Attach").click().run()
    _no_errors(at)
    files = incidents.detail(engine, inc_id)["attachments"]
    assert [(f["filename"], f["sha256"]) for f in files] == [("_img src=x onerror=alert(1)_.html",
                                                              hashlib.sha256(body).hexdigest())]
    assert [d.label for d in at.download_button] == ["Download"]
    assert incident_attachments.DOWNLOAD_MIME == "application/octet-stream"

    _move(at, "closed")
    assert incidents.get(engine, inc_id)["status"] == "closed"
    mine = [e["action"] for e in incidents.timeline(engine, inc_id) if e["actor"].endswith("(local)")]
    assert mine == ["update", "update", "add action", "action done", "attach", "update"]  # resolve, post-mortem, close
    assert [m for m in [*at.markdown, *at.caption] if "<img src=x" in m.value] == []


def test_a_superscript_count_is_an_error_on_the_page_not_a_crash(app, app_store, high_incident):
    at = _open(app(local_role="analyst", incident=high_incident["id"]))
    _labelled(at.text_input, "Customers affected").input("\u00b2")  # '²'.isdigit() is True, int('²') raises
    _button(at, "Save post-mortem").click().run()
    _no_errors(at)
    assert any("customers_affected: '\u00b2' is not a count" in e.value.replace("\\", "") for e in at.error)
    assert incidents.get(app_store["engine"], high_incident["id"])["version"] == high_incident["version"]


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_read_only_roles_read_the_post_mortem_and_cannot_change_it(app, app_store, high_incident, role):
    engine = app_store["engine"]
    incidents.update(engine, ANALYST, high_incident["id"], high_incident["version"], root_cause=f"cause {EVIL}",
                     category="misconfiguration")
    incident_attachments.attach(engine, ANALYST, high_incident["id"], "extract.json", b"{}")
    at = _open(app(local_role=role, incident=high_incident["id"]))
    assert any(s.value == "Post-mortem" for s in at.subheader)
    assert f"cause {EVIL}" in [t.value for t in at.text]  # shown as text, never as markup
    assert not [b for b in at.button if b.label in EDITING]
    assert not at.text_area and not at.file_uploader
    assert [d.label for d in at.download_button] == ["Download"]  # evidence they may read
    assert [m for m in [*at.markdown, *at.caption] if "<img src=x" in m.value] == []


def test_the_wall_never_reaches_the_post_mortem(app, high_incident):
    at = app(local_role="wall", incident=high_incident["id"])
    at.run()
    _no_errors(at)
    assert at.session_state["ab_pages"] == ["wall"]
    assert not [b for b in at.button if b.label in EDITING] and not at.download_button


def test_an_analyst_links_a_criterion_from_the_page(app, app_store, high_incident):
    """The link form saves through the page's versioned save (it once named it before it was defined)."""
    at = _open(app("analyst", high_incident["id"]))
    _labelled(at.selectbox, "Link to").select("criterion")
    _labelled(at.text_input, "Reference (criterion id, check|account|region|resource, or alert id)").input("CC6.1")
    _button(at, "Add link").click().run()
    _no_errors(at)
    got = incidents.get(app_store["engine"], high_incident["id"])
    assert any(link["kind"] == "criterion" and link["ref"] == "CC6.1" for link in got["links"])
