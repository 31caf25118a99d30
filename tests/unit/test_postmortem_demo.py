"""The demo's own run of today is SIMULATED like its quarter: the label is in the run's parameters,
the history services report it, and the control room shows it (under in-process moto)."""
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).resolve().parents[2] / "app" / "control_room.py")


@pytest.fixture(scope="module")
def demo_today(tmp_path_factory):
    from moto import mock_aws

    from tests.conftest import FAKE_ENV
    old = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        with mock_aws():
            import boto3

            from auditbook.demo.estate import build
            from auditbook.demo.run import scan_today
            build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
            db = f"sqlite:///{tmp_path_factory.mktemp('demo-today')}/demo.db"
            yield db, scan_today(db)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_demo_scan_of_today_is_labelled_simulated(demo_today):
    """It was stored as an ordinary run: the control room showed the demo's data of today unlabelled."""
    from auditbook.demo.run import TODAY_LABEL
    from auditbook.history.findings import resolve_run, run_table
    from auditbook.history.posture import latest_run
    from auditbook.store.db import open_engine
    db, result = demo_today
    engine = open_engine(db)
    assert resolve_run(engine, str(result.run_id)).parameters["simulated"] == TODAY_LABEL
    assert latest_run(engine)["id"] == result.run_id and latest_run(engine)["simulated"] is True
    assert [r["simulated"] for r in run_table(engine)] == [True]


def test_the_control_room_says_simulated_for_the_demo_run(demo_today, monkeypatch):
    db, _ = demo_today
    monkeypatch.setenv("AUDITBOOK_DB", db)
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "viewer")
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(e.value for e in [*at.caption, *at.markdown, *at.warning, *at.info, *at.text])
    assert "SIMULATED" in shown
