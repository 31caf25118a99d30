"""Opening the store: URL resolution and Alembic migrations to head."""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Optional

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from auditbook.errors import UserError

DEFAULT_URL = "sqlite:///var/auditbook.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0006"  # the newest file in migrations/versions (a test keeps the two equal)


def resolve_url(url: Optional[str] = None) -> str:
    return url or os.environ.get("AUDITBOOK_DB") or DEFAULT_URL


def utc(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """A timestamp read from the store, aware in UTC (SQLite returns them naive; they are stored in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def redacted(url: str) -> str:
    """A store URL fit to print or to keep: the password hidden."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def absolute_url(url: str) -> str:
    """A relative SQLite path made absolute (for processes started in another folder)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(Path(url[len(prefix):]).resolve())
    return url


def alembic_config():
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_engine(url: Optional[str] = None, migrate: bool = True) -> Engine:
    url = resolve_url(url)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # the driver we ship (psycopg 3)
    try:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True)
    except (ArgumentError, ValueError):
        raise UserError(f"--db: {redacted(url)!r} is not a usable database URL")
    except ModuleNotFoundError as exc:
        raise UserError(f"--db: {redacted(url)!r} needs the driver {exc.name!r}, which is not installed")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        try:
            if current_revision(engine) != HEAD_REVISION:
                upgrade(engine)
        except OperationalError as exc:
            raise UserError(f"--db: cannot open {redacted(url)!r}: {str(exc.orig).splitlines()[0]}")
    return engine


def current_revision(engine: Engine) -> Optional[str]:
    """The store's Alembic revision, read without loading Alembic (it costs ~0.4 s to import)."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            return None  # no version table yet: a new store (a broken one fails in upgrade)


def upgrade(engine: Engine) -> None:
    from alembic import command
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
