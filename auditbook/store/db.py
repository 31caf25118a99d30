"""Opening the store: URL resolution and Alembic migrations to head."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import weakref
from pathlib import Path
from typing import Optional
from urllib.parse import quote, unquote, urlencode

import orjson
from sqlalchemy import (
    Column,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from auditbook.errors import UserError, one_line, shown
from auditbook.store.sqlite_urls import refuse_unusable_name, sqlite_file

DEFAULT_URL = "sqlite:///var/auditbook.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# the revisions this release knows (migrations/versions/NNNN_name.py) and the newest (a test keeps it
# equal to Alembic's head)
KNOWN_REVISIONS = frozenset(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
HEAD_REVISION = max(KNOWN_REVISIONS)
# Alembic's own version table, as `alembic stamp` creates it (a test compares it with a migrated store's)
_VERSION_TABLE = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                       PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


_opened: "weakref.WeakSet[Engine]" = weakref.WeakSet()  # every engine open_engine returned (dispose_engines)


def dispose_engines() -> None:
    """Close the pooled connections of every store this process opened (a SQLite store then folds its
    write-ahead log back into the database file). The CLI does it as the process ends."""
    for engine in list(_opened):
        engine.dispose()


def resolve_url(url: Optional[str] = None) -> str:
    """The store URL to use: given, else $AUDITBOOK_DB, else the default; UTF-8 text, or one line (a
    URL that is not never reaches the drivers, which fail with a traceback — and it is never printed:
    it may hold a password)."""
    url = url or os.environ.get("AUDITBOOK_DB") or DEFAULT_URL
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("--db: the store URL holds bytes that are not UTF-8; name such a file as a file: URI "
                        "with each byte written %25HH (sqlite:///file:PATH?uri=true)") from None
    return url


def utc(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """A timestamp read from the store, aware in UTC (SQLite returns them naive; they are stored in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


_SECRET_KEY = re.compile(r"password|secret|token", re.IGNORECASE)  # query keys whose values are secrets
_SECRET_QUERY = re.compile(r"([?&][^=&#]*(?:password|secret|token)[^=&#]*=)[^&#]*", re.IGNORECASE)
_AUTHORITY_SECRET = re.compile(r"^([^:/?#@]*:/*[^:/?#@]*):.*@", re.DOTALL)  # greedy: up to the last "@"


def redacted(url: str) -> str:
    """A store URL fit to print or to keep: the password hidden, and so is the value of every query
    key naming a password, secret or token (`?password=`, `?sslpassword=`: libpq takes them as such).
    A URL SQLAlchemy cannot parse (or whose host holds an `@`, from a password with an unencoded `@`)
    keeps nothing between the user name and the last `@`."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or ""):
        return _redacted_text(url)
    query = [(key, "***" if _SECRET_KEY.search(key) else value) for key, values in parsed.query.items()
             for value in (values if isinstance(values, tuple) else (values,))]
    shown_url = parsed.set(query={}).render_as_string(hide_password=True)
    return shown_url + ("?" + urlencode(query, safe="*") if query else "")


def _redacted_text(url: str) -> str:
    """redacted() for a URL that does not parse: SCHEME://USER:***@… up to the last `@` (or all
    that comes before it, when there is no `USER:`), and secret query values hidden."""
    text, found = _AUTHORITY_SECRET.subn(r"\1:***@", url)
    if not found and "@" in text:
        text = "***" + text[text.rindex("@"):]
    return _SECRET_QUERY.sub(r"\1***", text)


def alembic_config():
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


_LONG_NUMBER = re.compile(r"\d{19}")


def json_loads(text):
    """A JSON column's value: orjson (several times json's speed on evidence), json for what orjson
    refuses or reads otherwise (NaN, lone surrogates; 19 digits or more in a row, which could be an
    integer orjson would turn into a float) — the same values either way."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _never_create(_dialect, _record, cargs, cparams) -> None:
    """do_connect hook of a read-only command's SQLite engine: the file is opened through a SQLite URI
    with mode=rw (or the mode=ro/memory asked for), so no spelling of the URL creates a file."""
    target = cargs[0] if cargs else None
    if not isinstance(target, str) or target in ("", ":memory:"):
        return
    if cparams.get("uri") and target.startswith("file:"):
        base, _, query = target.split("#", 1)[0].partition("?")  # SQLite ignores what follows `#`
        params = [p for p in query.split("&") if p]
        modes = {unquote(p.partition("=")[2]) for p in params if unquote(p.partition("=")[0]) == "mode"}
        if modes and modes <= {"ro", "memory"}:
            cargs[0] = base + (f"?{query}" if query else "")
            return
        kept = [p for p in params if unquote(p.partition("=")[0]) != "mode"]
        cargs[0] = base + "?" + "&".join([*kept, "mode=rw"])
    else:
        cargs[0] = f"file:{quote(target)}?mode=rw"
    cparams["uri"] = True


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
    refuse_unusable_name(url, shown_url)
    if path is not None and not create and not _exists(path, shown_url):
        raise UserError(f"--db: no store at {shown(str(path), limit=1024)}")
    try:
        if path is not None and create:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, json_deserializer=json_loads)
        _check_parsed(engine.url)
    except (ArgumentError, ValueError, TypeError) as exc:  # TypeError: the SQLite driver, given no name
        hint = f" ({exc})" if isinstance(exc, UnusableURL) else ""
        raise UserError(f"--db: {shown_url} is not a usable database URL{hint}")
    except ModuleNotFoundError as exc:
        raise UserError(f"--db: {shown_url} needs the driver {exc.name!r}, which is not installed")
    except OSError as exc:
        raise UserError(f"--db: cannot create the folder of {shown_url}: {exc.strerror}")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if not create:
            event.listen(engine, "do_connect", _never_create)
    try:
        if migrate:
            revision = current_revision(engine)
            if revision is None and not create:
                raise UserError(f"--db: no store at {shown_url} (it holds no auditbook tables)")
            if revision is not None and revision not in KNOWN_REVISIONS:
                raise UserError(f"--db: {shown_url} is at schema revision {shown(revision)}, which this release "
                                f"does not know (its newest is {HEAD_REVISION}): a newer auditbook's store? "
                                "Nothing was changed")
            if revision is None and create_from_models(engine):
                pass  # a new store: created at head, no migration to replay
            elif revision != HEAD_REVISION:
                upgrade(engine)
        if writable:
            _check_writable(engine)
    except DBAPIError as exc:
        reason = one_line(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__)
        raise UserError(f"--db: cannot {'write' if writable else 'open'} {shown_url}: {reason}")
    _opened.add(engine)
    return engine


def _exists(path: Path, shown_url: str) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # a name too long, a folder this user cannot enter
        raise UserError(f"--db: cannot open {shown_url}: {exc.strerror}") from None


class UnusableURL(ValueError):
    """A URL that parses, but not as meant."""


def _check_parsed(parsed) -> None:
    if "@" in (parsed.host or ""):  # the driver would look the rest of the password up as a host name
        raise UnusableURL("an '@' in the user name or password must be written %40")
    if parsed.get_backend_name() == "sqlite" and parsed.database is None and "uri" in parsed.query:
        raise UnusableURL("a SQLite URI needs a file name")  # the driver would fail with a TypeError


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


def model_metadata() -> MetaData:
    """Every table of the store, as the models declare them (the modules migrations/env.py imports)."""
    import auditbook.store.models_app_audit  # noqa: F401  (their tables are in Base.metadata)
    import auditbook.store.models_deviations  # noqa: F401
    import auditbook.store.models_evidence  # noqa: F401
    import auditbook.store.models_workflow  # noqa: F401
    from auditbook.store.models import Base
    return Base.metadata


def create_from_models(engine: Engine) -> bool:
    """A new store made at head in one transaction: the tables from the models, then Alembic's version
    table stamped with HEAD_REVISION — what `alembic upgrade head` leaves, without replaying every
    revision (tests/unit/test_store_schema.py keeps the two schemas identical); all or nothing, on SQLite
    too. A database that already holds any of our tables is not touched (False): upgrade() then reports
    what is wrong with it."""
    metadata = model_metadata()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":  # the driver would commit each CREATE TABLE by itself
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        _one_schema_change_at_a_time(conn)
        present = set(inspect(conn).get_table_names())
        if present & (set(metadata.tables) | {_VERSION_TABLE.name}):
            return False
        metadata.create_all(conn, checkfirst=False)
        _VERSION_TABLE.create(conn, checkfirst=False)
        conn.execute(_VERSION_TABLE.insert().values(version_num=HEAD_REVISION))
    return True


SCHEMA_LOCK = 0x61756469_74626F6B  # "auditbok": the PostgreSQL advisory lock of a store's schema changes


def _one_schema_change_at_a_time(conn) -> None:
    """On PostgreSQL, wait for any other process creating or upgrading this store (two first scans
    started together): held to the end of the transaction, after which the other sees its work done.
    SQLite: BEGIN IMMEDIATE serialises them already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})


def upgrade(engine: Engine) -> None:
    from alembic import command
    with engine.begin() as conn:
        _one_schema_change_at_a_time(conn)
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
