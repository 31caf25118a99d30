"""The collection process's side of collect.apart: its main function (`serve`) and its messages to the
command (the protocol: collect.apart; what it collects: collect.apart_work)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection

from auditbook.collect.apart import (
    CHUNK,
    PARENT_GONE,
    PARTS,
    PROGRESS_SECONDS,
    Collected,
    CommandGone,
    received,
)
from auditbook.errors import ScanAborted, UserError, one_line


class _Outbox:
    """The collection process's messages to its command, from any thread; a command that is gone ends
    this process (nobody is left to take the collection)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lock = threading.RLock()
        self.labels: list[str] = []
        self.last = 0.0

    def send(self, message) -> None:
        with self.lock:
            try:
                self.conn.send(message)
            except OSError:
                os._exit(PARENT_GONE)

    def plan(self, jobs: int) -> None:
        self.send(("plan", jobs))

    def progress(self, label: str) -> None:
        with self.lock:
            self.labels.append(label)
            if time.monotonic() - self.last >= PROGRESS_SECONDS:
                self.flush()

    def flush(self) -> None:
        with self.lock:
            if self.labels:
                self.send(("progress", self.labels))
                self.labels, self.last = [], time.monotonic()

    def collected(self, collected: Collected) -> None:
        self.flush()
        collection = collected.collection
        for name in PARTS:
            items = getattr(collection, name)
            items = list(items.items()) if isinstance(items, dict) else items
            for i in range(0, len(items), CHUNK):
                self.send(("part", name, items[i:i + CHUNK]))
        bare = replace(collection, records=[], scopes=[], gaps=[], evidence={})
        self.send(("done", replace(collected, collection=bare)))


PARENT_CHECK_SECONDS = 0.2


def end_with(command: int) -> None:
    """End this process as soon as the command `command` is gone (it was killed, say, while this process
    waits on AWS): a thread that watches who this process's parent is."""
    def watch() -> None:
        while os.getppid() == command:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(PARENT_GONE)
    threading.Thread(target=watch, name="command-watch", daemon=True).start()


def serve(fd: int, command: int) -> None:
    """The collection process of the command `command` (its pid): import, take the request, prepare, take
    the boundary, collect, answer; then end without the interpreter's clean-up (nothing is left to flush;
    freeing a collection's objects one by one took ~0.4 s)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's: it stops this process
    end_with(command)
    os.set_inheritable(fd, False)  # nothing this process starts (a credential_process…) gets the pipe
    conn = Connection(fd)
    from auditbook.gc_tuning import collect_less, collector_paused
    collect_less()  # as the command does (cli.main)
    with collector_paused():
        from auditbook.collect import apart_work
    outbox = _Outbox(conn)
    try:
        collected = apart_work.collect(received(conn, "request"), conn, outbox)
    except CommandGone:
        os._exit(PARENT_GONE)
    except UserError as exc:
        outbox.send(("user_error", str(exc)))
    except ScanAborted as exc:
        outbox.send(("aborted", str(exc)))
    except Exception as exc:  # a value for the command; the traceback for whoever reads stderr
        traceback.print_exc()
        outbox.send(("failed", one_line(f"{type(exc).__name__}: {exc}")[:500]))
    else:
        outbox.collected(collected)
    conn.close()
    sys.stderr.flush()
    os._exit(0)
