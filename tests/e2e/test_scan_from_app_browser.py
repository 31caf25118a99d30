"""Starting a scan from the control room for real: a moto server on 127.0.0.1 as AWS, a first run from
`auditbook scan --accounts` (its accounts file names the account), then the control room (admin, with
the server's AWS credentials) in Chromium: the account's name in the filter, "Start scan", the page
polling the request until the scan — run by a thread of the server through auditbook.scan.run_scan —
has stored its run, and the outcome shown; who started it is in the audit trail."""
import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.demo.run import MotoServer, demo_environment, free_port
from auditbook.monitor import scan_requests
from auditbook.store import audit_log
from auditbook.store.db import open_engine
from auditbook.store.session import reading
from auditbook.web.server import start, stop
from tests.browser import launch

BIN = [sys.executable, "-m", "auditbook.cli.main"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan-app")
    with MotoServer(0) as srv:
        env = demo_environment(srv.url)
        accounts = root / "accounts.yaml"
        accounts.write_text("accounts:\n  - id: '123456789012'\n    name: management\n")
        db = f"sqlite:///{root}/store.db"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        proc = subprocess.run(BIN + ["scan", "--accounts", str(accounts), "--regions", "us-east-1", "--db", db],
                              capture_output=True, text=True, env={**clean, **env}, cwd=root, timeout=180)
        assert proc.returncode == 0, proc.stderr
        server = start(db, port=free_port(), local_role="admin", log=open(root / "streamlit.log", "wb"),
                       extra_env=env, cwd=root)
        try:
            yield {"db": db, "url": server.base, "open": server.url}
        finally:
            stop(server)


def test_admin_starts_a_scan_and_sees_it_stored(served):
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 2400}).new_page()
            page.goto(served["open"])
            expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=60000)
            page.get_by_label("Account", exact=True).click()
            expect(page.get_by_role("option", name="123456789012 · management")).to_be_visible(timeout=15000)
            page.keyboard.press("Escape")
            expect(page.get_by_text("No scan has been started from the control room yet.")).to_be_visible()
            page.get_by_role("button", name="Start scan").click()
            expect(page.get_by_text(re.compile(r"Scan 1 requested by .*: done, run 2 stored"))).to_be_visible(timeout=180000)
            expect(page.get_by_text(re.compile(r"Latest run 2 at"))).to_be_visible(timeout=30000)
        finally:
            browser.close()
    engine = open_engine(served["db"])
    done = scan_requests.recent(engine, 5)
    assert [(r["state"], r["run_id"], r["active"]) for r in done] == [("done", 2, False)]
    assert done[0]["planned"] and done[0]["done"] == done[0]["planned"]
    with reading(engine) as session:
        entries = audit_log.trail(session, "scan", done[0]["id"])
    assert [(e["action"], e["role"]) for e in entries] == [("start_scan", "admin"), ("finish_scan", "system")]
    assert entries[0]["actor"].endswith("(local)")
