"""`auditbook signoff`: prepare, review and show the sign-offs of a period — per criterion, for the
packet and for the management assertion (docs/signoff.md) — and show or set the assertion's text.
The person at the terminal prepares as an analyst, reviews as an approver and sets the text as an
admin: every change is authorised and written to the audit trail by the core."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import CATALOG_OPT, DB_OPT, OutputFormat, group, operator, out
from auditbook.errors import UserError, one_line, shown

signoff_app = group("signoff", "Sign-offs: a preparer and a second person, the reviewer, per criterion, for the "
                               "packet and for the management assertion.")
SUBJECT_ARG = typer.Argument(..., metavar="CRITERION|packet|assertion", help="What is signed off.")
PERIOD_OPT = typer.Option(..., "--period", help="2026Q3, 2026 (a year) or 2026-07-01..2026-09-30.")
COMMENT_OPT = typer.Option(None, "--comment", help="A comment (at most 2000 characters).")
MAX_TEXT_BYTES = 64 * 1024


class Decision(str, Enum):
    approved = "approved"
    changes_requested = "changes-requested"
    rejected = "rejected"


def _t(value) -> str:
    """Stored text (a person's comment: hostile) as one printable line, shown as typed."""
    return escape(one_line("" if value is None else str(value)))


def _inputs(period: str, subject: str, comment: Optional[str], catalog: Optional[Path], required: bool = False):
    """The period, catalog, subject and comment, all checked before the store is opened."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.sampling import parse_audit_period
    from auditbook.history.signoffs import checked_comment, checked_subject
    chosen = parse_audit_period(period)
    checked_comment(comment, required)
    cat = load_catalog(catalog)
    return chosen, cat, checked_subject(cat, subject)


def _print_state(subject: str, state: dict) -> None:
    line = f"{_t(subject)}: {state['state']}"
    if state["preparer"]:
        line += f" · prepared by {_t(state['preparer'])} at {_t(state['prepared_at'])}"
    if state["reviewer"]:
        line += f" · {state['decision']} by {_t(state['reviewer'])} at {_t(state['reviewed_at'])}"
    if state["needs_review_again"]:
        line += " · needs review again (prepared after the last review)"
    out.print(line)


@signoff_app.command("prepare")
def signoff_prepare(subject: str = SUBJECT_ARG, period: str = PERIOD_OPT, comment: Optional[str] = COMMENT_OPT,
                    db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Sign as preparer (you, the login name): the evidence is ready for review. A review of an
    earlier preparation no longer counts."""
    from auditbook.history.signoffs import prepare
    from auditbook.store.db import open_engine
    chosen, cat, subject = _inputs(period, subject, comment, catalog)
    state = prepare(open_engine(db, create=False, writable=True), cat, operator("analyst"), chosen, subject, comment)
    _print_state(subject, state)


@signoff_app.command("review")
def signoff_review(subject: str = SUBJECT_ARG, period: str = PERIOD_OPT,
                   decision: Decision = typer.Option(..., "--decision", help="approved, changes-requested or rejected."),
                   comment: Optional[str] = typer.Option(None, "--comment",
                                                         help="Why (required unless approved; at most 2000 characters)."),
                   db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Review the latest preparation as its second person (never its preparer)."""
    from auditbook.history.signoffs import review
    from auditbook.store.db import open_engine
    chosen, cat, subject = _inputs(period, subject, comment, catalog, required=decision != Decision.approved)
    state = review(open_engine(db, create=False, writable=True), cat, operator("approver"), chosen, subject,
                   decision.value, comment)
    _print_state(subject, state)


def _status_table(found: dict) -> Table:
    table = Table(title=f"Sign-offs {_t(found['period']['label'])}", box=box.SIMPLE, pad_edge=False)
    for col in ("subject", "state", "preparer", "prepared (UTC)", "reviewer", "reviewed (UTC)"):
        table.add_column(col, overflow="fold")
    rows = [*found["criteria"].items(), ("packet", found["packet"]), ("assertion", found["assertion"]["signoff"])]
    for subject, s in rows:
        state = s["state"] + (" (again)" if s["needs_review_again"] else "")
        table.add_row(_t(subject), state, _t(s["preparer"] or "—"), _t((s["prepared_at"] or "—")[:16]),
                      _t(s["reviewer"] or "—"), _t((s["reviewed_at"] or "—")[:16]))
    return table


@signoff_app.command("status")
def signoff_status(period: str = PERIOD_OPT,
                   fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
                   db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Every criterion's, the packet's and the assertion's sign-off state for the period."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.sampling import parse_audit_period
    from auditbook.history.signoffs import signoffs_for
    from auditbook.store.db import open_engine
    chosen = parse_audit_period(period)
    cat = load_catalog(catalog)
    found = signoffs_for(open_engine(db, create=False), chosen, [c.id for c in cat.controls])
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(found, indent=1, sort_keys=True) + "\n")
        return
    out.print(_status_table(found))
    if found["assertion"]["text_changed"]:
        out.print("the assertion's text changed since it was prepared: prepare it again")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()[:MAX_TEXT_BYTES + 1]
        if len(raw) > MAX_TEXT_BYTES:
            raise UserError(f"--text-file: {shown(str(path))} is larger than {MAX_TEXT_BYTES} bytes")
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--text-file: {shown(str(path))} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"--text-file: {shown(str(path))}: {exc.strerror or exc}") from None


@signoff_app.command("assertion-text")
def signoff_assertion_text(
    period: Optional[str] = typer.Option(None, "--period", help="Show the text as it reads for this period."),
    text_file: Optional[Path] = typer.Option(None, "--text-file",
                                             help="Set the template from this UTF-8 file (placeholders: $organisation, "
                                                  "$system, $period, $period_start, $period_end)."),
    organisation: Optional[str] = typer.Option(None, "--organisation", help="Set the organisation's name."),
    system: Optional[str] = typer.Option(None, "--system", help="Set the system's name."),
    db: Optional[str] = DB_OPT,
):
    """Show the management assertion's text template (or its text for --period); with --text-file,
    --organisation or --system, change it (admin; in the audit trail)."""
    from auditbook.history.sampling import parse_audit_period
    from auditbook.history.signoffs import (
        ASSERTION_KEY,
        render_assertion,
        valid_assertion,
    )
    from auditbook.monitor import settings
    from auditbook.store.db import open_engine
    chosen = parse_audit_period(period) if period else None
    changes = {k: v for k, v in (("text", _read_text(text_file) if text_file else None),
                                 ("organisation", organisation), ("system", system)) if v is not None}
    if changes:
        valid_assertion(changes)  # bad input is refused before the store is opened
        engine = open_engine(db, create=False, writable=True)
        setting = settings.put(engine, operator("admin"), ASSERTION_KEY,
                               valid_assertion({**settings.get(engine, ASSERTION_KEY), **changes}))
    else:
        setting = settings.get(open_engine(db, create=False), ASSERTION_KEY)
    out.print(f"organisation: {_t(setting['organisation'])} · system: {_t(setting['system'])}")
    out.print(escape(render_assertion(setting, chosen) if chosen else setting["text"]), highlight=False)
