"""Manual evidence on PostgreSQL through `auditbook evidence add` as a process: free text beyond its
column is one line and nothing is written (the rules are tested in tests/unit/test_manual_evidence.py)."""
import datetime as dt
import subprocess

from auditbook.auth import Actor
from auditbook.scan import decide_evidence
from auditbook.store.db import open_engine
from tests.conftest import EXE
from tests.evidence_items import ITEM, item_state


def test_free_text_beyond_its_column_is_one_line_on_postgresql(postgres, tmp_path):
    """PostgreSQL refuses a value longer than its column (DataError, a traceback); SQLite never did."""
    url = postgres.database()
    engine = open_engine(url)
    doc = tmp_path / "minutes.txt"
    doc.write_text("minutes of the board meeting")
    base = [EXE, "evidence", "add", "CC1.2", str(doc), "--item", ITEM,
            "--effective-date", "2026-01-05", "--db", url]
    for extra, option in ((["--owner", "o" * 201], "--owner"),
                          (["--owner", "chair", "--incident", "5"], "--incident")):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.startswith(f"error: {option}") and len(proc.stderr.strip().splitlines()) == 1
    assert item_state(engine, dt.date(2026, 1, 6)).state == "missing"  # nothing written
    proc = subprocess.run(base + ["--owner", "o" * 200], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    explain = [EXE, "evidence", "explain", "1", "--db", url, "--explanation"]
    proc = subprocess.run(explain + ["e" * 2001], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --explanation: 2001 characters"), proc.stderr[-2000:]
    proc = subprocess.run(explain + ["e" * 2000], capture_output=True, text=True, timeout=60)  # uploaded late: explained
    assert proc.returncode == 0, proc.stderr[-2000:]
    decide_evidence(engine, Actor("second@x", "approver"), 1, 2, "approve", "r" * 2000)  # the reason column's size
    assert item_state(engine, dt.date(2026, 1, 6)).evidence.owner == "o" * 200
    assert item_state(engine, dt.date(2026, 1, 6)).evidence.explanation == "e" * 2000
