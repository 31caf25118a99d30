"""Interrupted packet builds: `kill -9` of `auditbook packet` leaves no worker or kernel running (they
die with it), and the next build removes the partial folder it left; Ctrl-C (SIGINT to the build's
process group, as a terminal sends it) stops everything, exits 130 with "interrupted" and no
traceback, and leaves nothing behind. Real processes on a small store (tests/packet_store.py)."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.packet_store import PERIOD, build_store, small_catalog

EXE = str(Path(sys.executable).with_name("auditbook"))
KERNEL = re.compile(r" -m (auditbook\.report\.packet\.kernel|ipykernel_launcher) ")  # ours, or plain ipykernel


@pytest.fixture(scope="module", autouse=True)
def ctrl_c_reaches_the_builds():
    """A process started with SIGINT ignored (a background job of a shell without job control, as CI
    may run the tests) passes that on through exec, and Python then keeps Ctrl-C ignored: the builds
    would finish instead of stopping. A handler installed here is reset to the default at exec."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from auditbook.report.packet.signing import keygen
    root = tmp_path_factory.mktemp("interrupt")
    db = f"sqlite:///{root}/store.db"
    build_store(db)
    keygen(str(root / "signer"))
    return {"db": db, "catalog": small_catalog(root / "catalog.yaml"), "key": root / "signer.key"}


class Build:
    """`auditbook packet` in a session of its own (so SIGINT to its process group is what Ctrl-C at a
    terminal sends), output to files (an orphan holding a pipe cannot block the test)."""

    def __init__(self, store, out: Path, *extra: str):
        self.out = out
        self.log = out.parent / f"{out.name}.stderr"
        with open(self.log, "wb") as err, open(out.parent / f"{out.name}.stdout", "wb") as stdout:
            self.proc = subprocess.Popen(
                [EXE, "packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out), "--signer",
                 f"ed25519:{store['key']}", "--db", store["db"], "--catalog", store["catalog"], *extra],
                stdout=stdout, stderr=err, start_new_session=True)

    def stderr(self) -> str:
        return self.log.read_text()

    def tree(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def wait_for(self, ready, timeout: float = 90) -> list[psutil.Process]:
        """Poll until ready(tree) holds; the process tree at that moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the build ended early: {self.stderr()}"
            tree = self.tree()
            if ready(tree):
                return tree
            time.sleep(0.05)
        raise AssertionError(f"the build never got there: {self.stderr()}")


def _cmd(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return ""


def _kernels(tree) -> int:
    return sum(bool(KERNEL.search(_cmd(proc))) for proc in tree)


def _alive(proc: psutil.Process) -> bool:
    try:  # is_running() compares the creation time too: a reused PID is not our process
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _groups_in_use(groups: set[int]) -> list[str]:
    """Every live process in one of these process groups or sessions (an orphan keeps its group and
    session when it is re-parented, so this finds what ancestry no longer does)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(proc.pid) in groups or os.getsid(proc.pid) in groups:
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            pass
    return found


def assert_nothing_left_running(build: Build, snapshot: list[psutil.Process], within: float = 5.0) -> None:
    groups = {build.proc.pid}
    for proc in snapshot:
        try:
            groups |= {os.getpgid(proc.pid), os.getsid(proc.pid)}
        except ProcessLookupError:
            pass
    groups.discard(os.getpgid(0))
    groups.discard(os.getsid(0))
    launchers = {str(build.proc.pid)} | {str(p.pid) for p in snapshot}
    deadline = time.monotonic() + within
    while True:
        left = [f"{p.pid}" for p in snapshot if _alive(p)] + _groups_in_use(groups) + _kernels_of(launchers)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == [], f"still running after {within} s: {left}"


def _kernels_of(launchers: set[str]) -> list[str]:
    """Every live kernel started by one of these processes (jupyter_client gives each kernel a session of
    its own and puts its launcher's pid in JPY_PARENT_PID): one started after the snapshot is found too."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and KERNEL.search(" ".join(proc.info["cmdline"] or [])) \
                    and proc.environ().get("JPY_PARENT_PID") in launchers:
                found.append(f"{proc.pid}: kernel")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _partials(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-"))


def _workers_and_kernels_running(tree) -> bool:
    build = tree[0] if tree else None
    workers = [p for p in tree[1:] if p.ppid() == build.pid and not KERNEL.search(_cmd(p))
               and "resource_tracker" not in _cmd(p)]
    # one kernel per worker; the index's starts once the last criterion is given out (and is found by
    # its launcher's pid, whenever it started: _kernels_of)
    return len(workers) == 2 and _kernels(tree) >= 2


def test_kill_9_takes_workers_and_kernels_down_and_the_next_build_cleans_up(store, tmp_path):
    out = tmp_path / "q3"
    build = Build(store, out)
    snapshot = build.wait_for(_workers_and_kernels_running)
    build.proc.send_signal(signal.SIGKILL)
    build.proc.wait(timeout=10)
    assert_nothing_left_running(build, snapshot)
    stale = _partials(out)
    assert stale == [f".q3.partial-{build.proc.pid}"] and not out.exists()
    time.sleep(0.5)
    assert _partials(out) == stale  # nothing still writing into it, re-creating it, or removing it

    again = Build(store, out)
    assert again.proc.wait(timeout=180) == 0, again.stderr()
    assert _partials(out) == [] and (out / "manifest.sig").is_file()
    r = subprocess.run([EXE, "verify", str(out), "--public-key", str(store["key"].with_suffix(".pub"))],
                       capture_output=True, text=True)
    assert (r.returncode, r.stdout.strip()) == (0, "valid"), r.stderr


def test_a_live_builds_partial_folder_is_not_removed(store, tmp_path):
    """Two builds of the same --out: the second does not remove the first one's (locked) folder."""
    out = tmp_path / "q3"
    first = Build(store, out)
    snapshot = first.wait_for(_workers_and_kernels_running)
    from auditbook.report.packet.partial import remove_stale
    assert remove_stale(out) == [] and _partials(out) == [f".q3.partial-{first.proc.pid}"]
    os.killpg(first.proc.pid, signal.SIGINT)
    assert first.proc.wait(timeout=60) == 130
    assert_nothing_left_running(first, snapshot)


@pytest.mark.parametrize("moment, workers", [("criterion notebooks", "2"), ("index notebook", "2"),
                                             ("criterion notebooks", "1")])
def test_ctrl_c_exits_130_and_leaves_nothing_behind(store, tmp_path, moment, workers):
    out = tmp_path / "q3"
    build = Build(store, out, "--workers", workers)
    if moment == "index notebook":  # every criterion done: the index runs in the build process itself
        snapshot = build.wait_for(lambda tree: "3/3 criterion notebooks" in build.stderr())
    elif workers == "2":
        snapshot = build.wait_for(_workers_and_kernels_running)
    else:
        snapshot = build.wait_for(lambda tree: _kernels(tree) == 2)  # the index's and the criteria's
    os.killpg(build.proc.pid, signal.SIGINT)  # what Ctrl-C at a terminal does
    assert build.proc.wait(timeout=60) == 130, build.stderr()
    stderr = build.stderr()
    assert "interrupted" in stderr and "Traceback" not in stderr and "Error" not in stderr, stderr
    assert_nothing_left_running(build, snapshot)
    assert _partials(out) == [] and not out.exists()


def test_a_worker_killed_mid_build_fails_the_build_in_one_line(store, tmp_path):
    out = tmp_path / "q3"
    build = Build(store, out)
    snapshot = build.wait_for(_workers_and_kernels_running)
    worker = next(p for p in snapshot[1:] if p.ppid() == build.proc.pid and not KERNEL.search(_cmd(p)))
    worker.kill()  # e.g. the OOM killer
    assert build.proc.wait(timeout=60) == 1, build.stderr()
    stderr = build.stderr()
    assert "error: packet: a notebook worker was killed by signal 9" in stderr and "nothing was written" in stderr
    assert "Traceback" not in stderr, stderr
    assert_nothing_left_running(build, snapshot)
    assert _partials(out) == [] and not out.exists()
