"""The end of an `auditbook` process (cli/main.py at_exit): every store it opened is closed — a SQLite
store's write-ahead log is folded back into the database file, so the file alone (copied, backed up)
holds what the command wrote — even though the interpreter's own search for garbage cycles is skipped
on the way out (issue 16 §6: 0.6-0.8 s of a small scan)."""
import shutil

from auditbook.store.db import open_engine
from tests.conftest import cli


def test_a_command_leaves_its_writes_in_the_store_file_alone(tmp_path):
    store = tmp_path / "store.db"
    open_engine(f"sqlite:///{store}").dispose()
    done = cli("scope", "exclude", "--region", "eu-west-1", "--reason", "left-in-the-file", "--db", f"sqlite:///{store}")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "store.db-wal").exists() and not (tmp_path / "store.db-shm").exists()
    alone = tmp_path / "copy" / "store.db"
    alone.parent.mkdir()
    shutil.copyfile(store, alone)  # the database file without any -wal beside it
    shown = cli("scope", "show", "--db", f"sqlite:///{alone}")
    assert shown.returncode == 0, shown.stderr
    assert "left-in-the-file" in shown.stdout
