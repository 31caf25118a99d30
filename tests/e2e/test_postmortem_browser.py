"""The post-mortem in a real headless Chromium against the control room (started as `auditbook app`
starts it, opened with the link it prints): an incident opened from an alert through the core is
resolved, its closing refused while the post-mortem lacks root cause and lessons (the page says why),
the post-mortem filled in — category, impact, root cause, lessons, an action item, an attachment
(uploaded, then downloaded as a file, never rendered) — and then it closes. 127.0.0.1 only."""
import hashlib
import re
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.auth import Actor
from auditbook.demo.run import free_port
from auditbook.monitor import alerts, incidents
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.e2e.test_app_browser import _choose
from tests.packet_store import EVIL, build_store

ATTACHMENT = b"<html><body><script>document.title='rendered'</script>CloudTrail extract</body></html>"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("postmortem-browser")
    db = f"sqlite:///{root}/store.db"
    build_store(db)
    engine = open_engine(db)
    firing = next(a for a in alerts.list_alerts(engine, ("firing",)) if a["rule"] == "CheckRegressed")
    made = incidents.from_alert(engine, Actor("ana@soc.example", "analyst"), firing["id"])
    if made["severity"] != "high":
        made = incidents.update(engine, Actor("ana@soc.example", "analyst"), made["id"], made["version"],
                                severity="high")
    port = free_port()
    server = start(db, port=port, local_role="analyst", log=open(root / "streamlit.log", "wb"))
    try:
        yield {"engine": engine, "incident": made["id"], "url": server.base, "open": server.url, "root": root}
    finally:
        stop(server)


# a script run in progress: the running indicator, or elements of the previous run not yet replaced
RUNNING = ('() => !document.querySelector(\'[data-testid="stStatusWidgetRunningIcon"], '
           '[data-testid="stStatusWidgetRunningManIcon"], [data-stale="true"]\')')


def _until(page, check, timeout: float = 20.0):
    """Wait until the store shows what the page saved, then until the page's rerun that follows the
    save is over (a Streamlit rerun is asynchronous: until it ends, old and new widgets coexist)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            page.wait_for_timeout(300)
            page.wait_for_function(RUNNING, timeout=timeout * 1000)
            return value
        time.sleep(0.2)
    raise AssertionError("the store never showed the change")


def _move(page, status: str) -> None:
    _choose(page, "Move to", status)
    page.get_by_role("button", name="Save changes").click()


def test_triaged_incident_post_mortem_then_close(served):
    engine, inc_id = served["engine"], served["incident"]
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 2600}, accept_downloads=True)
            page = context.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(served["open"])
            expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=30000)
            page.get_by_role("link", name="Incidents").click()
            expect(page.get_by_role("heading", name=f"Incident {inc_id}")).to_be_visible(timeout=20000)

            _move(page, "resolved")
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("resolved", timeout=15000)
            expect(page.get_by_text("Closing this high incident needs root cause and lessons learned").first) \
                .to_be_visible(timeout=15000)
            _move(page, "closed")  # refused: the page says why
            expect(page.get_by_text(re.compile("a high incident is closed only with its root cause and lessons "
                                               "learned"))).to_be_visible(timeout=15000)
            assert incidents.get(engine, inc_id)["status"] == "resolved"

            _fill_post_mortem(page)
            _until(page, lambda: incidents.get(engine, inc_id)["lessons_learned"])
            saved = incidents.get(engine, inc_id)
            assert (saved["category"], saved["customers_affected"]) == ("misconfiguration", 0)
            assert saved["root_cause"] == f"Bucket policy changed by a script ({EVIL})"

            page.get_by_label("Action owner", exact=True).fill("kim")
            page.get_by_label("What is to be done", exact=True).fill("Add an SCP denying DeletePublicAccessBlock")
            page.get_by_role("button", name="Add action item").click()
            items = _until(page, lambda: incidents.detail(engine, inc_id)["actions"])
            assert items[0]["owner"] == "kim"
            expect(page.get_by_text(re.compile(r"· add action$"))).to_be_visible(timeout=15000)  # the rerun is done

            _attach_and_download(page, served)
            _move(page, "closed")
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("closed", timeout=15000)
            assert incidents.get(engine, inc_id)["status"] == "closed"
            assert all(u.startswith(served["url"]) or u.startswith(("data:", "blob:")) for u in requests), \
                [u for u in requests if not u.startswith(served["url"])]
        finally:
            browser.close()


def _fill_post_mortem(page) -> None:
    _choose(page, "Category", "misconfiguration")
    page.get_by_label("Customers affected", exact=True).fill("0")
    page.get_by_label("Systems affected", exact=True).fill("audit-trail S3 bucket")
    page.get_by_label("Data affected", exact=True).fill("none: the bucket holds CloudTrail logs")
    page.get_by_label("Root cause", exact=True).fill(f"Bucket policy changed by a script ({EVIL})")
    page.get_by_label("Lessons learned", exact=True).fill("Guard the public access block with an SCP.")
    page.get_by_role("button", name="Save post-mortem").click()
    expect(page.get_by_text("Closing this high incident needs")).to_have_count(0, timeout=15000)


def _attach_and_download(page, served) -> None:
    engine, inc_id = served["engine"], served["incident"]
    upload = served["root"] / "cloudtrail-extract.html"
    upload.write_bytes(ATTACHMENT)
    page.get_by_role("region", name="Attach a file").get_by_test_id("stFileUploaderDropzoneInput") \
        .set_input_files(str(upload))
    expect(page.get_by_role("button", name="Remove cloudtrail-extract.html")).to_be_visible(timeout=15000)
    page.get_by_role("button", name="Attach", exact=True).click()
    files = _until(page, lambda: incidents.detail(engine, inc_id)["attachments"])
    assert (files[0]["filename"], files[0]["sha256"]) == ("cloudtrail-extract.html", hashlib.sha256(ATTACHMENT).hexdigest())
    button = page.get_by_role("button", name="Download", exact=True)
    expect(button).to_be_visible(timeout=15000)
    with page.expect_download(timeout=20000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "cloudtrail-extract.html"
    assert open(download.path(), "rb").read() == ATTACHMENT  # saved as a file
    assert page.title() != "rendered" and len(page.context.pages) == 1  # never opened or run in the page
