"""The packet's notebook workers take their criteria from a queue: a worker that finishes a notebook
gets the next one, so a long criterion never holds up short ones queued behind it on the same worker
(they used to be dealt round-robin before any ran). Real worker processes and kernels, a tiny notebook
that sleeps for its parameter."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import nbformat
import pytest

from auditbook.report.packet.workers import BuildAborted, Workers


def run_in_workers(jobs, workers, root, notebook, env, on_done):
    """The jobs on `workers` worker processes, as a build gives them out (Workers.run)."""
    with Workers(min(workers, len(jobs)), root, notebook, env) as pool:
        return pool.run(jobs, on_done)


def _notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("seconds = 0.0\ncriterion = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import time, os\nopen(f'kernel-{criterion}', 'w').write(str(os.getpid()))\n"
        "open(f'started-{criterion}', 'w').write(str(os.getppid()))\ntime.sleep(seconds)")]
    path = folder / "sleep.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def packet_root(tmp_path):
    for sub in ("criteria", "notebooks"):
        (tmp_path / sub).mkdir()
    return tmp_path


def test_a_long_criterion_does_not_hold_up_those_queued_after_it(packet_root):
    notebook = _notebook(packet_root)
    jobs = [("LONG", {"seconds": 6.0, "criterion": "LONG"})] + [
        (f"S{i}", {"seconds": 0.0, "criterion": f"S{i}"}) for i in range(5)]
    seen = []
    outcomes = run_in_workers(jobs, 2, str(packet_root), str(notebook), {"AUDITBOOK_DB": "sqlite://"}, on_done=seen.append)
    assert sorted(o["criterion"] for o in outcomes) == sorted(c for c, _ in jobs) and outcomes == seen
    assert all(o["error"] is None for o in outcomes), outcomes
    by_worker = {}
    for o in outcomes:
        by_worker.setdefault(o["process"], []).append(o["criterion"])
    long_worker = next(p for p, done in by_worker.items() if "LONG" in done)
    # round-robin gave the long criterion's worker S1 and S3 too; the queue gives them to the other one
    assert by_worker[long_worker] == ["LONG"], by_worker
    assert len(by_worker) == 2 and outcomes[-1]["criterion"] == "LONG"
    for criterion, _ in jobs:  # each page and notebook written once, by the worker that ran it
        assert (packet_root / "criteria" / f"{criterion}.html").is_file()
        assert (packet_root / "notebooks" / f"{criterion}.ipynb").is_file()


def test_one_worker_runs_the_queue_in_order(packet_root):
    notebook = _notebook(packet_root)
    jobs = [(f"C{i}", {"seconds": 0.0, "criterion": f"C{i}"}) for i in range(4)]
    outcomes = run_in_workers(jobs, 1, str(packet_root), str(notebook), {"AUDITBOOK_DB": "sqlite://"}, on_done=lambda o: None)
    assert [o["criterion"] for o in outcomes] == ["C0", "C1", "C2", "C3"]
    assert len({o["process"] for o in outcomes}) == 1


def test_a_worker_killed_mid_queue_aborts_with_the_criteria_not_done(packet_root):
    notebook = _notebook(packet_root)
    jobs = [("SLOW", {"seconds": 60.0, "criterion": "SLOW"}), ("NEXT", {"seconds": 60.0, "criterion": "NEXT"}),
            ("LAST", {"seconds": 0.0, "criterion": "LAST"})]
    killer = threading.Thread(target=_kill_the_worker_running, args=(packet_root, "SLOW"), daemon=True)
    killer.start()
    with pytest.raises(BuildAborted) as caught:
        run_in_workers(jobs, 1, str(packet_root), str(notebook), {"AUDITBOOK_DB": "sqlite://"}, on_done=lambda o: None)
    message = str(caught.value)
    assert "was killed by signal 9" in message and "criteria not done: SLOW, NEXT, LAST" in message, message
    killer.join(timeout=5)


def test_a_kernel_killed_mid_notebook_fails_that_criterion_and_the_queue_goes_on(packet_root):
    """nbclient notices a dead kernel once a second while it waits for the cell, and the worker goes on
    with a fresh kernel. With a blocking kernel client it waited for the cell's 600 s timeout, and the
    build sat at "N/M criterion notebooks" until Ctrl-C."""
    import time
    notebook = _notebook(packet_root)
    jobs = [("SLOW", {"seconds": 300.0, "criterion": "SLOW"}), ("NEXT", {"seconds": 0.0, "criterion": "NEXT"})]
    killer = threading.Thread(target=_kill_the_worker_running, args=(packet_root, "SLOW", "kernel"), daemon=True)
    killer.start()
    t0 = time.monotonic()
    outcomes = run_in_workers(jobs, 1, str(packet_root), str(notebook), {"AUDITBOOK_DB": "sqlite://"}, on_done=lambda o: None)
    killer.join(timeout=5)
    assert time.monotonic() - t0 < 60
    errors = {o["criterion"]: o["error"] for o in outcomes}
    assert errors["NEXT"] is None and "DeadKernelError" in errors["SLOW"], errors
    assert (packet_root / "criteria" / "SLOW.html").is_file() and (packet_root / "criteria" / "NEXT.html").is_file()


def _kill_the_worker_running(root: Path, criterion: str, which: str = "started") -> None:
    """Kill the worker running `criterion` once its notebook has started (the kernel's parent: the
    notebook writes its pid into started-<criterion>), or that kernel itself (which="kernel")."""
    import time
    deadline = time.monotonic() + 90
    started = root / f"{which}-{criterion}"
    while time.monotonic() < deadline and not started.is_file():
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written
    os.kill(int(started.read_text()), signal.SIGKILL)


def test_the_kernels_take_the_findings_the_build_hands_them(history_store, packet_keys, tmp_path, monkeypatch):
    """The build reads the last run's findings once and its kernels use that read: a build whose handed
    findings are marked shows the mark on its pages (each kernel would otherwise have read the store)."""
    from auditbook.history.period import parse_period
    from auditbook.report.packet import build as packet_build
    from auditbook.report.packet.signing import Ed25519Signer
    from tests.packet_store import PERIOD
    real = packet_build.handed_latest_findings

    def marked(*args):
        values = real(*args)
        assert values and any(values.values())
        return {key: [{**f, "message": "handed-by-the-build"} for f in found] for key, found in values.items()}
    monkeypatch.setattr(packet_build, "handed_latest_findings", marked)
    result = packet_build.build_packet(period=parse_period(start=PERIOD[0], end=PERIOD[1]), out=tmp_path / "p",
                                       signer=Ed25519Signer(packet_keys["key"]), db=history_store["db"],
                                       catalog_path=Path(history_store["catalog"]), workers=2)
    assert not result.failed and "handed reads" in result.timings
    pages = {p.name: p.read_text() for p in (tmp_path / "p" / "criteria").glob("*.html")}
    with_checks = [name for name, page in pages.items() if "handed-by-the-build" in page]
    assert with_checks, "no page shows the handed findings"
    # the handoff's folder (inside the partial folder while the build runs) is not part of the packet
    assert not [p for p in (tmp_path / "p").rglob("*") if "handed" in p.name]
    manifest = (tmp_path / "p" / "manifest.json").read_text()
    assert ".handed-reads" not in manifest and sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_the_abort_names_the_criteria_running_on_the_other_workers_too():
    """A dead worker aborts the build; the message names every criterion not done: its own, those the
    other workers were still running, and those still queued."""
    import subprocess
    import sys

    from auditbook.report.packet.workers import _check_finished, _Queue
    dead = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        dead.wait(timeout=30)
        states = [{"proc": dead, "job": ("SLOW", {})}, {"proc": alive, "job": ("OTHER", {})}]
        with pytest.raises(BuildAborted) as caught:
            _check_finished(states[0], _Queue([("LAST", {})], None, None), states)
        assert "was killed by signal 9" in str(caught.value)
        assert "criteria not done: SLOW, OTHER, LAST" in str(caught.value), str(caught.value)
    finally:
        alive.kill()
        alive.wait()
