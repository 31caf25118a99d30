"""A new store is created from the models and stamped at head (store/db.py create_from_models) instead
of replaying every Alembic revision; an existing store is migrated. The two must never drift: the same
tables, columns (type, nullability, default), keys, foreign keys, indexes, unique and check
constraints, and the same Alembic version — on SQLite here, on PostgreSQL in
tests/integration/test_store_schema_postgres.py."""
import pytest
from sqlalchemy import create_engine, inspect, text

from auditbook.store.db import HEAD_REVISION, current_revision, open_engine
from tests.store_schema import assert_same_schema


def test_created_store_has_the_migrated_schema_sqlite(tmp_path):
    assert_same_schema(f"sqlite:///{tmp_path}/created.db", f"sqlite:///{tmp_path}/migrated.db")


def test_new_store_is_created_without_alembic(tmp_path, monkeypatch):
    """The fixed cost of a first scan: a new store never replays the migrations."""
    import auditbook.store.db as db

    def refuse(_engine):
        raise AssertionError("a new store was migrated revision by revision")
    monkeypatch.setattr(db, "upgrade", refuse)
    engine = open_engine(f"sqlite:///{tmp_path}/new.db")
    assert current_revision(engine) == HEAD_REVISION


def test_database_with_foreign_tables_is_migrated_not_stamped(tmp_path):
    """A database holding one of our tables but no version (half a store, or someone else's) is not
    stamped as a complete store: Alembic's first revision meets the table and the error is one line."""
    from auditbook.errors import UserError
    url = f"sqlite:///{tmp_path}/half.db"
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER PRIMARY KEY)"))
    with pytest.raises(UserError, match="cannot write|cannot open"):
        open_engine(url, writable=True)
    assert current_revision(create_engine(url)) is None  # not stamped: nothing half-written


def test_database_with_unrelated_tables_gets_a_store(tmp_path):
    """Tables that are not ours do not stop a store being created beside them (as the migrations did)."""
    url = f"sqlite:///{tmp_path}/shared.db"
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)"))
    engine = open_engine(url)
    assert current_revision(engine) == HEAD_REVISION
    assert {"runs", "someone_elses"} <= set(inspect(engine).get_table_names())


def test_store_of_a_newer_release_is_refused_in_one_line(tmp_path):
    """A store at a revision this release does not know (a newer release's, restored under an older
    auditbook) is refused with one line naming the revision, and left as it was — not an Alembic
    traceback (the xfail in tests/integration/test_pg_backup_restore.py)."""
    from auditbook.errors import UserError
    url = f"sqlite:///{tmp_path}/newer.db"
    open_engine(url)
    with create_engine(url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for options in ({}, {"create": False}, {"writable": True}):
        with pytest.raises(UserError, match=r"schema revision '?9999'?, which this release does not know") as caught:
            open_engine(url, **options)
        assert "\n" not in str(caught.value)
    assert current_revision(create_engine(url)) == "9999"


def test_creation_is_all_or_nothing(tmp_path, monkeypatch):
    """A new store interrupted half-way (here: stamping fails) leaves no table behind, so the next
    command creates it afresh instead of finding half a store it cannot migrate."""
    import auditbook.store.db as db
    url = f"sqlite:///{tmp_path}/interrupted.db"

    class Interrupted(Exception):
        pass

    def fail(*_args, **_kwargs):
        raise Interrupted()
    monkeypatch.setattr(db._VERSION_TABLE, "create", fail)
    with pytest.raises(Interrupted):
        open_engine(url)
    assert inspect(create_engine(url)).get_table_names() == []
    monkeypatch.undo()
    assert current_revision(open_engine(url)) == HEAD_REVISION
