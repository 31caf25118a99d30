"""What every command module shares: the root command, the consoles, the common options, and the
person at the terminal as an actor."""
from __future__ import annotations

from enum import Enum

import typer
from rich.console import Console

from auditbook import auth
from auditbook.auth import Actor

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="auditbook: continuous SOC 2 evidence for AWS.")
out = Console(soft_wrap=True)  # a line stays one line (greppable), whatever the terminal width
err = Console(stderr=True, soft_wrap=True)

DB_OPT = typer.Option(None, "--db", envvar="AUDITBOOK_DB",
                      help="SQLAlchemy URL of the store (default sqlite:///var/auditbook.db).")
CATALOG_OPT = typer.Option(None, "--catalog", help="Catalog file (default: the bundled controls.yaml).")


class OutputFormat(str, Enum):
    """--format of the commands that print a table for people or JSON for programs."""
    table = "table"
    json = "json"


def operator(role: str) -> Actor:
    """The person at the terminal, as an actor of `role`: the CLI's writes are authorised and
    recorded like every other front end's."""
    return Actor(f"{auth.login_name()} (cli)", role)


def group(name: str, help_text: str, cls=None) -> typer.Typer:
    """A command group (`auditbook NAME …`) under the root command (`cls`: its click group class)."""
    sub = typer.Typer(help=help_text, no_args_is_help=True, **({"cls": cls} if cls else {}))
    app.add_typer(sub, name=name)
    return sub
