"""The auditbook command line. Thin: each command (one module per group) parses its options, calls
one core function and prints; this module gathers the groups and turns every error into one line
and an exit code (2: a usage mistake or bad input, 1: the work failed, 130: interrupted)."""
from __future__ import annotations

import atexit
import gc
import importlib
import sys
from typing import Optional

import typer

from auditbook.cli.command_line import command_named
from auditbook.cli.common import app
from auditbook.errors import ScanAborted, UserError, one_line
from auditbook.gc_tuning import collect_less

INTERRUPTED = 130


# The command module whose import registers each command or group (the first word after `auditbook`):
# a command imports its own module only (20-45 ms of CPU less than building all 17). A name not here
# (no command, --help, a typo, a plugin's) or not registered by its module registers them all, so a
# stale entry costs time, never a command; tests/unit/test_cli_registration.py keeps it in step.
COMMAND_MODULES = {
    "app-audit": "app_audit", "bridge": "bridge", "gaps": "bridge", "validate": "catalog", "policy": "catalog",
    "parameters": "catalog", "controls-doc": "catalog", "collectors-doc": "catalog", "controls": "catalog",
    "declared": "declared", "deviations": "deviations", "evidence": "evidence", "scan": "findings",
    "findings": "findings", "export": "findings", "incidents": "incidents", "watch": "monitor",
    "exporter": "monitor", "runbook": "monitor", "alerts": "alerts", "packet": "packet", "keygen": "packet",
    "verify": "packet", "plugins": "plugins", "resource": "resource", "exceptions": "risk_register",
    "sample": "sample", "scope": "scope", "app": "serve", "lab": "serve", "demo": "serve", "version": "serve",
    "signoff": "signoff",
}


def registered_names(root: typer.Typer) -> set[str]:
    """The commands and groups registered on `root` so far."""
    return ({c.name or typer.main.get_command_name(c.callback.__name__) for c in root.registered_commands}
            | {g.name for g in root.registered_groups})


def registered_app(command: Optional[str] = None) -> typer.Typer:
    """The root command with `command`'s module registered, or every command group (importing a
    command module registers its commands; a plugin conflict found while they build their options is a
    one-line error in main, like any other). Tests drive it with typer's CliRunner."""
    module = COMMAND_MODULES.get(command or "")
    if module is not None:
        importlib.import_module(f"auditbook.cli.{module}")
        if command in registered_names(app):
            return app
    from auditbook.cli import (  # noqa: F401
        app_audit,
        bridge,
        catalog,
        declared,
        deviations,
        evidence,
        findings,
        incidents,
        monitor,
        packet,
        plugins,
        resource,
        risk_register,
        sample,
        scope,
        serve,
        signoff,
    )
    return app


def at_exit() -> None:
    """As the process ends (registered by main, run before the interpreter's own clean-up): close every
    store (a SQLite store folds its write-ahead log back into its file) and freeze what is left, so
    the interpreter does not walk a scan's hundreds of thousands of objects (botocore's service
    models, mostly) looking for cycles to free on the way out: 0.6-0.8 s of CPU on a small scan."""
    store = sys.modules.get("auditbook.store.db")  # a command that opened no store never imported it
    if store is not None:
        store.dispose_engines()
    gc.freeze()


def main():
    try:
        _main()
    finally:
        apart = sys.modules.get("auditbook.collect.apart")
        if apart is not None:  # a collection process started early and not taken by a scan
            apart.stop_early()


def _main():
    collect_less()  # auditbook.gc_tuning
    atexit.unregister(at_exit)  # once, however many times main runs in one process (tests)
    atexit.register(at_exit)
    try:
        code = registered_app(command_named(sys.argv))(standalone_mode=False)  # typer.Exit(n) comes back as n
    except typer.TyperException as exc:
        # click's usage errors (typer vendors click: they are not click.ClickException): the usage
        # line, a hint and "Error: …"; exit 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"Error: {one_line(exc.format_message())}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted: nothing was written\n")
        sys.exit(1)
    except UserError as exc:  # PermissionDenied too
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        sys.exit(2)
    except ScanAborted as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into Exit(130) under standalone_mode=False
        sys.stderr.write("interrupted: nothing was written\n")
        sys.exit(INTERRUPTED)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
