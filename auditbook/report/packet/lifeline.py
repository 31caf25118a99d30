"""Processes of a packet build die with the build.

`die_with_parent` is called first thing in each worker and kernel process the build starts. On Linux
it asks the kernel to SIGKILL the process when its parent ends (PR_SET_PDEATHSIG): a `kill -9` of the
build then takes its workers down, and their deaths take down their notebook kernels, with nothing
left running and writing into the build's partial folder. PR_SET_PDEATHSIG fires when the *thread*
that started the process ends, so children are started from a thread that outlives them. Elsewhere a
daemon thread polls the parent once a second instead."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` (the process that started it) ends; now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    elif parent_pid:
        threading.Thread(target=_watch, args=(parent_pid,), daemon=True).start()
    if parent_pid and os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)
