"""Which file a SQLite store URL names, read exactly as SQLAlchemy's driver and SQLite read it, and the
same URL made absolute for processes started in other folders (packet kernels, the control room, the
lab: a relative name opened there would be another, empty store). docs/security.md lists the
spellings and why each matters."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional
from urllib.parse import quote, unquote_to_bytes

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from auditbook.errors import UserError, shown


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
    if "\0" in target:
        return url  # no store can have this name: opening it is a one-line error (open_engine)
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
        _utf8(database)
    return parsed.set(database=database).render_as_string(hide_password=False)


def _utf8(path: str) -> None:
    """A URL holds UTF-8: a path the file system gave in other bytes can only be a `file:` URI's %HH."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"--db: {shown(path, limit=1024)} is not UTF-8: give the store as a file: URI, "
                        "%-escaped (sqlite:///file:PATH?uri=true)") from None


def read_only_sqlite_url(url: str, shown_url: str) -> Optional[str]:
    """The SQLite store at `url` as a read-only `file:` URI (mode=ro: never created, never written), its
    path absolute and escaped for the URL on top of the URI (a `?` in a name); None for one in memory."""
    refuse_unusable_name(url, shown_url)
    path = sqlite_file(absolute_url(url))
    if path is None:
        return None
    uri_path = quote(os.fsencode(path))  # SQLite's own %HH (a `?`, `#` or `%` in a name; any byte)
    # `file://` + an empty authority: a path that starts `//` (sqlite://///tmp/s.db) is not read as a host
    return f"sqlite:///file://{uri_path.replace('%', '%25')}?mode=ro&uri=true"  # the URL's %25: decoded once


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
    return {_decoded(k): _decoded(v) for k, _, v in (p.partition("=") for p in query.split("&") if p)}


def _decoded(text: str) -> str:
    """%HH escapes decoded as SQLite decodes them: as bytes (the file system's encoding), `%00` ending it."""
    return os.fsdecode(unquote_to_bytes(text).split(b"\0", 1)[0])


def _uri_name(target: str) -> str:
    """The file name a SQLite `file:` URI gives, read as SQLite reads it: the path ends at `?` or `#`,
    after an optional empty or `localhost` authority; %HH escapes decoded as bytes (the name in the
    file system's encoding), a `%00` ending it. "" when there is none (a temporary database)."""
    rest = _uri_path_and_tail(target[len("file:"):])[0]
    if rest.startswith("//"):
        _authority, slash, path = rest[2:].partition("/")
        rest = slash + path
    return _decoded(rest)


def _uri_file(target: str) -> Optional[Path]:
    """The file a SQLite `file:` URI names (_uri_name); None for `:memory:` or no name at all."""
    name = _uri_name(target)
    return None if name in ("", ":memory:") else Path(name)


def refuse_unusable_name(url: str, shown_url: str) -> None:
    """A SQLite name no store can live at: a `file:` URI naming no file (SQLite then opens a private
    temporary database, deleted when closed: a scan's writes would vanish without a word) or a NUL
    character (sqlite3 refuses it with a ValueError)."""
    opened = _driver_target(url)
    if opened is None:
        return
    _parsed, target, uri = opened
    if uri and target.startswith("file:") and _uri_name(target) == "":
        raise UserError(f"--db: {shown_url} names no file (SQLite would open a temporary store, deleted when closed)")
    if "\0" in target:
        raise UserError(f"--db: {shown_url}: a file name cannot hold a NUL character")
