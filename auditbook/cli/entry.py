"""The `auditbook` program (pyproject's console script): what happens before the command line's own
modules are imported, and after the command has run.

- A scan whose collection is local starts its collection process first (collect.apart), before typer,
  rich and the command modules are imported: the process then imports botocore on the other core
  ~0.1 s earlier.
- The process ends without the interpreter's clean-up of every object: the exit handlers run (stores
  closed, an unused collection process stopped, logs flushed), the standard streams are flushed, and
  os._exit ends the process with the command's exit status. That clean-up took ~0.1 s of a small scan.
  A process that still runs other threads ends the usual way."""
from __future__ import annotations

import atexit
import os
import sys
import threading

from auditbook.cli.command_line import starts_collection


def exit_status(code) -> int:
    """SystemExit's code as the process's exit status, as the interpreter reads it (a message is printed:
    status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def run() -> None:
    if starts_collection(sys.argv):
        from auditbook.collect.apart import start_early
        start_early()
    from auditbook.cli.main import main
    try:
        main()
        status = 0
    except SystemExit as exc:
        status = exit_status(exc.code)
    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()  # noqa: SLF001 -- CPython's own: what the interpreter runs at exit, before its clean-up
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the process was started with that descriptor closed
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said on it
            pass
    os._exit(status)
