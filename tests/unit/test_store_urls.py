"""A SQLite store URL names the file its driver opens: store.sqlite_urls.sqlite_file and absolute_url read every
spelling the way SQLAlchemy's driver and SQLite do, so the processes started in another folder (packet
kernels, the control room, the lab) open the store the command opened. Each case is checked against
the file the driver really created, never against what the code is expected to compute."""
import os
import sqlite3
from pathlib import Path

import pytest

from auditbook.errors import UserError
from auditbook.store import settings
from auditbook.store.db import open_engine
from auditbook.store.session import reading, writing
from auditbook.store.sqlite_urls import absolute_url, sqlite_file

RELATIVE_SPELLINGS = [
    "sqlite:///store.db",
    "sqlite+pysqlite:///store.db",
    "sqlite:///file:store.db?uri=true",
    *(f"sqlite:///file:store.db?uri={word}" for word in ("yes", "on", "t", "y", "1", "TRUE")),  # the driver's asbool
    "sqlite:///store.db?uri=on",  # uri on, no file: — a plain name to SQLite
    "sqlite:///file:store.db%3Fcache=shared?uri=true",  # SQLAlchemy decodes %3F to `?`: SQLite's path ends there
    "sqlite:///file:store.db%23ignored?uri=true",  # and at `#`
    "sqlite:///file:store.db%3F?uri=true&mode=memory",  # the key SQLite reads is `?mode`: a file, not memory
    "sqlite:///file:store.db%3Fmode%3Dmemory%26mode%3Drwc?uri=true",  # the last mode is the one in force
    "sqlite:///file:st%25FFore.db?uri=true",  # a byte that is no UTF-8: the name in the file system's encoding
    "sqlite:///file:store.db%2500junk?uri=true",  # %00 ends SQLite's path
    "sqlite:///real/?uri=true&cache=shared",  # a plain name with uri on: the driver appends the query to it
    "sqlite:///file:st%2520ore.db?uri=true",  # %20 in the URI path: a space in the file name
    "sqlite:///link/../store.db",  # the driver's abspath: `..` undoes the name, not the symlink's target
    "sqlite:///file:link/../store.db?uri=true",  # SQLite's own open: `..` is the symlink target's parent
    "sqlite:///link/../file.db?uri=yes",  # a plain name with uri on: the operating system's reading
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder with `link` -> real/inner (so link/.. is real, while the name says `here`)."""
    (tmp_path / "real" / "inner").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real" / "inner", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _store_files(root: Path) -> list[Path]:
    return sorted(Path(d) / f for d, _, files in os.walk(root) for f in files
                  if not f.endswith(("-wal", "-shm", "-journal")))


@pytest.mark.parametrize("url", RELATIVE_SPELLINGS)
def test_the_file_named_is_the_file_the_driver_opened(folder, monkeypatch, url):
    with writing(open_engine(url)) as session:
        settings.write(session, "probe", {"url": url})
    [made] = _store_files(folder)  # exactly one file, wherever the driver and SQLite put it
    named, absolute = sqlite_file(url), absolute_url(url)
    assert os.path.samefile(named, made), (named, made)
    assert sqlite_file(absolute).is_absolute() and os.path.samefile(sqlite_file(absolute), made)
    monkeypatch.chdir(folder / "elsewhere")  # as a kernel in the packet's folder
    with reading(open_engine(absolute, create=False)) as session:
        assert settings.read(session, "probe") == {"url": url}
    assert list((folder / "elsewhere").iterdir()) == []


def test_an_absolute_url_is_left_as_written(folder):
    for url in (f"sqlite:///{folder}/s.db", f"sqlite:///file:{folder}/s.db?uri=yes&mode=ro", "sqlite://",
                "sqlite:///:memory:", "postgresql+psycopg://u:p@127.0.0.1/db", "sqlite:///file:s.db?uri=maybe"):
        assert absolute_url(url) == url


@pytest.mark.parametrize("url", ["sqlite:///file://?uri=true", "sqlite:///file://localhost?uri=true",
                                 "sqlite:///file:?uri=true&mode=rwc", "sqlite:///file:%2500x.db?uri=true"])
def test_a_uri_that_names_no_file_is_refused_not_a_store_that_vanishes(folder, url):
    """SQLite opens a private temporary database for a URI without a path: a scan would write into it
    and lose everything without a word."""
    for create in (True, False):
        with pytest.raises(UserError, match="^--db: .*names no file"):
            open_engine(url, create=create)
    assert _store_files(folder) == []


def test_a_store_in_memory_is_named_by_no_file(folder):
    for url in ("sqlite:///file:store.db?uri=true&vfs=memdb", "sqlite:///file:store.db?uri=true&mode=memory",
                "sqlite:///file:store.db%3Fmode%3Drwc%26mode%3Dmemory?uri=true", "sqlite://",
                "sqlite:///file:store.db?uri=true&mode=memory%2500", "sqlite:///file:store.db?uri=true&vfs=memdb%2500x"):
        assert sqlite_file(url) is None and absolute_url(url) == url


def test_an_impossible_file_name_is_one_line(folder):
    for url in (f"sqlite:///{'b' * 300}.db", "sqlite:///store.db%00junk", "sqlite:///file:st%00ore.db%3F?uri=true"):
        for create in (True, False):
            with pytest.raises(UserError, match="^--db: "):
                open_engine(url, create=create)
    assert _store_files(folder) == []


def test_a_symlink_loop_is_no_store_not_a_traceback(folder):
    (folder / "loop").symlink_to(folder / "loop")
    for url in ("sqlite:///loop/store.db", "sqlite:///file:loop/store.db?uri=true"):
        assert os.path.isabs(sqlite_file(absolute_url(url)))
        with pytest.raises(UserError, match="^--db: no store at .*loop/store.db"):
            open_engine(absolute_url(url), create=False)


def test_the_lab_opens_a_store_whose_name_holds_a_question_mark_read_only(folder):
    from auditbook.web.lab import read_only_url
    url = f"sqlite:///{folder}/odd%3Fname.db"  # the file is `odd?name.db`
    with writing(open_engine(url)) as session:
        settings.write(session, "probe", {"odd": True})
    assert (folder / "odd?name.db").is_file()
    lab_url = read_only_url(url)
    with reading(open_engine(lab_url, create=False)) as session:
        assert settings.read(session, "probe") == {"odd": True}
    with pytest.raises(UserError, match="readonly"):
        open_engine(lab_url, create=False, writable=True)
    assert [p.name for p in _store_files(folder)] == ["odd?name.db"]


def test_sqlite_itself_reads_the_encoded_question_mark_as_the_end_of_the_path(folder):
    """The premise of the `%3F` case above, checked on the SQLite this machine has."""
    sqlite3.connect("file:plain.db?x=1", uri=True).close()
    assert [p.name for p in _store_files(folder)] == ["plain.db"]


def test_a_name_holding_nul_is_left_as_written_and_refused(folder):
    from auditbook.web.lab import read_only_url
    url = "sqlite:///file:st%00ore.db?uri=true"  # a literal NUL: sqlite3 cannot be given it
    assert absolute_url(url) == url
    for opened in (lambda: open_engine(url), lambda: read_only_url(url)):
        with pytest.raises(UserError, match="NUL character"):
            opened()
    assert _store_files(folder) == []


def test_a_folder_whose_name_is_not_utf8_is_one_line_or_a_file_uri(tmp_path, monkeypatch):
    odd = os.fsdecode(bytes(tmp_path) + b"/we\xffird")
    os.mkdir(odd)
    monkeypatch.chdir(odd)
    with pytest.raises(UserError, match="not UTF-8"):
        absolute_url("sqlite:///store.db")
    url = "sqlite:///file:store.db?uri=true"
    with writing(open_engine(url)) as session:
        settings.write(session, "probe", {"odd": True})
    monkeypatch.chdir(tmp_path)
    with reading(open_engine(absolute_url_from(odd, url), create=False)) as session:
        assert settings.read(session, "probe") == {"odd": True}


def absolute_url_from(folder: str, url: str) -> str:
    here = os.getcwd()
    os.chdir(folder)
    try:
        return absolute_url(url)
    finally:
        os.chdir(here)


def test_a_uri_the_driver_cannot_take_is_one_line():
    for url in ("sqlite://?uri=true&mode=rwc", "sqlite://?uri=true"):
        with pytest.raises(UserError, match="not a usable database URL"):
            open_engine(url)


def test_the_lab_reaches_postgresql_over_a_local_socket_read_only():
    from sqlalchemy.engine import make_url

    from auditbook.web.lab import read_only_url
    parsed = make_url(read_only_url("postgresql:///audit?host=/var/run/postgresql"))
    assert parsed.database == "audit" and parsed.query["host"] == "/var/run/postgresql"
    assert "default_transaction_read_only=on" in parsed.query["options"]
