"""NotebookRunner (report/packet/execute.py) when its kernel dies outside a notebook: between two
notebooks, or while the index's kernel is warmed. Neither is the next notebook's fault: a fresh kernel
takes over within seconds (before, the runner waited out a 60 s / 120 s timeout and the build aborted)."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest

from auditbook.report.packet.execute import NotebookRunner


def _notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("label = 'x'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os\nleft = 'earlier' in dir()\nearlier = label\n"
                                          "print(label, os.getpid(), left)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "nb.ipynb"
    nbformat.write(nb, str(path))
    return path


def _printed(done) -> list[str]:
    return "".join(o.get("text", "") for o in done.nb.cells[-1].outputs).split()


def _kill_kernel(runner: NotebookRunner) -> int:
    pid = runner.km.provisioner.process.pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runner.km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not runner.km.is_alive()
    return pid


def test_a_kernel_killed_between_notebooks_is_replaced_and_the_next_notebook_runs(tmp_path):
    notebook = _notebook(tmp_path)
    with NotebookRunner(cwd=tmp_path, timeout=60) as runner:
        first = runner.run(notebook, {"label": "first"})
        assert first.error is None
        label, first_pid, _ = _printed(first)
        assert label == "first"
        assert int(first_pid) == runner.km.provisioner.process.pid
        killed = _kill_kernel(runner)
        t0 = time.monotonic()
        second = runner.run(notebook, {"label": "second"})
        took = time.monotonic() - t0
        assert second.error is None  # the notebook ran, on a fresh kernel: it is not marked failed
        label, second_pid, left_over = _printed(second)
        assert (label, left_over) == ("second", "False")
        assert int(second_pid) != killed
        assert took < 20, f"the dead kernel was noticed after {took:.1f} s"
        third = runner.run(notebook, {"label": "third"})  # the replacement is reused and cleared as usual
        assert _printed(third) == ["third", second_pid, "False"]


@pytest.mark.parametrize("when", ["before it is ready", "while it imports"])
def test_a_kernel_that_dies_while_warming_in_a_thread_is_dropped_and_the_notebook_runs_on_a_fresh_one(
        tmp_path, when):
    """As the index's kernel is warmed (report/packet/notebook_runs.py): launched on the build's thread,
    connected and warmed in a thread that then ends. A kernel launched in that thread would die with it
    (lifeline), so none is: the notebook's run starts a fresh kernel on its own thread."""
    notebook = _notebook(tmp_path)
    runner = NotebookRunner(cwd=tmp_path, timeout=60).launch()
    try:
        killed = runner.km.provisioner.process.pid
        if when == "before it is ready":
            _kill_kernel(runner)
            code = "import json"
        else:  # the kernel kills itself part-way through the warm-up's imports
            code = "import os, signal, json\nos.kill(os.getpid(), signal.SIGKILL)"
        t0 = time.monotonic()
        warming = threading.Thread(target=runner.connect_and_warm, args=(code,))
        warming.start()
        warming.join(30)
        assert not warming.is_alive() and time.monotonic() - t0 < 20
        assert runner.km is None  # dropped, not replaced from the warm thread
        done = runner.run(notebook, {"label": "index"})
        assert done.error is None and _printed(done)[0] == "index"
        assert int(_printed(done)[1]) != killed
        time.sleep(1.5)  # a kernel started by the (ended) warm thread would be dead by now
        assert runner.km.is_alive()
    finally:
        runner.stop()


def test_a_kernel_whose_names_cannot_be_cleared_is_replaced(tmp_path):
    notebook = _notebook(tmp_path)
    with NotebookRunner(cwd=tmp_path, timeout=60) as runner:
        first = runner.run(notebook, {"label": "first"})
        runner._execute("import IPython\nget_ipython().user_ns_hidden = None", timeout=10)  # clearing now raises
        second = runner.run(notebook, {"label": "second"})
        assert second.error is None
        assert _printed(second)[1] != _printed(first)[1] and _printed(second)[2] == "False"


def test_a_cell_that_times_out_is_recorded_as_such_and_the_next_notebook_runs_on_a_fresh_kernel(tmp_path):
    slow = nbformat.v4.new_notebook()
    slow.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    slow.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(slow, str(tmp_path / "slow.ipynb"))
    notebook = _notebook(tmp_path)
    with NotebookRunner(cwd=tmp_path, timeout=2) as runner:
        stuck = runner.km.provisioner.process.pid
        timed_out = runner.run(tmp_path / "slow.ipynb", {})
        # nbclient's first line, not the "-----" that closes its message
        assert timed_out.error == "CellTimeoutError: A cell timed out while it was being executed, after 2 seconds."
        done = runner.run(notebook, {"label": "after"})
        assert done.error is None
        assert _printed(done)[0] == "after" and int(_printed(done)[1]) != stuck
