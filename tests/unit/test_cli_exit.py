"""cli/main.py at_exit, run as the process ends: the stores are closed, then what is left is frozen so
the interpreter does not search it for garbage cycles (tests/integration/test_cli_exit.py runs a real
command)."""
import gc

from auditbook.cli.main import at_exit
from auditbook.store.db import open_engine


def test_at_exit_closes_every_store_and_freezes_the_rest(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    with engine.connect():
        pass
    assert engine.pool.checkedin() == 1 and (tmp_path / "s.db-wal").exists()
    try:
        at_exit()
        assert engine.pool.checkedin() == 0  # its connections closed
        assert not (tmp_path / "s.db-wal").exists()  # the last connection folded the log into the file
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
