"""The unit tier's guard (tests/unit/conftest.py) trips: a unit test, a fixture of any scope or a test
module's import that starts a process or opens a socket fails with a message saying where the test goes."""
import contextlib
import multiprocessing
import os
import socket
import subprocess

import pytest

from tests.unit.conftest import GUARDED, MESSAGE, ORIGINAL


@pytest.mark.parametrize("start", [
    lambda: subprocess.run(["true"]),
    lambda: os.system("true"),
    lambda: multiprocessing.get_context("spawn").Process(target=print).start(),
    lambda: multiprocessing.get_context("fork").Process(target=print).start(),
], ids=["subprocess", "os.system", "spawn", "fork"])
def test_a_unit_test_cannot_start_a_process(start):
    with pytest.raises(pytest.fail.Exception, match=MESSAGE):
        start()


@pytest.mark.parametrize("operation", ["connect", "connect_ex", "bind"])
def test_a_unit_test_cannot_open_a_socket(operation):
    with socket.socket() as sock, pytest.raises(pytest.fail.Exception, match=MESSAGE) as failed:
        getattr(sock, operation)(("127.0.0.1", 9))
    assert f"socket.{operation} with (('127.0.0.1', 9),)" in str(failed.value)


def test_the_guard_is_not_swallowed_by_except_exception():
    """Code under test turns errors into values (`except Exception`): the guard must pass through."""
    def collector():
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        except Exception as error:  # as the product's error handling does
            return f"gap: {error}"
    with pytest.raises(pytest.fail.Exception, match=MESSAGE):
        collector()


INNER = '''
import socket
import subprocess

import pytest


@pytest.fixture(scope="module")
def server():
    subprocess.run(["true"])  # a module fixture starting a server: set up before any function fixture
    yield


@pytest.fixture(scope="session")
def port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_with_a_server(server):
    pass


def test_with_a_port(port):
    pass


def test_in_process_only():
    assert sum(range(4)) == 6
'''


@contextlib.contextmanager
def _outer_guard_lifted():
    """This test itself runs guarded: lift that guard so only the inner session's guard can trip."""
    with pytest.MonkeyPatch.context() as patch:
        for owner, name, _ in GUARDED:
            patch.setattr(owner, name, ORIGINAL[(owner, name)])
        yield


def test_fixtures_of_module_and_session_scope_are_guarded(pytester):
    pytester.makeconftest("from tests.unit.conftest import (pytest_make_collect_report, pytest_runtest_call,\n"
                          "    pytest_runtest_setup, pytest_runtest_teardown)\n")
    pytester.makepyfile(test_inner=INNER)
    with _outer_guard_lifted():
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_with_a_server*", f"*{MESSAGE}*Popen.__init__*",
                                 "*ERROR at setup of test_with_a_port*", f"*{MESSAGE}*socket.bind*"])


def test_a_module_that_starts_a_process_when_imported_is_a_collection_error(pytester):
    pytester.makeconftest("from tests.unit.conftest import pytest_make_collect_report\n")
    pytester.makepyfile(test_inner="import os\nos.system('true')\n\ndef test_never_runs():\n    pass\n")
    with _outer_guard_lifted():
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{MESSAGE}*os.system*"])


def test_a_module_fixture_that_stops_a_server_in_its_teardown_is_guarded(pytester):
    """Only the run's last teardown (which also stops the session's fixtures of other tiers) is not."""
    pytester.makeconftest("from tests.unit.conftest import pytest_runtest_teardown\n")
    pytester.makepyfile(test_a="import subprocess\n\nimport pytest\n\n\n@pytest.fixture(scope='module')\n"
                               "def server():\n    yield\n    subprocess.run(['true'])\n\n\n"
                               "def test_with_a_server(server):\n    pass\n",
                        test_b="def test_after():\n    pass\n")
    with _outer_guard_lifted():
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_a.py", "test_b.py")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_with_a_server*", f"*{MESSAGE}*Popen.__init__*"])
