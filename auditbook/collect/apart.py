"""`scan --executor local` (the command line's default): the collection in a process of its own,
started with the command (cli.entry starts it before the command line is even parsed).

A scan's command is CPU-bound on one core: importing the store's libraries (SQLAlchemy, the models),
botocore and the catalog's, loading the catalog, creating the AWS clients, then collecting. Started
first, the collection process (collect.apart_child, collect.apart_work) imports botocore and builds the
AWS clients on the machine's other core while the command imports the store, loads the catalog, opens
the store and reads the system boundary (collect.plan.Boundary); the boundary and the resource types the
catalog needs go to the collection process, the collection comes back, and the command evaluates and
stores it as an inline scan would. The collection code is the same (collect.scan_plan.collect_here);
the command's process never imports botocore.

What crosses the pipe between the two (a socket pair inherited by the child, pickled messages,
multiprocessing's framing), in order:
- command -> collection: ("request", CollectionRequest) as soon as it starts; ("boundary", (Boundary,
  resource type names, the accounts file as the command read it)) once it has read the catalog and the store;
- collection -> command: ("plan", jobs), ("progress", [labels]) while it collects; then the collection
  in parts ("part", field, items: records, scopes, gaps and evidence, CHUNK at a time, so neither side
  holds a large collection pickled whole) and ("done", Collected); or instead ("user_error",
  message) (bad input: exit 2), ("aborted", message) (the scan cannot know its scope: exit 1) or
  ("failed", message) (anything else, its traceback on stderr: exit 1).
The command treats a collection process that ends without its result as a failed scan (nothing is
stored). Ctrl-C is the command's: the collection process ignores SIGINT from its start and is stopped by
the command; a collection process whose command is gone (killed, say) ends within PARENT_CHECK_SECONDS
(collect.apart_child.end_with)."""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from auditbook.collect.records import Collection
from auditbook.errors import ScanAborted, UserError

CHUNK = 2000  # items of a collection's list or mapping per message
PROGRESS_SECONDS = 0.1  # progress labels are batched: at most one message per PROGRESS_SECONDS
STOP_SECONDS = 5.0  # how long a collection process has to end by itself before it is killed
PARENT_GONE = 3  # the collection process's exit status when its command is gone
PARTS = ("records", "scopes", "gaps", "evidence")


class CollectionFailed(ScanAborted):
    """The collection process failed, or ended without its result: the scan stores nothing."""


@dataclass(frozen=True)
class CollectionRequest:
    """Where the collection process reads and how: the scan's inputs that decide it, as the command was
    given them (it validates them too). What it reads (the resource types the catalog needs) and the
    accounts file's content come with the boundary: the catalog and the files are read by the command
    alone."""
    accounts_file: Optional[Path]
    org_role: Optional[str]
    regions: Optional[str]
    profile: Optional[str]
    workers: int
    rate_limits: Any = None  # collect.ratelimit.RateLimits


@dataclass
class Collected:
    """A collection: the records, scopes, gaps and evidence, the accounts as a scan records them, the
    regions read and requested, and the resource types read."""
    collection: Collection
    accounts: list[dict]
    regions: list[str]
    regions_requested: list[str]
    resource_types: list[str] = field(default_factory=list)


class CollectionProcess:
    """The command's handle on its collection process (a context manager: leaving it stops the process)."""

    def __init__(self, proc: subprocess.Popen, conn: Connection):
        self.proc, self.conn = proc, conn
        self.answered = False  # a result or an error came back: the process ends by itself

    @classmethod
    def start(cls) -> "CollectionProcess":
        """A fresh interpreter (never a fork: the caller may have threads) running collect.apart_child.serve,
        importing auditbook from where this process did and nothing from the working folder (-P)."""
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # already on sys.path, it is not put before the stdlib
        code = (f"import sys; {root!r} in sys.path or sys.path.insert(0, {root!r}); "
                f"from auditbook.collect.apart_child import serve; serve({theirs.fileno()}, {os.getpid()})")
        try:
            with sigint_ignored():  # from its first instruction: Ctrl-C reaches the terminal's whole process group
                # the same terminal, standard input and process group as the command (an MFA code is asked
                # for there; Ctrl-Z stops both); its standard output is not the command's
                proc = subprocess.Popen([sys.executable, "-P", "-c", code], pass_fds=(theirs.fileno(),),
                                        stdout=subprocess.DEVNULL)
        except OSError as exc:  # no interpreter there, no process or file left to this user…
            ours.close()
            raise ScanAborted(f"cannot start the collection process ({exc.strerror or exc}): "
                              "--executor inline collects in the command's own process") from None
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(proc, Connection(ours.detach()))

    def __enter__(self) -> "CollectionProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send_request(self, request: CollectionRequest) -> None:
        self._send(("request", request))

    def collect(self, boundary, resource_types: list[str], accounts_spec=None,
                on_plan: Optional[Callable[[int], None]] = None,
                on_progress: Optional[Callable[[str], None]] = None) -> Collected:
        """Send the boundary, the resource types to read (by name) and the accounts file as this process read
        it (collect.inputs.AccountsFile, or None), and wait for the collection (calling on_plan and
        on_progress on the way)."""
        self._send(("boundary", (boundary, resource_types, accounts_spec)))
        parts: dict[str, list] = {name: [] for name in PARTS}
        while True:
            kind, *payload = self._receive()
            if kind == "plan" and on_plan:
                on_plan(*payload)
            elif kind == "progress" and on_progress:
                for label in payload[0]:
                    on_progress(label)
            elif kind == "part":
                parts[payload[0]].extend(payload[1])
            elif kind == "done":
                self.answered = True
                return _assembled(payload[0], parts)
            elif kind == "user_error":
                self.answered = True
                raise UserError(payload[0])
            elif kind == "aborted":
                self.answered = True
                raise ScanAborted(payload[0])
            elif kind == "failed":
                self.answered = True
                raise CollectionFailed(f"the collection process failed: {payload[0]}")

    def close(self) -> None:
        """Close the pipe and stop the process if it has not answered (SIGTERM, then SIGKILL after
        STOP_SECONDS); one that has answered is left STOP_SECONDS to end by itself."""
        self.conn.close()
        for stop in (None if self.answered else self.proc.terminate, self.proc.kill):
            if stop is not None:
                stop()
            try:
                self.proc.wait(STOP_SECONDS)
                return
            except subprocess.TimeoutExpired:
                continue

    def _send(self, message) -> None:
        """Send; a process that has ended (an error it sent first, say) is found out by the next read, which
        reads what it said before it ended."""
        try:
            self.conn.send(message)
        except OSError:
            pass

    def _receive(self):
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise self._ended() from None

    def _ended(self) -> CollectionFailed:
        try:
            status = self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            status = None
        how = (f"killed by signal {-status}" if status is not None and status < 0 else
               f"exit status {status}" if status is not None else "its pipe closed")
        return CollectionFailed(f"the collection process ended without a result ({how})")


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the block runs, so that a process started in it starts with SIGINT ignored
    (CPython leaves an ignored SIGINT ignored); only the main thread can change it, and only it is
    interrupted by Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


_early: Optional[CollectionProcess] = None


def start_early() -> None:
    """Start the collection process before the command line is parsed (cli.entry, for `scan`): the scan
    command takes it (for_command); one nobody takes is stopped as this process ends."""
    global _early
    if _early is None:
        try:
            _early = CollectionProcess.start()
        except ScanAborted:  # the scan command tries again, and says why it cannot
            return
        atexit.register(stop_early)


def stop_early() -> None:
    """Stop the collection process started early if no scan took it (cli.main, as a command ends)."""
    global _early
    if _early is not None:
        _early.close()
        _early = None


@contextmanager
def for_command(wanted: bool) -> Iterator[Optional[CollectionProcess]]:
    """A scan's collection process while the block runs (scan.run_scan), stopped after: the one started
    early, else a new one, if `wanted` (executor "local"); None otherwise (an early one is stopped now)."""
    global _early
    early, _early = _early, None
    if not wanted:
        if early is not None:
            early.close()
        yield None
        return
    with early or CollectionProcess.start() as collector:
        yield collector


def _assembled(done: Collected, parts: dict[str, list]) -> Collected:
    collection = replace(done.collection, records=parts["records"], scopes=parts["scopes"], gaps=parts["gaps"],
                         evidence=dict(parts["evidence"]))
    return replace(done, collection=collection)


class CommandGone(Exception):
    """The command closed the pipe (or ended) before sending what the collection process waits for."""


def received(conn: Connection, kind: str):
    """The next message's payload, which must be of this kind; CommandGone if the pipe is closed."""
    try:
        got, payload = conn.recv()
    except (EOFError, OSError):
        raise CommandGone() from None
    if got != kind:
        raise RuntimeError(f"expected the {kind} from the command, got {got!r}")
    return payload
