"""`auditbook watch`: one cycle reads new CloudTrail log files from the trail buckets, evaluates the
event rules on them and the posture rules on the latest run, and resolves what has gone quiet. Run it
on a loop (`--interval`) for a service, or once (`--once`) from cron."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.monitor.alerts import OPEN_STATES, dedup_key
from auditbook.monitor.cloudtrail import ingest_bucket, load_windows, max_inflated, resolve_quiet
from auditbook.errors import one_line
from auditbook.monitor.rules import Rule, load_rules
from auditbook.store.db import utc
from auditbook.store.models import Alert, Run
from auditbook.store.query import records_at


@dataclass
class CycleResult:
    ingest: dict = field(default_factory=dict)  # bucket -> IngestResult
    posture_fired: int = 0
    posture_gaps: list = field(default_factory=list)  # (rule, resource, why its condition could not be evaluated)
    resolved: int = 0
    notifications: dict = field(default_factory=dict)
    escalated: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def unread_sources(self) -> list[tuple[str, str]]:
        """(source, why) of each bucket that could not be listed and each LookupEvents call that
        failed: nothing of it was read this cycle (`watch --once` exits 1)."""
        return [(name, r.source_error) for name, r in self.ingest.items() if r.source_error]


def _latest_run(session: Session) -> Optional[int]:
    return session.scalar(select(Run.id).order_by(Run.id.desc()).limit(1))


def evaluate_posture(engine, rules: list[Rule], now: Optional[dt.datetime] = None,
                     gaps: Optional[list] = None) -> tuple[int, int]:
    """Posture rules over the latest run's resources: (fired, resolved). A resource the condition
    cannot be evaluated on (a value of the wrong type) is not a match, and is added to `gaps`
    as (rule, resource, reason)."""
    from jmespath.exceptions import JMESPathError

    from auditbook.catalog.expressions import AuditFunctions, compile_expression, options, truthy
    now = now or dt.datetime.now(dt.timezone.utc)
    fired = resolved = 0
    with Session(engine) as session, session.begin():
        run_id = _latest_run(session)
        if run_id is None:
            return 0, 0
        for rule in (r for r in rules if r.kind == "posture"):
            parsed = compile_expression(rule.condition)
            opts = options(AuditFunctions(now, lambda t, f: []))
            matching = {}
            for res in records_at(session, run_id, rule.resource_type):
                try:
                    hit = truthy(parsed.search(res["data"], options=opts))
                except (JMESPathError, ValueError, TypeError) as exc:
                    hit = False
                    if gaps is not None:
                        gaps.append((rule.name, res["arn"] or res["resource_id"], one_line(f"{type(exc).__name__}: {exc}")[:300]))
                if hit:
                    labels = {"resource_type": rule.resource_type, "account": res["account"],
                              "region": res["region"], "resource": res["arn"] or res["resource_id"]}
                    matching[tuple(sorted(labels.items()))] = labels
            for labels in matching.values():
                fired += _raise(session, rule, labels, now)
            open_alerts = session.scalars(select(Alert).where(Alert.rule == rule.name,
                                                              Alert.state.in_(OPEN_STATES + ("pending",)))).all()
            for alert in open_alerts:
                if tuple(sorted((alert.labels or {}).items())) not in matching:
                    alert.state, alert.resolved_at, alert.version = "resolved", now, alert.version + 1
                    resolved += 1
    return fired, resolved


def _raise(session: Session, rule: Rule, labels: dict, now: dt.datetime) -> int:
    """A posture condition holds for a resource: with `for`, the alert is pending until it has held
    that long, then fires. Returns 1 when an alert starts firing."""
    key = dedup_key(rule.name, labels)
    alert = session.scalars(select(Alert).where(Alert.dedup_key == key,
                                                Alert.state.in_(OPEN_STATES + ("pending",)))).first()
    if alert is None:
        state = "pending" if rule.for_seconds else "firing"
        session.add(Alert(rule=rule.name, dedup_key=key, state=state, severity=rule.severity,
                          soc2_control=rule.soc2_control, labels=labels, summary=rule.summary, first_seen=now,
                          last_seen=now, count=1, evidence=[], version=1))
        return int(state == "firing")
    alert.last_seen, alert.count, alert.version = now, alert.count + 1, alert.version + 1
    if alert.state == "pending" and (now - utc(alert.first_seen)).total_seconds() >= rule.for_seconds:
        alert.state = "firing"
        return 1
    return 0


def cycle(engine, s3_for: Callable[[str], object], buckets: list[str], rules_path: Optional[Path] = None,
          prefix: str = "", now: Optional[dt.datetime] = None, parse_workers: int = 0,
          channels: Optional[list] = None, lookup_clients: Optional[list] = None) -> CycleResult:
    """`parse_workers` > 0: log files are parsed in that many processes (for large backlogs). A bucket
    that cannot be listed is an evidence gap (CycleResult.unread_sources); the others are read."""
    t0 = time.perf_counter()
    rules = load_rules(rules_path)
    cap = max_inflated()  # a bad AUDITBOOK_CLOUDTRAIL_MAX_MB stops here, in one line
    out = CycleResult()
    now = now or dt.datetime.now(dt.timezone.utc)
    windows = load_windows(engine, rules, now)
    pool = None
    if parse_workers > 0:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        pool = ProcessPoolExecutor(parse_workers, mp_context=get_context("spawn"))
    try:
        for bucket in buckets:
            out.ingest[bucket] = ingest_bucket(engine, s3_for(bucket), bucket, rules, prefix, windows, pool=pool,
                                               rules_path=str(rules_path) if rules_path else None, cap=cap,
                                               window=4 * parse_workers, now=now)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    from auditbook.monitor.cloudtrail import ingest_lookup
    for client in lookup_clients or []:
        out.ingest[f"lookup_events {client.meta.region_name}"] = ingest_lookup(engine, client, rules, windows, now)
    out.resolved += resolve_quiet(engine, rules, now)
    fired, resolved = evaluate_posture(engine, rules, now, out.posture_gaps)
    out.posture_fired, out.resolved = fired, out.resolved + resolved
    from auditbook.monitor.incidents import escalate_breaches
    out.escalated = escalate_breaches(engine, now)
    if channels:
        from auditbook.monitor.notify import dispatch
        out.notifications = dispatch(engine, channels)
    out.seconds = time.perf_counter() - t0
    return out
