"""What a command line names, read before any command module is imported (cli.entry, cli.main)."""
from __future__ import annotations

import os
from typing import Optional


def starts_collection(argv: list[str]) -> bool:
    """Whether a command line starts its collection process before anything else: a scan whose executor
    is local by default (no --executor option; AUDITBOOK_EXECUTOR unset or local), not asked for its help.
    A scan that names its executor starts the process itself, if the executor is local."""
    return (command_named(argv) == "scan" and os.environ.get("AUDITBOOK_EXECUTOR", "local") == "local"
            and not any(arg.startswith("--executor") or arg == "--help" for arg in argv))


def command_named(argv: list[str]) -> Optional[str]:
    """The command a command line names (its first word), if it starts with one rather than an option."""
    return argv[1] if len(argv) > 1 and not argv[1].startswith("-") else None
