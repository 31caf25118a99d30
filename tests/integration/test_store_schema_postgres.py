"""A store created from the models (store/db.py create_from_models) and one migrated through every
Alembic revision have the identical schema on PostgreSQL too (tests/store_schema.py compares them)."""
from tests.store_schema import assert_same_schema


def test_created_store_has_the_migrated_schema_postgres(postgres):
    assert_same_schema(postgres.database(), postgres.database())


def test_two_first_scans_creating_one_new_store_both_succeed_postgres(postgres):
    """Two processes opening one new PostgreSQL store at the same moment (two first scans): one creates it,
    the other waits on the schema lock and finds it made — both open it, one schema, one version row."""
    import subprocess
    import sys
    import time

    from sqlalchemy import create_engine, text

    from auditbook.store.db import HEAD_REVISION
    code = ("import sys, time; from auditbook.store.db import open_engine; "
            "t = float(sys.argv[2]); time.sleep(max(0, t - time.time())); open_engine(sys.argv[1]); print('ok')")
    for _ in range(3):
        url = postgres.database()
        start = str(time.time() + 2.0)  # both past their imports, then at once
        procs = [subprocess.Popen([sys.executable, "-c", code, url, start], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [(p.returncode, out.strip()) for p, (out, _err) in zip(procs, outs)] == [(0, "ok"), (0, "ok")], outs
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD_REVISION]
        engine.dispose()
