"""cli/main.py registers only the module of the command being run (COMMAND_MODULES); every command and
group must be in that table, or the command line would build all 17 modules for it (correct, slower)."""
from __future__ import annotations

import pytest

from auditbook.cli.command_line import command_named
from auditbook.cli.main import COMMAND_MODULES, registered_app, registered_names


def test_the_table_names_every_command_and_group_and_nothing_else():
    assert registered_names(registered_app()) == set(COMMAND_MODULES)


@pytest.mark.parametrize("argv, command", [
    (["auditbook"], None), (["auditbook", "--help"], None), (["auditbook", "scan", "--db", "x"], "scan"),
    (["auditbook", "-x", "scan"], None), (["auditbook", "app-audit", "ingest"], "app-audit"),
])
def test_the_command_is_the_first_word_unless_it_is_an_option(argv, command):
    assert command_named(argv) == command
