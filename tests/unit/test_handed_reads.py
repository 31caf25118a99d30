"""A packet build reads the last run's findings once and hands them to all its kernels through a file
that is locked until written (history.handed_reads): a kernel waits for it, takes only keys of the
kinds handed, and reads the store itself whenever the file holds nothing usable — the value is the
same either way, only who reads it changes."""
import os
import stat
import threading
import time

import pytest

from auditbook.history import handed_reads, shared_reads

KEY = ("findings_at_run", "sqlite:////s.db", 7)
VALUES = {KEY: [{"check": "c1", "status": "FAIL", "evidence": ["a" * 64], "first_seen_run": 3, "x": None}]}


@pytest.fixture
def handoff(monkeypatch, tmp_path):
    made = handed_reads.Handoff(tmp_path)
    monkeypatch.setenv(handed_reads.ENV, str(made.path))
    monkeypatch.setattr(handed_reads, "_LOADED", None)
    yield made
    made.remove()


def test_the_file_is_private_and_the_kernel_waits_until_it_is_written(handoff):
    assert stat.S_IMODE(os.stat(handoff.folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(handoff.path).st_mode) == 0o600
    got = {}
    reader = threading.Thread(target=lambda: got.update(value=handed_reads.handed(KEY)))
    reader.start()
    time.sleep(0.3)
    assert reader.is_alive() and not got  # waiting on the build's lock, not reading an empty file
    handoff.fill(lambda: VALUES)
    reader.join(timeout=5)
    assert got["value"] == (True, VALUES[KEY]) and handoff.error is None


def test_only_handed_kinds_are_looked_up(handoff):
    handoff.fill(lambda: VALUES)
    assert handed_reads.handed(("period_runs", "sqlite:////s.db", 1, 2)) == (False, None)
    assert handed_reads.handed(("findings_at_run", "sqlite:////other.db", 7)) == (False, None)  # another store
    assert handed_reads.handed(KEY) == (True, VALUES[KEY])


@pytest.mark.parametrize("read", [lambda: 1 / 0, lambda: {KEY: [object()]}], ids=["read fails", "not plain values"])
def test_a_failed_handoff_lets_the_kernels_in_to_read_themselves(handoff, read):
    handoff.fill(read)
    assert handoff.error and os.path.getsize(handoff.path) == 0
    assert handed_reads.handed(KEY) == (False, None)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xe9" * 10], ids=["empty", "garbage", "bad marshal"])
def test_an_unusable_file_hands_nothing(tmp_path, monkeypatch, content):
    path = tmp_path / "reads"
    path.write_bytes(content)
    monkeypatch.setenv(handed_reads.ENV, str(path))
    monkeypatch.setattr(handed_reads, "_LOADED", None)
    assert handed_reads.handed(KEY) == (False, None)


def test_a_truncated_file_hands_nothing(tmp_path, monkeypatch):
    import marshal
    path = tmp_path / "reads"
    path.write_bytes(marshal.dumps(VALUES)[:-5])  # a build that died while writing
    monkeypatch.setenv(handed_reads.ENV, str(path))
    monkeypatch.setattr(handed_reads, "_LOADED", None)
    assert handed_reads.handed(KEY) == (False, None)


def test_a_file_whose_sizes_memory_cannot_hold_hands_nothing(tmp_path, monkeypatch):
    """Five bytes can declare a list of 2**31 items: where the kernel's memory is limited, marshal raises
    MemoryError (the attack pass's file); the kernel then reads the store itself."""
    import marshal

    def out_of_memory(data):
        raise MemoryError
    path = tmp_path / "reads"
    path.write_bytes(b"[\xff\xff\xff\x7f")
    monkeypatch.setattr(marshal, "loads", out_of_memory)  # as under `ulimit -v`
    monkeypatch.setenv(handed_reads.ENV, str(path))
    monkeypatch.setattr(handed_reads, "_LOADED", None)
    assert handed_reads.handed(KEY) == (False, None)


def test_no_file_outside_a_build(monkeypatch):
    monkeypatch.delenv(handed_reads.ENV, raising=False)
    monkeypatch.setattr(handed_reads, "_LOADED", None)
    assert handed_reads.handed(KEY) == (False, None)


def test_a_sharing_kernel_takes_the_handed_value_instead_of_reading(handoff, monkeypatch):
    monkeypatch.setattr(shared_reads, "_SHARING", False)
    monkeypatch.setattr(shared_reads, "_VALUES", {})
    handoff.fill(lambda: VALUES)
    assert shared_reads.once(KEY, lambda: "read") == "read"  # not a packet kernel: reads the store
    with shared_reads.shared_in_this_thread():  # the build's data thread: its own reads, never the file
        assert shared_reads.once(KEY, lambda: "read by the thread") == "read by the thread"
    shared_reads.share_in_this_process()

    def read():
        raise AssertionError("read the store although the build handed the value")
    assert shared_reads.once(KEY, read) == VALUES[KEY]
    assert shared_reads.once(KEY, read) is shared_reads.once(KEY, read)  # kept, once
    other = ("findings_at_run", "sqlite:////s.db", 8)  # a run the build did not hand: read
    assert shared_reads.once(other, lambda: ["own"]) == ["own"]


def test_removed_with_its_folder(monkeypatch, tmp_path):
    made = handed_reads.Handoff(tmp_path)
    made.fill(lambda: VALUES)
    made.remove()
    assert not made.folder.exists()


@pytest.mark.parametrize("relative", [False, True], ids=["absolute path", "relative path"])
def test_the_build_hands_the_findings_under_the_key_a_kernel_asks_for(history_store, monkeypatch, relative):
    """The key names the store as the kernels name it (their AUDITBOOK_DB, which the build makes
    absolute), the runs are every criterion's latest, and the values are what the kernel would read."""
    from pathlib import Path

    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import handed_latest_findings, latest_run_for
    from auditbook.report import page_helpers
    from auditbook.store import findings
    from auditbook.store.db import open_engine, resolve_url
    from auditbook.store.session import reading
    from auditbook.store.sqlite_urls import absolute_url
    from tests.packet_store import PERIOD
    db = history_store["db"]
    if relative:
        monkeypatch.chdir(Path(db.split(":///", 1)[1]).parent)
        db = "sqlite:///store.db"
    catalog = load_catalog(Path(history_store["catalog"]))
    url = absolute_url(resolve_url(db))  # what the build puts in its kernels' environment
    pruns = period_runs(open_engine(db, create=False), parse_period(start=PERIOD[0], end=PERIOD[1]))
    handed = handed_latest_findings(open_engine(url, create=False), catalog, pruns)
    monkeypatch.setenv("AUDITBOOK_DB", url)
    monkeypatch.setattr(page_helpers, "_ENGINES", {})
    kernel = page_helpers.engine(None)  # as the control notebook opens its store
    runs = {latest_run_for(catalog.checks_for(c.id), pruns) for c in catalog.controls if catalog.checks_for(c.id)}
    with reading(kernel) as session:
        expected = {("findings_at_run", shared_reads.store_key(session), run): findings.at_run(session, run)
                    for run in runs}
    assert handed == expected and any(expected.values())


@pytest.mark.parametrize("url", ["sqlite:///store.db", "sqlite+pysqlite:///store.db", "sqlite:///file:store.db?uri=true",
                                 "sqlite:///sub/../store.db", "sqlite:///file:st%20ore.db?uri=true"])
def test_a_relative_sqlite_store_is_the_same_store_from_any_folder(tmp_path, monkeypatch, url):
    """The build passes its kernels (which run in the packet's folder) an absolute URL: for every SQLite
    driver and the file: URI form. A relative one opened there would be another, new and empty store,
    and the packet would be signed with empty pages (the attack pass's finding)."""
    from auditbook.store import settings
    from auditbook.store.db import open_engine
    from auditbook.store.session import reading, writing
    from auditbook.store.sqlite_urls import absolute_url, sqlite_file
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    with writing(open_engine(url)) as session:
        settings.write(session, "probe", {"here": True})
    made = sqlite_file(url)
    absolute = absolute_url(url)
    assert sqlite_file(absolute) == (tmp_path / made).resolve() and sqlite_file(absolute).is_file()
    monkeypatch.chdir(tmp_path / "sub")  # as a kernel in another folder
    with reading(open_engine(absolute, create=False)) as session:
        assert settings.read(session, "probe") == {"here": True}
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == []  # no stray store made there


def test_the_file_names_the_store_by_a_hash_never_its_password(handoff):
    secret_key = ("findings_at_run", "postgresql+psycopg://audit:S3cretPW@db.internal:5432/store", 7)
    handoff.fill(lambda: {secret_key: [{"check": "c1"}]})
    assert b"S3cretPW" not in handoff.path.read_bytes() and b"db.internal" not in handoff.path.read_bytes()
    assert handed_reads.handed(secret_key) == (True, [{"check": "c1"}])


@pytest.mark.parametrize("target", ["/dev/zero", "folder"], ids=["a device", "a folder"])
def test_only_a_regular_file_is_read(tmp_path, monkeypatch, target):
    path = tmp_path / "folder" if target == "folder" else target
    if target == "folder":
        path.mkdir()
    monkeypatch.setenv(handed_reads.ENV, str(path))
    monkeypatch.setattr(handed_reads, "_LOADED", None)
    assert handed_reads.handed(KEY) == (False, None)
