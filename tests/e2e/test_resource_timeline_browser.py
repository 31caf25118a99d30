"""The change behind a finding in a real headless Chromium against the control room (`streamlit run`, as
`auditbook app` starts it, 127.0.0.1 only): the timeline of a security group whose port 22 was opened to
the world shows the change (the rule added) beside the CloudTrail AuthorizeSecurityGroupIngress event —
who, when, from where, the session and its ticket — and, for the day no CloudTrail log was read, the
evidence gap. The resource's Name tag is HTML: it shows as text and nothing runs."""
import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.demo.run import free_port
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.resource_timeline_store import EVIL, ROLE_ARN, SOURCE_IP, build_store, day

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))
from links import resource_link  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("timeline-browser")
    db = f"sqlite:///{root}/store.db"
    info = build_store(db)
    server = start(db, port=free_port(), local_role="viewer", log=open(root / "streamlit.log", "wb"))
    try:
        yield dict(info, url=server.base, open=server.url)
    finally:
        stop(server)


def test_the_timeline_shows_who_opened_the_port_beside_the_change(served):
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1600, "height": 2400}).new_page()
            dialogs, outside = [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served["url"]) and
                    not r.url.startswith("data:") else None)
            page.goto(served["open"])  # the printed link: the token becomes a cookie
            expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=30000)
            page.goto(f"{served['url']}/{resource_link(served['arn'])}")
            expect(page.get_by_role("heading", name="Resource timeline")).to_be_visible(timeout=30000)
            who = page.get_by_text(f"AuthorizeSecurityGroupIngress by {ROLE_ARN}")
            expect(who).to_be_visible(timeout=30000)
            sentence = who.inner_text()
            opened_at = (day(1).replace(hour=15, minute=41, second=7)).strftime("%Y-%m-%d")
            assert f"from {SOURCE_IP}" in sentence and "ticket CHG-1042 (session name)" in sentence
            assert opened_at in sentence, sentence
            beside = page.locator("[data-testid='stHorizontalBlock']").filter(has=who).last  # the change's two columns
            expect(beside.get_by_text("What changed")).to_be_visible()
            expect(beside.get_by_text("CloudTrail write events on the resource in this interval")).to_be_visible()
            expect(beside.get_by_text("IpPermissions[1]").first).to_be_attached()  # the rule added, in the diff
            expect(page.get_by_text(re.compile(r"^Changed between")).first).to_be_visible()
            expect(page.get_by_text("Evidence gap: no CloudTrail log read covers account 123456789012 · current in us-east-1")
                   .first).to_be_visible()
            expect(page.get_by_text(EVIL).first).to_be_visible()  # the Name tag in the record, as text
            assert page.locator("img[src='x']").count() == 0 and page.locator("b", has_text="web").count() == 0
            page.screenshot(path=str(Path(served["db"][len("sqlite:///"):]).parent / "timeline.png"), full_page=True)
            assert dialogs == [] and outside == []
        finally:
            browser.close()
