"""The analyst's notebooks executed with papermill on the packet tests' store (tests/packet_store.py),
the way `auditbook lab` hands it to their kernels: the store URL in $AUDITBOOK_DB, read-only, and
nothing in the notebook's parameters (issue 13 §7). packet_index.ipynb is executed by every packet
build (tests/integration/test_packet.py)."""
import json

import pytest
from sqlalchemy import text

from auditbook.report.packet.build import NOTEBOOKS
from auditbook.web.lab import read_only_url


@pytest.fixture
def lab_env(history_store, monkeypatch):
    """The kernel's environment as `auditbook lab` sets it: papermill's kernels inherit ours."""
    monkeypatch.setenv("AUDITBOOK_DB", read_only_url(history_store["db"]))
    monkeypatch.setenv("AUDITBOOK_CATALOG", str(history_store["catalog"]))
    return history_store


def _outputs(nb) -> str:
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_explore_runs_on_a_read_only_store_from_the_environment(lab_env, tmp_path):
    import papermill as pm
    nb = pm.execute_notebook(str(NOTEBOOKS / "explore.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                             parameters={"status": "FAIL"}, progress_bar=False)
    out = _outputs(nb)
    assert lab_env["db"] not in out  # the URL is never written into the executed notebook either
    assert "Criteria failing per category, run by run" in out  # posture and its trend
    assert "application/vnd.plotly.v1+json" in out
    assert "Changes, with the CloudTrail write events behind them" in out  # a resource's timeline
    assert "Per rule: alerts, triaged" in out  # alert triage statistics
    assert "open-data bucket was public" in out  # incidents over time
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))
    assert "<td>True</td>" in html.split("Evidence of")[-1]  # the finding's evidence re-hashed and matching
    assert "<td>False</td>" not in html.split("Evidence of")[-1]


def test_control_notebook_runs_on_a_read_only_store(lab_env, tmp_path):
    import papermill as pm
    nb = pm.execute_notebook(str(NOTEBOOKS / "control.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                             parameters={"criterion": "CC6.6", "period_start": "2026-07-01",
                                         "period_end": "2026-07-06"}, progress_bar=False)
    assert "CC6.6" in _outputs(nb) and "Traceback" not in _outputs(nb)


def test_a_kernel_cannot_write_to_the_read_only_store(lab_env):
    from sqlalchemy.exc import OperationalError

    from auditbook.store.db import open_engine
    engine = open_engine(read_only_url(lab_env["db"]))
    with pytest.raises(OperationalError, match="readonly"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE incidents SET title = 'changed'"))
