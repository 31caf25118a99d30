"""Opening the store: URL resolution and Alembic migrations to head."""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Optional

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from auditbook.errors import UserError, one_line, shown

DEFAULT_URL = "sqlite:///var/auditbook.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0007"  # the newest file in migrations/versions (a test keeps the two equal)


def resolve_url(url: Optional[str] = None) -> str:
    return url or os.environ.get("AUDITBOOK_DB") or DEFAULT_URL


def utc(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """A timestamp read from the store, aware in UTC (SQLite returns them naive; they are stored in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def redacted(url: str) -> str:
    """A store URL fit to print or to keep: the password hidden."""
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


def sqlite_file(url: str) -> Optional[Path]:
    """The file of a SQLite store URL (plain or `file:` URI form); None for any other store."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # create_engine reports it
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        if not database.startswith("file:") or parsed.query.get("mode") == "memory":
            return None
        database = database[len("file:"):]
    return Path(database)


def open_engine(url: Optional[str] = None, migrate: bool = True, *, create: bool = True,
                writable: bool = False) -> Engine:
    """The store at `url`, migrated to the newest schema. create=False (read-only commands): no
    store there is a UserError ("no store at …") and nothing is created. writable=True (commands
    that write): a store that cannot be written is refused now, before any work is done."""
    url = resolve_url(url)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # the driver we ship (psycopg 3)
    shown_url = shown(redacted(url), limit=1024)
    path = sqlite_file(url)
    if path is not None and not create and not path.exists():
        raise UserError(f"--db: no store at {shown(str(path), limit=1024)}")
    try:
        if path is not None and create:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True)
    except (ArgumentError, ValueError):
        raise UserError(f"--db: {shown_url} is not a usable database URL")
    except ModuleNotFoundError as exc:
        raise UserError(f"--db: {shown_url} needs the driver {exc.name!r}, which is not installed")
    except OSError as exc:
        raise UserError(f"--db: cannot create the folder of {shown_url}: {exc.strerror}")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate:
            revision = current_revision(engine)
            if revision is None and not create:
                raise UserError(f"--db: no store at {shown_url} (it holds no auditbook tables)")
            if revision != HEAD_REVISION:
                upgrade(engine)
        if writable:
            _check_writable(engine)
    except DBAPIError as exc:
        reason = one_line(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__)
        raise UserError(f"--db: cannot {'write' if writable else 'open'} {shown_url}: {reason}")
    return engine


def _check_writable(engine: Engine) -> None:
    """A write that changes nothing, rolled back: fails at once on a read-only file, database,
    connection or role (rather than at the end of a long collection)."""
    with engine.connect() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
        conn.rollback()


def current_revision(engine: Engine) -> Optional[str]:
    """The store's Alembic revision (None: no version table yet, a new store), read without loading
    Alembic (it costs ~0.4 s to import). A file that is not a database raises DBAPIError."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    from alembic import command
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
