"""Running a packet's notebooks: the criterion notebooks from a queue over the worker processes (or on a
kernel of the build's own process), the index's kernel started late, and the build's background threads
(the data files, the findings handed to the kernels). report.packet.build assembles the packet."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Optional

from auditbook.history import handed_reads
from auditbook.report.packet.workers import Workers, run_batch


def _run_criteria(jobs: list[tuple[str, dict]], root: Path, notebook: Path, pool: Optional[Workers], env: dict,
                  on_progress: Optional[Callable[[str], None]], held: Callable[[tuple], bool],
                  on_last_job: Callable[[], None]) -> list[dict]:
    done: list[dict] = []

    def progress(outcome: dict) -> None:
        done.append(outcome)
        if on_progress:
            on_progress(f"{len(done)}/{len(jobs)} criterion notebooks")
    if pool is None:
        return run_batch(jobs, str(root), str(notebook), env, on_done=progress)
    return pool.run(jobs, progress, held, on_last_job)


def longest_first(catalog) -> list:
    """The criteria in the order the notebook workers take them: those with the most checks (the
    longest pages) first, the others in catalog order, so the short ones fill the workers' last gaps."""
    return sorted(catalog.controls, key=lambda c: -len(catalog.checks_for(c.id)))


def timed(timings: dict, name: str, fn: Callable, *args):
    t = time.perf_counter()
    try:
        return fn(*args)
    finally:
        timings[name] = time.perf_counter() - t


class Background:
    """A function run in a thread of the build while its notebooks run in other processes (from start(),
    or at once); result() waits for it and re-raises what it raised (never printed by the thread itself)."""

    def __init__(self, fn: Callable, *args, started: bool = True):
        self._outcome: list = []

        def run() -> None:
            try:
                self._outcome.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 — handed to result(), in the build's thread
                self._outcome.append((False, exc))
        self._thread = threading.Thread(target=run, daemon=True)
        if started:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> None:
        """Until the function has returned or raised (what it did is for result()); at once if never started."""
        if self._thread.ident is not None:
            self._thread.join()

    def done(self) -> bool:
        return bool(self._outcome)

    def result(self):
        self._thread.join()
        ok, value = self._outcome[0]
        if not ok:
            raise value
        return value


class _IndexKernel:
    """The index's kernel: started (from the build's thread: see lifeline) and warmed in a thread of its
    own when start() is first called — once the last criterion is given out, when a worker is about to
    idle, rather than at the start, where every core is busy."""

    def __init__(self, root: Path, db_url: str):
        from auditbook.report.packet.execute import NotebookRunner
        # no handed reads: the index asks for none, and must never load a file named in the build's environment
        self.runner = NotebookRunner(cwd=root, env={"AUDITBOOK_DB": db_url, handed_reads.ENV: ""})
        self._thread: Optional[threading.Thread] = None
        self._errors: list[BaseException] = []

    def start(self) -> None:
        if self._thread is not None:
            return
        self.runner.launch()

        def warm() -> None:
            try:
                self.runner.connect_and_warm()
            except BaseException as exc:  # re-raised by ready(), in the build's thread
                self._errors.append(exc)
        self._thread = threading.Thread(target=warm, daemon=True)
        self._thread.start()

    def ready(self) -> "_IndexKernel":
        self.start()
        self._thread.join()
        if self._errors:
            raise self._errors[0]
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self.runner.stop()


def run_notebooks(jobs: list[tuple[str, dict]], index_params: dict, root: Path, folder: Path,
                   pool: Optional[Workers], env: dict, on_progress, timings: dict, before_index: Callable[[], object],
                   held: Callable[[tuple], bool]):
    """The criterion notebooks (in the workers of `pool`, else on a kernel of this process), then
    `before_index()` (the packet's data files, which the index reads), then the index. Returns the
    outcomes, the failures and the executed index notebook."""
    t = time.perf_counter()
    index = _IndexKernel(root, env["AUDITBOOK_DB"])
    try:
        if pool is None:
            index.start()  # one kernel for the criteria: the index's starts beside it
        outcomes = _run_criteria(jobs, root, folder / "control.ipynb", pool, env, on_progress, held, index.start)
        index.ready()
        timings["criterion notebooks"] = time.perf_counter() - t
        before_index()
        failed = sorted(({"criterion": o["criterion"], "error": o["error"]} for o in outcomes if o["error"]),
                        key=lambda f: f["criterion"])
        t = time.perf_counter()
        executed = index.runner.run(folder / "packet_index.ipynb", {**index_params, "failed": failed})
    finally:
        index.stop()
    if executed.error:
        failed.append({"criterion": "index", "error": executed.error})
    timings["index notebook"] = time.perf_counter() - t
    return outcomes, failed, executed.nb
