"""The unit tier starts no process and opens no socket (in-process moto and Streamlit's AppTest are fine):
while a unit test module is imported, while a unit test's fixtures of any scope are set up, while it runs
and while its own fixtures are torn down, starting a process or connecting or binding a socket fails the
test with MESSAGE. The guard wraps each phase (not an autouse fixture: a module or session fixture is set
up before any function fixture could install it). It raises pytest's Failed, which `except Exception` in
the code under test cannot turn into a quiet evidence gap."""
from __future__ import annotations

import _posixsubprocess
import contextlib
import os
import socket
import subprocess

import pytest

MESSAGE = "unit tests start no process and open no socket: move this test to integration or e2e"

# (owner, attribute, is a method: its first argument is self)
GUARDED = (
    (subprocess.Popen, "__init__", True),
    (_posixsubprocess, "fork_exec", False),  # multiprocessing's spawn and forkserver start processes with it
    (os, "fork", False),
    (os, "posix_spawn", False),
    (os, "posix_spawnp", False),
    (os, "system", False),
    (socket.socket, "connect", True),
    (socket.socket, "connect_ex", True),
    (socket.socket, "bind", True),
)
ORIGINAL = {(owner, name): getattr(owner, name) for owner, name, _ in GUARDED}


def _refusal(owner, name: str, method: bool):
    label = f"{getattr(owner, '__qualname__', owner.__name__)}.{name}"

    def refuse(*args, **kwargs):
        shown = repr(args[1:] if method else args)
        pytest.fail(f"{MESSAGE} (it called {label} with {shown[:200]})", pytrace=True)
    return refuse


@contextlib.contextmanager
def no_process_no_socket():
    with pytest.MonkeyPatch.context() as patch:
        for owner, name, method in GUARDED:
            patch.setattr(owner, name, _refusal(owner, name, method))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Importing a unit test module (a server started at import time)."""
    with no_process_no_socket():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Every fixture the test needs, whatever its scope."""
    with no_process_no_socket():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with no_process_no_socket():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The test's own fixtures. The last test of a run (nextitem None) also finalises the session's
    fixtures, which tests of another tier may have started (the PostgreSQL server): not guarded."""
    with no_process_no_socket() if nextitem is not None else contextlib.nullcontext():
        return (yield)
