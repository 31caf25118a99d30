"""Running the criterion notebooks of a packet: in this process, or in worker processes that die with
the build.

A worker is `python -P -m auditbook.report.packet.workers PARENT_PID`: a fresh interpreter that imports only
this module. multiprocessing's spawn start method re-imports the parent's `__main__` in each child,
which breaks when that `__main__` cannot be imported again (a Streamlit script, AppTest, an
interactive session); a worker started this way never looks at it, and the parent process needs no
`if __name__ == "__main__":` guard. Each worker:
  - is in its own process group, so a Ctrl-C at the terminal reaches only the build, which then
    kills its workers (and waits for them) before removing its partial folder;
  - dies when the build dies, as do the kernels it starts (lifeline: PR_SET_PDEATHSIG);
  - reads its job as one JSON document on stdin and writes one JSON line per finished notebook on
    its stdout (anything a library prints goes to stderr instead)."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from auditbook.errors import ScanAborted

Outcome = dict  # {"criterion", "error", "seconds"}


class BuildAborted(ScanAborted):
    """The build cannot finish (a worker died); nothing was written. One line, exit 1."""


def run_batch(jobs: list[tuple[str, dict]], root: str, notebook: str, db_url: str,
              on_done: Optional[Callable[[Outcome], None]] = None) -> list[Outcome]:
    """Run criterion notebooks on one kernel and write their pages; their outcomes."""
    import nbformat

    from auditbook.report.packet.execute import NotebookRunner
    from auditbook.report.packet.render import notebook_html, page_outputs_removed
    root_path = Path(root)
    out = []
    with NotebookRunner(cwd=root_path, env={"AUDITBOOK_DB": db_url}) as runner:
        for criterion, params in jobs:
            t0 = time.perf_counter()
            done = runner.run(Path(notebook), params)
            page = notebook_html(done.nb, "../", f"{criterion} — auditbook packet")
            (root_path / "criteria" / f"{criterion}.html").write_text(page, encoding="utf-8")
            nbformat.write(page_outputs_removed(done.nb, f"criteria/{criterion}.html", page),
                           str(root_path / "notebooks" / f"{criterion}.ipynb"))
            outcome = {"criterion": criterion, "error": done.error, "seconds": time.perf_counter() - t0}
            out.append(outcome)
            if on_done:
                on_done(outcome)
    return out


def run_in_workers(batches: list[list[tuple[str, dict]]], root: str, notebook: str, db_url: str,
                   on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """One worker process per batch; every outcome, or BuildAborted. Whatever happens (an error,
    KeyboardInterrupt), no worker is left running when this returns or raises."""
    procs: list[tuple[subprocess.Popen, list]] = []
    try:
        for batch in batches:
            procs.append((_start(batch, root, notebook, db_url), batch))
        return _collect(procs, on_done)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def _start(batch: list, root: str, notebook: str, db_url: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-P", "-m", "auditbook.report.packet.workers", str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0, cwd=root)
    job = {"jobs": batch, "root": root, "notebook": notebook, "db_url": db_url}
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it died at once: _collect reports it
    return proc


def _collect(procs: list[tuple[subprocess.Popen, list]], on_done: Callable[[Outcome], None]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with selectors.DefaultSelector() as selector:
        for proc, batch in procs:
            selector.register(proc.stdout, selectors.EVENT_READ, {"proc": proc, "batch": batch, "buf": b"", "n": 0})
        while selector.get_map():
            for key, _ in selector.select():
                state = key.data
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    _check_finished(state)
                    continue
                *lines, state["buf"] = (state["buf"] + chunk).split(b"\n")
                for line in lines:
                    outcome = json.loads(line)
                    state["n"] += 1
                    outcomes.append(outcome)
                    on_done(outcome)
    return outcomes


def _check_finished(state: dict) -> None:
    proc, batch, n = state["proc"], state["batch"], state["n"]
    code = proc.wait()
    if code != 0 or n < len(batch):
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        unfinished = ", ".join(criterion for criterion, _ in batch[n:]) or "none"
        raise BuildAborted(f"packet: a notebook worker {how} (criteria not done: {unfinished}); nothing was written")


def main() -> None:
    from auditbook.report.packet.lifeline import die_with_parent
    die_with_parent(int(sys.argv[1]))
    job = json.loads(sys.stdin.buffer.read())
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints of libraries go to stderr, not into the results

    def done(outcome: Outcome) -> None:
        results.write(json.dumps(outcome) + "\n")
        results.flush()
    run_batch([(c, p) for c, p in job["jobs"]], job["root"], job["notebook"], job["db_url"], on_done=done)
    results.close()


if __name__ == "__main__":
    main()
