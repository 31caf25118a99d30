"""AWS accounts as the runs saw them: each run keeps its accounts' identities (Organizations names, or
the names of the accounts file), read here into one account id -> name mapping."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.store.models import Run

NAME_LENGTH = 100  # a name longer than this is cut (it comes from AWS or a file: shown, never trusted)


def names(session: Session) -> dict[str, str]:
    """{account id: name} over every run, the newest run's name winning; accounts without a name are
    left out."""
    out: dict[str, str] = {}
    for (identities,) in session.execute(select(Run.identities).order_by(Run.id.desc())):
        for entry in identities or []:
            if not isinstance(entry, dict):
                continue
            account, name = entry.get("account"), entry.get("name")
            if isinstance(account, str) and isinstance(name, str) and name.strip() and account not in out:
                out[account] = name.strip()[:NAME_LENGTH]
    return out
