"""Opening the store: URL resolution and Alembic migrations to head."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import weakref
from pathlib import Path
from typing import Optional
from urllib.parse import quote, unquote, unquote_to_bytes, urlencode

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
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from auditbook.errors import UserError, one_line, shown

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
    return url or os.environ.get("AUDITBOOK_DB") or DEFAULT_URL


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


def absolute_url(url: str) -> str:
    """A relative SQLite path made absolute (for processes started in another folder, which would
    otherwise open — and create — another store): any SQLite driver (`sqlite+pysqlite:///store.db`)
    and the `file:` URI form; any other URL unchanged. The name is joined to the working folder as
    text, nothing normalised, as the operating system (and SQLite's own open) would join it; a plain
    path takes the driver's own os.path.abspath (sqlite_file), so `..` after a symlinked folder
    names the same file."""
    opened = _driver_target(url)
    if opened is None:
        return url
    parsed, target, uri = opened
    database = parsed.database
    if uri and database.startswith("file:"):
        name = _uri_name(target)
        if name in ("", ":memory:") or os.path.isabs(name):
            return url
        tail = _uri_path_and_tail(database[len("file:"):])[1]
        database = "file:" + quote(os.fsencode(os.path.join(os.getcwd(), name))) + tail
    elif os.path.isabs(database):
        return url
    else:
        database = target if not uri else os.path.join(os.getcwd(), database)
    return parsed.set(database=database).render_as_string(hide_password=False)


def read_only_sqlite_url(url: str) -> Optional[str]:
    """The SQLite store at `url` as a read-only `file:` URI (mode=ro: never created, never written), its
    path absolute and escaped for the URL on top of the URI (a `?` in a name); None for one in memory."""
    path = sqlite_file(absolute_url(url))
    if path is None:
        return None
    return URL.create("sqlite", database="file:" + quote(os.fsencode(path)),
                      query={"mode": "ro", "uri": "true"}).render_as_string()


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


def sqlite_file(url: str) -> Optional[Path]:
    """The file a SQLite store URL opens, read as its driver reads it (SQLAlchemy's own
    create_connect_args: `uri=` as a boolean the driver's way, a plain path made absolute with
    os.path.abspath), then as SQLite reads the name; None for an in-memory database, any other store or
    a URL the driver refuses (create_engine reports it). Relative only for a relative name with uri on."""
    opened = _driver_target(url)
    if opened is None:
        return None
    _parsed, target, uri = opened
    if uri and target.startswith("file:"):
        return _uri_file(target)
    return Path(target)


def _driver_target(url: str):
    """(parsed URL, the name the SQLite driver hands sqlite3.connect, whether as a URI), or None for a
    URL that is not a SQLite file store (in memory: `:memory:`, mode=memory, vfs=memdb) or that the
    driver refuses."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return None
        (target, *_), params = parsed.get_dialect()().create_connect_args(parsed)
    except (ArgumentError, ValueError, TypeError):  # ValueError: a port or a uri= that is no number/boolean
        return None
    uri = bool(params.get("uri"))
    if not isinstance(target, str) or target in ("", ":memory:"):
        return None
    if uri and target.startswith("file:"):
        query = _uri_query(target)
        if query.get("mode") == "memory" or query.get("vfs") == "memdb":
            return None
    return parsed, target, uri


def _uri_path_and_tail(rest: str) -> tuple[str, str]:
    """A `file:` URI's text after `file:` split where SQLite ends the path: at the first `?` or `#`."""
    end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return rest[:end], rest[end:]


def _uri_query(target: str) -> dict[str, str]:
    """A `file:` URI's query as SQLite reads it: after the path's first `?`, up to `#`, %HH decoded,
    the last value of a key the one in force."""
    tail = _uri_path_and_tail(target[len("file:"):])[1].split("#", 1)[0]
    query = tail[1:] if tail.startswith("?") else ""
    return {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in query.split("&") if p)}


def _uri_name(target: str) -> str:
    """The file name a SQLite `file:` URI gives, read as SQLite reads it: the path ends at `?` or `#`,
    after an optional empty or `localhost` authority; %HH escapes decoded as bytes (the name in the
    file system's encoding), a `%00` ending it. "" when there is none (a temporary database)."""
    rest = _uri_path_and_tail(target[len("file:"):])[0]
    if rest.startswith("//"):
        _authority, slash, path = rest[2:].partition("/")
        rest = slash + path
    return os.fsdecode(unquote_to_bytes(rest).split(b"\0", 1)[0])


def _uri_file(target: str) -> Optional[Path]:
    """The file a SQLite `file:` URI names (_uri_name); None for `:memory:` or no name at all."""
    name = _uri_name(target)
    return None if name in ("", ":memory:") else Path(name)


def temporary_store(url: str) -> bool:
    """Whether the URL is a SQLite `file:` URI that names no file: SQLite then opens a private temporary
    database, deleted when it is closed (what was written would be lost without a word)."""
    opened = _driver_target(url)
    return opened is not None and opened[2] and opened[1].startswith("file:") and _uri_name(opened[1]) == ""


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
    _refuse_unusable_name(url, shown_url)
    if path is not None and not create and not _exists(path, shown_url):
        raise UserError(f"--db: no store at {shown(str(path), limit=1024)}")
    try:
        if path is not None and create:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, json_deserializer=json_loads)
        _check_parsed(engine.url)
    except (ArgumentError, ValueError) as exc:
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


def _refuse_unusable_name(url: str, shown_url: str) -> None:
    """A SQLite name no store can live at: a URI naming no file (SQLite's temporary database, deleted
    when closed: a scan's writes would vanish) or a NUL character (sqlite3 refuses it with a ValueError)."""
    if temporary_store(url):
        raise UserError(f"--db: {shown_url} names no file (SQLite would open a temporary store, deleted when closed)")
    opened = _driver_target(url)
    if opened is not None and "\0" in opened[1]:
        raise UserError(f"--db: {shown_url}: a file name cannot hold a NUL character")


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
