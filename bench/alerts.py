"""Benchmark: the alerts page with 10,000 alerts in the store (issue 13 §1: it must render in ≤ 1 s).
Fills a store with alerts of five rules and five severities over 20 accounts and 4 regions across 90
days (a fifth triaged, a tenth assigned, some suppressed, most resolved), through the core
(monitor.alerts.fire, monitor.triage, monitor.suppressions), then renders the alerts page with
Streamlit's AppTest as an analyst — the default view, a filtered view, the overdue filter and every
alert newest first — with the data caches empty and warm, and reads the last page of every alert
(OFFSET deep in the list) through the query layer.

    .venv/bin/python bench/alerts.py [--alerts 10000] [--db sqlite:///var/bench/alerts.db] [--reuse]

It prints each render's median time; every one must be ≤ 1 s.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "app"))

from auditbook.auth import Actor  # noqa: E402
from auditbook.monitor import alert_views, alerts, suppressions, triage  # noqa: E402
from auditbook.store.db import open_engine  # noqa: E402
from auditbook.store.session import writing  # noqa: E402

RULES = ("RootAccountUsage", "ConsoleLoginWithoutMFA", "UnauthorizedDataAccess", "SecurityGroupOpened",
         "CheckRegressed")
SEVERITIES = ("critical", "high", "medium", "low", "warning")
ANALYST = Actor("bench analyst", "analyst")
VIEWS = {  # name -> URL query parameters
    "default (firing and acknowledged, severity then age)": {},
    "every state, one severity and account": {"state": ["firing", "acknowledged", "resolved"],
                                              "severity": ["high"], "account": ["100000000003"]},
    "overdue": {"triage": "overdue"},
    "every state, newest first": {"state": ["firing", "acknowledged", "resolved", "pending"],
                                  "sort": "newest first"},
}


def fill(engine, count: int, seed: int = 13) -> dict:
    rng = random.Random(seed)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=90)
    ids = []
    with writing(engine) as session:
        for n in range(count):
            labels = {"account": f"1000000000{rng.randrange(20):02d}", "region": rng.choice(
                ("us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2")), "principal": f"user/u{n}"}
            made = alerts.fire(session, rule=RULES[n % len(RULES)], labels=labels, severity=rng.choice(SEVERITIES),
                               soc2_control="CC7.2", summary=f"bench alert {n}",
                               at=start + dt.timedelta(seconds=n * 90 * 86400 // count))
            ids.append(made["id"])
    open_ids = set(rng.sample(ids, count // 5))
    resolved = [i for i in ids if i not in open_ids]
    for chunk in range(0, len(resolved), triage.MAX_SELECTION):  # the rest are resolved, by an analyst
        versions = triage.current_versions(engine, resolved[chunk:chunk + triage.MAX_SELECTION])
        triage.apply(engine, ANALYST, versions, triage.Change(resolve=True))
    for chunk in range(0, count // 5, triage.MAX_SELECTION):
        picked = ids[chunk:chunk + triage.MAX_SELECTION]
        versions = triage.current_versions(engine, picked)
        triage.apply(engine, ANALYST, versions, triage.Change(decision=rng.choice(triage.DECISIONS[1:]),
                                                              reason="bench", assignee=f"analyst{chunk % 7}"))
    for account in range(3):
        suppressions.suppress(engine, ANALYST, rule=RULES[account], labels={"account": f"10000000000{account}"},
                              until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7), reason="bench")
    return {"alerts": count, "open": len(open_ids)}


def _render(db: str, engine, params: dict):
    import ui
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app" / "views" / "alerts.py"), default_timeout=120)
    at.session_state["ab_ctx"] = ui.Context(ANALYST, "oidc", db, engine, None)
    for k, v in params.items():
        at.query_params[k] = v
    t0 = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - t0
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Alerts"
    return seconds


def render(db: str, repeat: int = 5) -> dict:
    import streamlit as st
    engine = open_engine(db, create=False)
    out = {"first render in a fresh process (imports included)": _render(db, engine, {})}
    for name, params in VIEWS.items():
        cold, warm = [], []
        for _ in range(repeat):
            st.cache_data.clear()
            cold.append(_render(db, engine, params))
            warm.append(_render(db, engine, params))
        out[f"{name}, caches empty (median)"] = statistics.median(cold)
        out[f"{name}, cached (median)"] = statistics.median(warm)
    query, order = alert_views.parse_filters({"state": list(alerts.STATES)}, engine)
    last = alert_views.page(engine, query, order, 1, 50)["pages"]
    t0 = time.perf_counter()
    alert_views.page(engine, query, order, last, 50)
    out[f"query layer: last page ({last}) of every alert (one read)"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=10000)
    ap.add_argument("--db", default="sqlite:///var/bench/alerts.db")
    ap.add_argument("--reuse", action="store_true", help="render only, on an existing store")
    args = ap.parse_args()
    Path("var/bench").mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        if args.db.startswith("sqlite:///"):
            Path(args.db[len("sqlite:///"):]).unlink(missing_ok=True)
        t0 = time.perf_counter()
        print(f"filled {fill(open_engine(args.db), args.alerts)} in {time.perf_counter() - t0:.0f} s", flush=True)
    worst = 0.0
    for name, seconds in render(args.db).items():
        print(f"{name}: {seconds:.2f} s")
        if "median)" in name:
            worst = max(worst, seconds)
    print(f"slowest median render: {worst:.2f} s ({'within' if worst <= 1.0 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
