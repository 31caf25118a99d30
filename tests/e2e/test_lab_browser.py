"""`auditbook lab` in a real headless Chromium: JupyterLab started as the command starts it (127.0.0.1,
a fresh token, the store read-only in the kernels' environment), opened with the link it prints,
the explore notebook run from the Run menu, and its first chart drawn (issue 13 §7). The lab serves
a copy of notebooks/, so nothing it saves reaches the committed notebooks."""
import shutil
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.demo.run import free_port
from auditbook.web.lab import NOTEBOOKS, read_only_url, start_lab, stop_lab
from tests.browser import launch
from tests.packet_store import build_store


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    db = f"sqlite:///{root}/store.db"
    build_store(db)
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    with open(root / "lab.log", "wb") as log:
        running = start_lab(db, free_port(), notebooks=root / "notebooks", log=log)
        try:
            yield running
        finally:
            stop_lab(running)


def test_the_lab_refuses_requests_without_its_token(lab):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(lab.base + "/api/contents/explore.ipynb", timeout=10)
    assert refused.value.code == 403
    guessed = urllib.request.Request(lab.base + "/api/contents/explore.ipynb", headers={"Authorization": "token nope"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(guessed, timeout=10)


def test_the_explore_notebook_runs_in_jupyterlab_and_draws_its_first_chart(lab):
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab.url)
            expect(page.get_by_role("heading", name="auditbook — the analyst's workbook")).to_be_visible(timeout=60000)
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
            chart = page.locator(".jp-OutputArea .js-plotly-plot").first
            expect(chart).to_be_visible(timeout=120000)
            expect(chart).to_contain_text("Criteria failing per category")
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").filter(
                has_text="Traceback").count() == 0
        finally:
            browser.close()


def test_auditbook_lab_prints_its_link_and_keeps_the_token_off_the_command_line(tmp_path):
    """`auditbook lab` as a process: the link it prints opens the lab; the server (the same process,
    exec'd) read the token from a private config file that is gone once it answers, and its
    environment (every kernel's) holds neither the token nor the caller's AWS credentials; the
    kernels get the store read-only."""
    import os
    import signal
    import subprocess
    import time

    from tests.conftest import EXE
    db = f"sqlite:///{tmp_path}/s.db"
    from auditbook.store.db import open_engine
    open_engine(db).dispose()
    port = free_port()
    caller = {**os.environ, "AWS_SECRET_ACCESS_KEY": "probe-aws-secret", "SLACK_WEBHOOK": "https://hooks.example/x"}
    proc = subprocess.Popen([EXE, "lab", "--db", db, "--port", str(port), "--notebooks", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            env=caller)
    try:
        assert "read-only" in proc.stdout.readline()
        link = proc.stdout.readline().strip()
        assert link.startswith(f"http://127.0.0.1:{port}/lab?token=")
        token = link.split("token=", 1)[1]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"})
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(request, timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
        cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read().decode()  # answering: exec'd by now
        assert "jupyter" in cmdline and token not in cmdline
        config = next(a.split("=", 1)[1] for a in cmdline.split("\0") if a.startswith("--config="))
        assert not os.path.exists(config) and not os.path.exists(os.path.dirname(config))  # deleted as read
        environ = open(f"/proc/{proc.pid}/environ", "rb").read().decode().split("\0")
        assert f"AUDITBOOK_DB={read_only_url(f'sqlite:///{tmp_path}/s.db')}" in environ
        assert not [e for e in environ if token in e or "probe-aws-secret" in e or e.startswith(("AWS_", "SLACK_"))]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
