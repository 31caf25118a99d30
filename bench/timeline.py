"""Benchmark: the control room's resource timeline over a year of daily runs of the 10,000-resource bench
estate (the store bench/posture.py builds), for the worst resource there is: one security group whose
record changed every day of the year (365 states, a change between every two runs), a CloudTrail write
event on it each day among ~100 write events a day on other resources, and the log files of its account
and region read every five minutes all year (105,000 coverage rows) but for one day (a gap).

The year store is copied first (the history store is left as it is), the worst resource is written into
the copy through the store's own paths (the write events and coverage: auditbook.store.changes; the
states: plain SQL, as a year of save_run would leave them), then the page is rendered with Streamlit's
AppTest — cold (data caches empty) and warm — and must take at most 1 s.

    .venv/bin/python bench/posture.py              # once: sqlite:///var/bench/history.db (~20 min)
    .venv/bin/python bench/timeline.py [--history var/bench/history.db] [--db var/bench/timeline.db]
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import time
import zlib
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditbook.store import changes as stored_changes  # noqa: E402
from auditbook.store.db import open_engine  # noqa: E402
from auditbook.store.session import writing  # noqa: E402

TARGET_S = 1.0
OTHER_WRITES_A_DAY = 100


def _runs(engine) -> list[tuple[int, dt.datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, started_at FROM runs ORDER BY id")).all()
    return [(i, dt.datetime.fromisoformat(str(at)).replace(tzinfo=dt.timezone.utc)) for i, at in rows]


def _victim(engine) -> dict:
    """The security group with the most stored states (the bench estate's busiest resource)."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT arn, account, region, scope_region, resource_id, name, evidence FROM resource_states "
            "WHERE resource_type = 'aws.ec2.security_group' GROUP BY arn ORDER BY count(*) DESC, arn LIMIT 1")).one()
    return dict(row._mapping)


def _record(victim: dict, day: int) -> dict:
    port = 22 if day % 2 else 443
    return {"GroupId": victim["resource_id"], "GroupName": victim["name"] or "bench", "bench_revision": day,
            "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                               "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}], "Tags": [{"Key": "owner", "Value": f"team-{day % 7}"}]}


def daily_states(engine, victim: dict, runs: list) -> None:
    """Replace the victim's states by one per run: its record changed every day."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM resource_states WHERE arn = :arn AND resource_type = 'aws.ec2.security_group'"),
                     {"arn": victim["arn"]})
        for n, (run_id, _at) in enumerate(runs):
            body = json.dumps(_record(victim, n), sort_keys=True, separators=(",", ":")).encode()
            sha = hashlib.sha256(body).hexdigest()
            conn.execute(text("INSERT OR IGNORE INTO records (sha256, body) VALUES (:s, :b)"),
                         {"s": sha, "b": zlib.compress(body)})
            closed = runs[n + 1][0] if n + 1 < len(runs) else None
            conn.execute(text(
                "INSERT INTO resource_states (resource_type, account, region, scope_region, resource_id, arn, name, "
                "record_sha256, evidence, first_run, last_run, closed_run) VALUES ('aws.ec2.security_group', :account, "
                ":region, :scope_region, :resource_id, :arn, :name, :sha, :evidence, :run, :run, :closed)"),
                dict(victim, sha=sha, run=run_id, closed=closed))


def _change(at: dt.datetime, victim: dict, arn: str, n: int, who: str) -> dict:
    return {"event_id": f"bench-{arn[-20:]}-{n}-{at:%Y%m%d%H%M%S}", "at": at, "account": victim["account"],
            "region": victim["region"], "event_source": "ec2.amazonaws.com",
            "event_name": "AuthorizeSecurityGroupIngress" if n % 2 else "RevokeSecurityGroupIngress",
            "principal": f"arn:aws:sts::{victim['account']}:assumed-role/ops/{who}", "principal_type": "AssumedRole",
            "session_name": who, "source_ip": "203.0.113.9", "user_agent": "aws-cli/2.15.0", "error_code": "",
            "tags": None, "request": {"groupId": arn.rsplit("/", 1)[-1]}, "source": "bench", "simulated": False,
            "resources": [arn]}


def cloudtrail_year(engine, victim: dict, runs: list, seed: int = 5) -> dict:
    """A write event on the victim between every two runs, OTHER_WRITES_A_DAY on other security groups,
    and coverage of the victim's account and region every five minutes but for one day."""
    rng, events, cover = random.Random(seed), 0, 0
    gap_day = len(runs) // 2
    for n in range(1, len(runs)):
        begin, end = runs[n - 1][1], runs[n][1]
        rows = [_change(begin + dt.timedelta(hours=8, minutes=rng.randrange(600)), victim, victim["arn"], n,
                        f"alex-CHG-{1000 + n}")]
        rows += [_change(begin + dt.timedelta(minutes=rng.randrange(1440)), victim,
                         f"arn:aws:ec2:{victim['region']}:{victim['account']}:security-group/sg-other{rng.randrange(6000)}",
                         n * 1000 + i, "ci") for i in range(OTHER_WRITES_A_DAY)]
        files = [] if n == gap_day else [
            {"account": victim["account"], "region": victim["region"], "first_at": begin + dt.timedelta(minutes=5 * i),
             "last_at": begin + dt.timedelta(minutes=5 * i + 4, seconds=59), "source": f"bench/{n}/{i}",
             "records": 500, "unread": 0} for i in range(int((end - begin).total_seconds() // 300) + 1)]
        with writing(engine) as session:
            events += stored_changes.insert_changes(session, rows)
            stored_changes.add_coverage(session, files)
        cover += len(files)
    return {"write events": events, "coverage rows": cover}


def render(db: str, arn: str, repeat: int = 5) -> dict:
    os.environ["AUDITBOOK_DB"] = db
    os.environ["AUDITBOOK_LOCAL_ROLE"] = "viewer"
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    entry = str(ROOT / "app" / "control_room.py")

    def once() -> tuple[float, AppTest]:
        at = AppTest.from_file(entry, default_timeout=120)
        at.run()
        at.switch_page("views/resource.py")
        at.query_params["arn"] = arn
        t0 = time.perf_counter()
        at.run()
        took = time.perf_counter() - t0
        assert not at.exception, [e.value for e in at.exception]
        assert at.title[0].value == "Resource timeline", [t.value for t in at.title]
        return took, at

    first, at = once()
    shown = " ".join(t.value for t in at.text)
    assert "AuthorizeSecurityGroupIngress by" in shown or "RevokeSecurityGroupIngress by" in shown, shown[:500]
    cold, warm = [], []
    for _ in range(repeat):
        st.cache_data.clear()
        cold.append(once()[0])
        warm.append(once()[0])
    return {"first render of the page in this process": first,
            "render, data caches empty (median)": statistics.median(cold),
            "render, data cached (median)": statistics.median(warm)}


def prepare(history: Path, copy: Path) -> dict:
    if not history.exists():
        sys.exit(f"{history}: no year store; build it first with .venv/bin/python bench/posture.py")
    copy.parent.mkdir(parents=True, exist_ok=True)
    for stale in (copy, *(copy.with_name(copy.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        stale.unlink(missing_ok=True)  # an old write-ahead log beside a new copy would corrupt it
    with sqlite3.connect(f"file:{history}?mode=ro", uri=True) as source, sqlite3.connect(copy) as target:
        source.backup(target)  # a consistent copy, even of a store being written
    engine = open_engine(f"sqlite:///{copy}")
    runs, victim = _runs(engine), _victim(engine)
    t0 = time.perf_counter()
    daily_states(engine, victim, runs)
    made = cloudtrail_year(engine, victim, runs)
    made.update(runs=len(runs), states=len(runs), arn=victim["arn"], build_s=time.perf_counter() - t0)
    return made


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--history", default="var/bench/history.db", help="the year store of bench/posture.py (read only)")
    ap.add_argument("--db", default="var/bench/timeline.db", help="the copy the bench writes into")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    made = prepare(Path(args.history), Path(args.db))
    for k, v in made.items():
        print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}")
    timings = render(f"sqlite:///{args.db}", made["arn"], args.repeat)
    for k, v in timings.items():
        print(f"{k}: {v:.3f} s")
    worst = max(timings["render, data caches empty (median)"], timings["render, data cached (median)"])
    print(f"target: ≤ {TARGET_S} s per render — {'met' if worst <= TARGET_S else 'NOT MET'}")
    sys.exit(0 if worst <= TARGET_S else 1)


if __name__ == "__main__":
    main()
