"""The catalog through the CLI as a process: a bad catalog is one line on stderr, exit 2, nothing
written; the bundled one validates (the loader's cases are in tests/unit/test_catalog.py)."""
import subprocess
import sys

from tests.catalog_edits import check_of, write_catalog


def test_cli_validate_bad_catalog_exit_2_no_traceback(tmp_path):
    path = write_catalog(tmp_path, lambda r: check_of(r, "s3-versioning").update(expect="versioning_status ==="))
    db = tmp_path / "never.db"
    proc = subprocess.run([sys.executable, "-m", "auditbook.cli.main", "scan", "--catalog", str(path),
                           "--db", f"sqlite:///{db}"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "check s3-versioning: field expect" in proc.stderr
    assert not db.exists()  # validated before anything was written


def test_cli_validate_ok():
    proc = subprocess.run([sys.executable, "-m", "auditbook.cli.main", "validate"], capture_output=True, text=True)
    assert proc.returncode == 0 and "61 criteria" in proc.stdout
