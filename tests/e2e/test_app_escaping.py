"""Untrusted text in the control room is shown as text, in the element it goes into (markdown, HTML
block, alert); the packets page takes a public key as text or an upload, never a server path; a
runbook's one-line errors are shown as plain text. AppTest, and Chromium for what only a browser
shows (no image fetched, no markup rendered)."""
from __future__ import annotations

import datetime as dt
import http.server
import re
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from auditbook.auth import Actor
from auditbook.demo.run import free_port
from auditbook.monitor import incidents
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.packet_store import build_store

APP = Path(__file__).resolve().parents[2] / "app"
ENTRY = str(APP / "control_room.py")
sys.path.insert(0, str(APP))
import ui  # noqa: E402  (the control room's own module)


def seen(markdown: str) -> str:
    """What a reader sees of text written through ui.md (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


# -- the escapers ----------------------------------------------------------------------------------

def test_md_keeps_text_as_typed_and_makes_markdown_inert():
    assert ui.md("O'Brien") == "O\\'Brien" and seen(ui.md("O'Brien")) == "O'Brien"  # was O&#x27;Brien
    payload = "![x](http://127.0.0.1:9/x.png) <b>bold</b> *em* [link](javascript:alert(1)) &amp; 1. # `c` |t|"
    escaped = ui.md(payload)
    assert seen(escaped) == payload
    assert not re.search(r"(?<!\\)[!\[\]()<>*&#`|]", escaped)  # every markdown or HTML character escaped


def test_h_keeps_an_html_block_closed_across_blank_lines():
    text = "title\n\n![x](http://127.0.0.1:9/x.png)\r\n<script>"
    assert ui.h(text) == "title&#10;&#10;![x](http://127.0.0.1:9/x.png)&#13;&#10;&lt;script&gt;"
    assert "\n" not in ui.h(text)  # a blank line would end the HTML block and start markdown


# -- AppTest ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("escaping")
    db = f"sqlite:///{root}/store.db"
    build_store(db)
    from auditbook.store.db import open_engine
    return {"root": root, "db": db, "engine": open_engine(db)}


@pytest.fixture
def app(store, monkeypatch, tmp_path):
    monkeypatch.setenv("AUDITBOOK_DB", store["db"])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("AUDITBOOK_PACKET_PUBLIC_KEY", raising=False)

    def make(local_role="admin"):
        monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", local_role)
        return AppTest.from_file(ENTRY, default_timeout=60)
    return make


def test_a_runbook_error_is_shown_as_plain_text_not_a_traceback(app, store):
    """runbooks.plan_* raise a one-line UserError for AWS errors and failed preconditions; it may quote
    what the analyst typed."""
    from moto import mock_aws
    hostile = "![x](http://127.0.0.1:9/x.png)"
    inc = incidents.create(store["engine"], Actor("ana", "analyst"), title="Runbook errors", severity="low")
    with mock_aws():
        at = app("analyst")
        at.session_state["incident"] = inc["id"]
        at.run()
        at.switch_page("views/incidents.py").run()
        next(s for s in at.selectbox if s.label == "Runbook").select("disable-console-login").run()
        next(t for t in at.text_input if t.label == "IAM user").input(hostile)
        next(b for b in at.button if b.label == "Dry run").click().run()
        assert not at.exception
        assert [e.value for e in at.error] == [ui.md(f"--user: {hostile!r} has no console login to disable")]
        next(s for s in at.selectbox if s.label == "Runbook").select("quarantine-instance").run()
        next(t for t in at.text_input if t.label == "Instance id").input("i-0123456789abcdef0")
        next(t for t in at.text_input if t.label == "Region").input("no such region!")
        next(b for b in at.button if b.label == "Dry run").click().run()
        assert not at.exception  # botocore's InvalidRegionError was a traceback on the page
        assert len(at.error) == 1 and seen(at.error[0].value).startswith("--region: 'no such region!': ")


@pytest.fixture(scope="module")
def packet(store):
    """A tiny signed packet, recorded in the store as built."""
    from auditbook.report.packet.manifest import (
        FORMAT,
        MANIFEST,
        SIGNATURE,
        canonical_bytes,
        file_entries,
        manifest_sha256,
    )
    from auditbook.report.packet.signing import (
        Ed25519Signer,
        dumps_signature,
        key_id,
        keygen,
        load_public_key,
    )
    from auditbook.store.models import Packet
    root = store["root"]
    private, public = keygen(str(root / "signing"))
    folder = root / "packet"
    folder.mkdir()
    (folder / "index.html").write_text("<p>the packet</p>")
    raw = canonical_bytes({"format": FORMAT, "files": file_entries(folder), "previous_manifest_sha256": None})
    (folder / MANIFEST).write_bytes(raw)
    signature = Ed25519Signer(private).sign(raw)
    (folder / SIGNATURE).write_bytes(dumps_signature(signature))
    with Session(store["engine"]) as session:
        session.add(Packet(period_label="2026-Q3", period_start=dt.date(2026, 7, 1), period_end=dt.date(2026, 9, 30),
                           path=str(folder), manifest_sha256=manifest_sha256(folder), previous_manifest_sha256=None,
                           signer_algorithm="ed25519", key_id=key_id(load_public_key(public)),
                           built_at=dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc), run_ids=[1], failed=[]))
        session.commit()
    return {"public": Path(public), "pem": Path(public).read_text()}


def _packets_page(at, key_text=None):
    at.run()
    at.switch_page("views/packets.py").run()
    if key_text is not None:
        next(t for t in at.text_area if t.label.startswith("Public key")).input(key_text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_packets_are_verified_with_a_pasted_key(app, packet):
    at = _packets_page(app("auditor"), packet["pem"])
    assert at.dataframe[0].value["verification"].tolist() == ["valid"]
    assert "Verifying with the pasted key" in seen(at.caption[0].value)


def test_packets_are_verified_with_an_uploaded_key_of_bounded_size(app, packet):
    at = _packets_page(app("admin"))
    at.file_uploader[0].upload("signing.pub", packet["pem"].encode()).run()
    assert not at.exception
    assert at.dataframe[0].value["verification"].tolist() == ["valid"]
    assert "Verifying with the uploaded file signing.pub" in seen(at.caption[0].value)
    at.file_uploader[0].clear().upload("big.pub", b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 17000).run()
    assert [seen(e.value) for e in at.error] == ["uploaded file big.pub: larger than 16 KiB: not a public key"]


def test_a_path_typed_into_the_key_box_is_never_opened(app, packet):
    """The box used to take a server path: any auditor could probe files and read /dev/zero."""
    at = _packets_page(app("auditor"), str(packet["public"]))  # a path to the right key: not read
    assert [seen(e.value) for e in at.error] == ["pasted key: not a PEM public key (-----BEGIN PUBLIC KEY----- …)"]
    assert at.dataframe[0].value["verification"].tolist()[0].startswith("not checked: pasted key: not a PEM")
    at = _packets_page(app("auditor"), "-----BEGIN PUBLIC KEY-----\n" + "A" * 20000)
    assert at.dataframe[0].value["verification"].tolist()[0].startswith("not checked: ")  # 16 KiB at most


def test_the_operator_configured_key_is_read_bounded(app, packet, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_PACKET_PUBLIC_KEY", str(packet["public"]))
    at = _packets_page(app("admin"))
    assert at.dataframe[0].value["verification"].tolist() == ["valid"]
    monkeypatch.setenv("AUDITBOOK_PACKET_PUBLIC_KEY", "/dev/zero")
    at = _packets_page(app("admin"))
    assert [seen(e.value) for e in at.error] == ["configured key: /dev/zero: not usable as a key file (a character device)"]


# -- Chromium --------------------------------------------------------------------------------------

class Beacon(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Beacon.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def beacon():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def hostile_app(store, beacon, tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile-home")
    register = home / "exceptions.yaml"
    register.write_text(f'exceptions:\n  - id: "![x]({beacon}/exception.png)"\n')
    engine = store["engine"]
    incidents.create(engine, Actor("ana", "analyst"), severity="high",
                     title=f"Wall title\n\n![x]({beacon}/wall.png)",
                     assignee=f"O'Brien & <b>Co</b> ![x]({beacon}/assignee.png)")
    server = start(store["db"], port=free_port(), local_role="admin", exceptions=str(register), cwd=home,
                   extra_env={"HOME": str(home)}, log=open(home / "streamlit.log", "wb"))
    try:
        yield server
    finally:
        stop(server)


def test_hostile_text_is_shown_as_typed_and_fetches_nothing(hostile_app, beacon):
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        requests, dialogs = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(hostile_app.url)
        expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=30000)

        page.get_by_role("link", name="Incidents").click()
        caption = page.get_by_test_id("stCaptionContainer").filter(has_text="Assignee:")
        expect(caption).to_contain_text(f"Assignee: O'Brien & <b>Co</b> ![x]({beacon}/assignee.png) · opened",
                                        timeout=15000)
        page.get_by_role("link", name="Settings").click()
        alert = page.get_by_test_id("stAlert").filter(has_text="exceptions.yaml")
        expect(alert).to_contain_text(f"exception '![x]({beacon}/exception.png)': field id", timeout=15000)

        page.goto(hostile_app.base + "/?view=wall")
        rows = page.locator(".ab-row").filter(has_text="Wall title")
        expect(rows).to_contain_text(f"![x]({beacon}/wall.png)", timeout=30000)
        page.wait_for_timeout(1000)
        assert page.locator(f"img[src^='{beacon}']").count() == 0
        browser.close()
    assert Beacon.hits == [] and dialogs == []
    assert [u for u in requests if not u.startswith(hostile_app.base) and not u.startswith("data:")] == []
