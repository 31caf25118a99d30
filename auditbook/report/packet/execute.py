"""Running parameterised notebooks on one long-lived kernel: papermill injects the parameters,
nbclient executes the cells on a kernel (and kernel client) reused across notebooks, and the
namespace is cleared between them. Starting a kernel costs ~0.5 s; a packet runs 62 notebooks."""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import nbformat
from jupyter_client import KernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from traitlets import DottedObjectName

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


WARM_UP = ("import pandas, plotly.graph_objects, plotly.io, auditbook.history.type2, auditbook.history.period_evidence, "
           "auditbook.history.incidents, auditbook.report.page_helpers")


@dataclass
class Executed:
    nb: nbformat.NotebookNode
    error: Optional[str]  # one line: why the notebook failed, or None


def _one_line(exc: BaseException) -> str:
    name = getattr(exc, "ename", None) or type(exc).__name__
    value = getattr(exc, "evalue", None)
    if value is None:  # nbclient's own errors: the first line says what happened, not its "-----"
        value = next((line for line in str(exc).strip().splitlines() if line.strip("- ")), "")
    return f"{name}: {value}"[:500]


def _interrupted(client: NotebookClient) -> None:
    """Ctrl-C while nbclient ran on this (main) thread: its own SIGINT handler shut the kernel down instead of
    raising, and the cell then fails as a dead kernel. Raise the interrupt: the build stops, writing nothing."""
    if getattr(client, "_async_cleanup_kernel_future", None) is not None:
        raise KeyboardInterrupt


class PacketKernelManager(KernelManager):
    """Starts `auditbook.report.packet.kernel` (ipykernel that dies with this process) with this Python,
    without IPython's input history: a kernel would otherwise store every cell it runs — a packet's
    ~1,000 — in the user's ~/.ipython history database, each with a disk sync (42 MB in a day of builds).
    Its client is asynchronous: nbclient checks once a second that the kernel is alive while it waits for
    a message, which it cannot do while a blocking client holds its event loop — a kernel killed mid-cell
    would leave the build waiting for ever."""

    client_class = DottedObjectName("jupyter_client.asynchronous.AsyncKernelClient")

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        return [sys.executable, "-P", "-m", "auditbook.report.packet.kernel", "-f", os.path.realpath(self.connection_file),
                "--HistoryManager.enabled=False", *(extra_arguments or [])]


class NotebookRunner:
    """A kernel kept alive across notebooks. Use as a context manager. The kernel dies with the
    thread that launched it (see lifeline): launch from a thread that outlives the runner."""

    def __init__(self, cwd: Path, timeout: Optional[int] = 600, env: Optional[dict] = None):
        self.cwd = Path(cwd)
        self.timeout = timeout
        self.env = env
        self.km: Optional[KernelManager] = None
        self.kc = None

    def start(self) -> "NotebookRunner":
        if self.km is None:
            self.launch()
        if self.kc is None:
            self.connect()
        return self

    def launch(self) -> "NotebookRunner":
        """Start the kernel process (fast); `connect` waits until it is ready (slow)."""
        # local sockets (not TCP) in a private folder: nothing listens on the network
        self._sockets = tempfile.mkdtemp(prefix="auditbook-kernel-")
        self.km = PacketKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(self._sockets, "k"))
        self.km.start_kernel(cwd=str(self.cwd), env={**os.environ, **(self.env or {})})
        return self

    def connect(self) -> "NotebookRunner":
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=60)
        return self

    def stop(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            self.km.shutdown_kernel(now=True)
            self.km = None
            shutil.rmtree(self._sockets, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def connect_and_warm(self, code: str = WARM_UP) -> "NotebookRunner":
        """Wait for the launched kernel, then import what the notebooks use, ahead of time (e.g. in a thread,
        while other kernels are busy). A kernel that dies or hangs meanwhile is dropped, not replaced here: a
        kernel dies with the thread that launched it (see lifeline), so the next run() starts a fresh one
        from its own thread, unwarmed (its notebook imports what it needs)."""
        try:
            self.connect()._execute(code, timeout=60)
        except (DeadKernelError, TimeoutError, RuntimeError):  # RuntimeError: it died before it was ready
            self.stop()
        return self

    def restart(self) -> "NotebookRunner":
        """A fresh kernel in place of this one (dead, stuck or merely suspect)."""
        self.stop()
        return self.start()

    def _execute(self, code: str, timeout: int) -> dict:
        """Run `code` on the kernel; its reply. DeadKernelError as soon as the kernel is found dead (checked
        twice a second, as nbclient does for cells), TimeoutError after `timeout` seconds."""
        return run_sync(self._execute_watching)(code, timeout)

    async def _execute_watching(self, code: str, timeout: int) -> dict:
        reply = asyncio.ensure_future(self.kc.execute_interactive(
            code, timeout=timeout, output_hook=lambda msg: None, store_history=False))
        try:
            while not (await asyncio.wait({reply}, timeout=0.5))[0]:
                if not await self.kc.is_alive():
                    raise DeadKernelError("Kernel died")
            return reply.result()
        finally:
            if not reply.done():
                reply.cancel()
                await asyncio.gather(reply, return_exceptions=True)

    def _reset(self) -> dict:
        # what %reset -f does for names, without its costly clean-up (a quarter of a second a time); it takes
        # milliseconds, so a kernel that has not answered in 15 s is stuck
        return self._execute("_ab_ip = get_ipython()\n"
                             "for _ab_k in [k for k in _ab_ip.user_ns if k not in _ab_ip.user_ns_hidden "
                             "and not k.startswith('_')]:\n"
                             "    del _ab_ip.user_ns[_ab_k]\n", timeout=15)

    def run(self, path: Path, parameters: dict) -> Executed:
        nb = parameterize_notebook(load_notebook_node(str(path)), parameters)
        try:
            self.start()  # dropped while warming, or never started
            self._clean_slate()
            client = NotebookClient(nb, km=self.km, timeout=self.timeout, kernel_name="python3",
                                    allow_errors=False, record_timing=True)
            client.kc = self.kc
            try:
                client.execute()
            finally:
                _interrupted(client)
            return Executed(nb, None)
        except CellExecutionError as exc:
            return Executed(nb, _one_line(exc))
        except (DeadKernelError, CellTimeoutError, RuntimeError) as exc:
            # the kernel is gone or stuck: record the failure and continue on a fresh one
            self.restart()
            return Executed(nb, _one_line(exc))

    def _clean_slate(self) -> None:
        """The previous notebook's names cleared; a kernel that died, hangs or could not clear them since it
        ran is not this notebook's fault: a fresh kernel takes its place and the notebook runs there."""
        try:
            clean = self._reset()["content"].get("status") == "ok"
        except (DeadKernelError, TimeoutError):
            clean = False
        if not clean:
            self.restart()
