"""`auditbook lab` hands a PostgreSQL store to its kernels read-only (issue 13 §7): on a real server,
the read-only URL reads, and every write is refused by PostgreSQL itself."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from auditbook.errors import UserError
from auditbook.store.db import open_engine
from auditbook.web.lab import read_only_url
from tests.pgserver import PostgresServer


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_a_read_only_postgresql_store_reads_but_refuses_writes(pg):
    url = pg.database()
    open_engine(url).dispose()  # the schema, made by a writer
    engine = open_engine(read_only_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == "on"
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
    with pytest.raises(DBAPIError, match="read-only transaction"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM runs"))
    with pytest.raises(UserError, match="cannot write"):
        open_engine(read_only_url(url), writable=True)
    engine.dispose()
