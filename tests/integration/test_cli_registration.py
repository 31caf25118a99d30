"""Each command registered alone, in a fresh interpreter as the command line runs it: its module (and
only the modules it imports) registers it; a stale entry in the table falls back to registering all."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import defaultdict

from auditbook.cli.main import COMMAND_MODULES

REGISTER = textwrap.dedent("""
    import json, sys
    import auditbook.cli.main as m
    if len(sys.argv) > 2:
        m.COMMAND_MODULES[sys.argv[1]] = sys.argv[2]  # a table out of step with the modules
    m.registered_app(sys.argv[1])
    print(json.dumps({"names": sorted(m.registered_names(m.app)),
                      "modules": sorted(k for k in sys.modules if k.startswith("auditbook.cli."))}))
""")


def _register(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", REGISTER, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_command_module_alone_registers_the_commands_the_table_gives_it():
    by_module = defaultdict(set)
    for command, module in COMMAND_MODULES.items():
        by_module[module].add(command)
    for module, commands in by_module.items():
        first = sorted(commands)[0]
        seen = _register(first)
        assert commands <= set(seen["names"]), module
        assert f"auditbook.cli.{module}" in seen["modules"]


def test_a_scan_builds_its_own_command_module_and_not_the_others():
    seen = _register("scan")
    assert "scan" in seen["names"]
    assert "auditbook.cli.packet" not in seen["modules"] and "auditbook.cli.serve" not in seen["modules"]
    assert len(seen["names"]) < len(COMMAND_MODULES) / 2


def test_a_stale_entry_registers_every_command():
    seen = _register("scan", "plugins")  # the table says plugins.py registers scan: it does not
    assert set(seen["names"]) == set(COMMAND_MODULES)
