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
  - reads one JSON line on stdin (the packet folder, notebook and its kernel's environment), then its jobs one JSON line
    at a time — the build sends a worker its next criterion when it reports the last one done, and
    closes its stdin when none is left — and writes one JSON line per finished notebook on its stdout
    (anything a library prints goes to stderr instead)."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from auditbook.errors import ScanAborted

Outcome = dict  # {"criterion", "error", "seconds", "process": the pid of the process that ran its kernel}


class BuildAborted(ScanAborted):
    """The build cannot finish (a worker died); nothing was written. One line, exit 1."""


def run_batch(jobs: Iterable[tuple[str, dict]], root: str, notebook: str, env: dict,
              on_done: Optional[Callable[[Outcome], None]] = None) -> list[Outcome]:
    """Run criterion notebooks on one kernel (with `env` added to its environment: the store's URL, the
    build's handed reads), one after another as `jobs` yields them, and write their pages; their outcomes."""
    import nbformat

    from auditbook.report.packet.execute import NotebookRunner
    from auditbook.report.packet.render import notebook_html, page_outputs_removed
    root_path = Path(root)
    out = []
    with NotebookRunner(cwd=root_path, env=env) as runner:
        for criterion, params in jobs:
            t0 = time.perf_counter()
            done = runner.run(Path(notebook), params)
            page = notebook_html(done.nb, "../", f"{criterion} — auditbook packet")
            (root_path / "criteria" / f"{criterion}.html").write_text(page, encoding="utf-8")
            nbformat.write(page_outputs_removed(done.nb, f"criteria/{criterion}.html", page),
                           str(root_path / "notebooks" / f"{criterion}.ipynb"))
            outcome = {"criterion": criterion, "error": done.error, "seconds": time.perf_counter() - t0,
                       "process": os.getpid()}
            out.append(outcome)
            if on_done:
                on_done(outcome)
    return out


class Workers:
    """Worker processes started now — each starts its kernel at once, so they start while the build
    still prepares what the notebooks read — and given their jobs by run(). A context manager: whatever
    happens (an error, KeyboardInterrupt), no worker is left running when it is left."""

    def __init__(self, n: int, root: str, notebook: str, env: dict):
        self._states: list[dict] = []
        try:
            for _ in range(n):
                self._states.append({"proc": _start(root, notebook, env), "buf": b"", "job": None})
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, jobs: list[tuple[str, dict]], on_done: Callable[[Outcome], None],
            held: Optional[Callable[[tuple], bool]] = None,
            on_last_job: Optional[Callable[[], None]] = None) -> list[Outcome]:
        """Every job, each worker taking the next in order when it finishes one (a queue: no worker idles
        while a job waits); every outcome, or BuildAborted. `held(job)`: a job kept back while one not
        held is left (given all the same when only held ones are); `on_last_job()`: once the last job has
        been given out."""
        queue = _Queue(jobs, held, on_last_job)
        for state in self._states:
            _give_next(state, queue)
        return _collect(self._states, queue, on_done)

    def close(self) -> None:
        for state in self._states:
            proc = state["proc"]
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            _close(proc.stdin)


class _Queue:
    def __init__(self, jobs: list, held: Optional[Callable[[tuple], bool]], on_last_job: Optional[Callable]):
        self.jobs, self._held, self._on_last_job = deque(jobs), held, on_last_job

    def take(self) -> Optional[tuple]:
        if not self.jobs:
            return None
        ready = next((i for i, job in enumerate(self.jobs) if not self._held(job)), 0) if self._held else 0
        job = self.jobs[ready]
        del self.jobs[ready]
        if not self.jobs and self._on_last_job:
            self._on_last_job()
        return job


def _start(root: str, notebook: str, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-P", "-m", "auditbook.report.packet.workers", str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0, cwd=root)
    _send(proc, {"root": root, "notebook": notebook, "env": env})
    return proc


def _send(proc: subprocess.Popen, message) -> None:
    try:
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # it died: _collect reports it when its output ends


def _close(stream) -> None:
    try:
        stream.close()
    except BrokenPipeError:
        pass


def _give_next(state: dict, queue: _Queue) -> None:
    """The worker's next job, or (none left) the end of its input, after which it exits."""
    state["job"] = queue.take()
    if state["job"] is None:
        _close(state["proc"].stdin)
    else:
        _send(state["proc"], state["job"])


def _collect(states: list[dict], queue: _Queue, on_done: Callable[[Outcome], None]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with selectors.DefaultSelector() as selector:
        for state in states:
            selector.register(state["proc"].stdout, selectors.EVENT_READ, state)
        while selector.get_map():
            for key, _ in selector.select():
                state = key.data
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    _check_finished(state, queue, states)
                    continue
                *lines, state["buf"] = (state["buf"] + chunk).split(b"\n")
                for line in lines:
                    outcome = json.loads(line)
                    outcomes.append(outcome)
                    on_done(outcome)
                    _give_next(state, queue)
    return outcomes


def _check_finished(state: dict, queue: _Queue, states: list[dict]) -> None:
    code = state["proc"].wait()
    if code != 0 or state["job"] is not None:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        running = [state["job"]] + [s["job"] for s in states if s is not state]  # the dead worker's first
        unfinished = [criterion for criterion, _ in [job for job in running if job] + list(queue.jobs)]
        raise BuildAborted(f"packet: a notebook worker {how} (criteria not done: {', '.join(unfinished) or 'none'}); "
                           "nothing was written")


def main() -> None:
    from auditbook.report.packet.lifeline import die_with_parent
    die_with_parent(int(sys.argv[1]))
    from auditbook.gc_tuning import collect_less
    collect_less()
    job = json.loads(sys.stdin.buffer.readline())
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints of libraries go to stderr, not into the results

    def done(outcome: Outcome) -> None:
        results.write(json.dumps(outcome) + "\n")
        results.flush()
    run_batch(_jobs_from(sys.stdin.buffer), job["root"], job["notebook"], job["env"], on_done=done)
    results.close()


def _jobs_from(stream) -> Iterator[tuple[str, dict]]:
    """The build's jobs, one JSON line each, as it sends them (the next once this one is done), until it
    closes the stream."""
    for line in stream:
        criterion, params = json.loads(line)
        yield criterion, params


if __name__ == "__main__":
    main()
