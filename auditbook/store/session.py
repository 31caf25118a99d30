"""Units of work: how every caller outside the store talks to it. A service function opens one
unit of work per command or page action and hands its session to the repositories (the modules of
this package), which run the queries and return plain rows, dicts or DataFrames — never ORM objects.

    with reading(engine) as session:          # reads: no transaction left open
        rows = findings.for_run(session, run_id)
    with writing(engine) as session:          # writes: one transaction, committed at the end
        incidents.insert(session, …)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session, session.begin():
        yield session
