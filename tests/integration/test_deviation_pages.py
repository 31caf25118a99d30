"""A criterion's page (notebooks/control.ipynb) shows the deviations an auditor expects (AUD findings 2,
9): the days without a scan as a deviation of every criterion with checks, each range with its recorded
reason, under a heading that says "(up to today)" only while the period runs; CC7.3 lists its alerts
not triaged in time and the suppressed alerts with their reasons."""
import datetime as dt
import shutil

import pytest

from auditbook.auth import Actor
from tests.packet_store import EVIL, PERIOD

REASON = f"scanner role rotated {EVIL}"


def page(db: str, catalog, criterion: str, today: str, tmp_path) -> str:
    import papermill as pm

    from auditbook.report.packet.build import NOTEBOOKS
    nb = pm.execute_notebook(str(NOTEBOOKS / "control.ipynb"), str(tmp_path / f"{criterion}-{today}.ipynb"),
                             parameters={"db": db, "catalog": catalog, "criterion": criterion,
                                         "period_start": PERIOD[0], "period_end": PERIOD[1], "today": today},
                             cwd=str(tmp_path), progress_bar=False)
    return "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def explained(history_store, tmp_path_factory):
    """A copy of the packet store with the reason for its day without a scan (5 July) recorded."""
    from auditbook.history.gaps import explain_gap
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("explained")
    shutil.copy(history_store["root"] / "store.db", root / "store.db")
    db = f"sqlite:///{root}/store.db"
    explain_gap(open_engine(db), Actor("root", "admin"), "2026-07-05", "2026-07-05", REASON,
                today=dt.date(2026, 7, 6))
    return {"db": db, "catalog": history_store["catalog"]}


def test_a_closed_periods_page_lists_the_gap_as_a_deviation_with_its_reason(explained, tmp_path):
    html = page(explained["db"], explained["catalog"], "CC6.6", "2026-12-01", tmp_path)
    assert "Days of the period on which no scan ran" in html and "(up to today)" not in html
    assert "scanner role rotated &lt;img src=x onerror=alert(1)&gt;" in html and EVIL not in html
    assert "monitoring gap" in html and "no scan on 1 day(s); reason: scanner role rotated" in html


def test_a_running_periods_page_says_up_to_today(explained, tmp_path):
    html = page(explained["db"], explained["catalog"], "CC6.6", "2026-07-06", tmp_path)
    assert "Days of the period (up to today) on which no scan ran" in html


def test_the_cc73_page_lists_alerts_not_triaged_and_the_suppressed(explained, tmp_path):
    from auditbook.monitor.alerts import fire
    from auditbook.monitor.suppressions import suppress
    from auditbook.store import alerts as stored_alerts
    from auditbook.store.db import open_engine
    from auditbook.store.session import writing
    engine = open_engine(explained["db"])
    fired = dt.datetime(2026, 7, 2, 10, tzinfo=dt.timezone.utc)
    with writing(engine) as session:
        for rule in ("Missed", "Noisy"):
            made = fire(session, rule=rule, labels={"probe": rule}, severity="high", soc2_control="CC7.3",
                        summary=f"{rule} {EVIL}", at=fired)
            stored_alerts.change(session, made["id"], {"fired_at": fired}, bump=False)
    suppress(engine, Actor("root", "admin"), rule="Noisy", labels={"probe": "Noisy"},
             until=dt.datetime(2026, 7, 9, tzinfo=dt.timezone.utc), reason=f"known probe {EVIL}",
             at=fired + dt.timedelta(minutes=5))
    html = page(explained["db"], None, "CC7.3", "2026-12-01", tmp_path)  # the bundled catalog has CC7.3
    assert "alert triage" in html and "Missed" in html and "not triaged" in html
    assert "known probe &lt;img src=x onerror=alert(1)&gt;" in html and EVIL not in html
    deviations_part = html.split("silenced by a suppression")[0]
    assert "Missed" in deviations_part and "Noisy" not in deviations_part  # suppressed: not a deviation
