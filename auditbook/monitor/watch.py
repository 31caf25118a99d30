"""`auditbook watch`: one cycle reads new CloudTrail log files from the trail buckets, evaluates the
event rules on them and the posture rules on the latest run, resolves what has gone quiet, escalates
incident SLA breaches and alerts past their triage target, and notifies. Run it on a loop
(`--interval`) for a service, or once (`--once`) from cron: `prepare()` checks every input before
the first cycle, `run_cycle()` runs one."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from auditbook.catalog.model import Catalog, load_catalog
from auditbook.collect.clients import aws_client
from auditbook.monitor.app_audit import ingest as ingest_app_audit
from auditbook.monitor.app_audit_config import AppAuditConfig, load_config
from auditbook.monitor.cloudtrail import (
    ingest_bucket,
    load_windows,
    max_inflated,
    resolve_quiet,
)
from auditbook.monitor.cloudtrail_lookup import ingest_lookup
from auditbook.monitor.incidents import escalate_breaches
from auditbook.monitor.notify import dispatch, load_channels
from auditbook.monitor.parse_pool import parse_pool
from auditbook.monitor.posture_rules import evaluate_posture
from auditbook.monitor.reminders import daily_reminders
from auditbook.monitor.rules import load_rules
from auditbook.monitor.triage import escalate_triage_breaches


@dataclass
class CycleResult:
    ingest: dict = field(default_factory=dict)  # bucket -> IngestResult
    posture_fired: int = 0
    posture_gaps: list = field(default_factory=list)  # (rule, what, why it could not be evaluated)
    resolved: int = 0
    notifications: dict = field(default_factory=dict)
    escalated: list = field(default_factory=list)
    triage_escalated: list = field(default_factory=list)  # alerts past their triage target, escalated
    reminders: Optional[object] = None  # evidence reminders sent on the first cycle of a day
    seconds: float = 0.0

    @property
    def unread_sources(self) -> list[tuple[str, str]]:
        """(source, why) of each bucket that could not be listed and each LookupEvents call that
        failed: nothing of it was read this cycle (`watch --once` exits 1)."""
        return [(name, r.source_error) for name, r in self.ingest.items() if r.source_error]


def _ingest_buckets(engine, s3_for, buckets, rules, rules_path, prefix, windows, parse_workers, cap, now) -> dict:
    """Each bucket's new log files (parsed in `parse_workers` processes when > 0): bucket -> IngestResult."""
    out = {}
    pool = parse_pool(parse_workers) if parse_workers > 0 else None
    try:
        for bucket in buckets:
            out[bucket] = ingest_bucket(engine, s3_for(bucket), bucket, rules, prefix, windows, pool=pool,
                                        rules_path=str(rules_path) if rules_path else None, cap=cap,
                                        window=4 * parse_workers, now=now)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


def cycle(engine, s3_for: Callable[[str], object], buckets: list[str], rules_path: Optional[Path] = None,
          prefix: str = "", now: Optional[dt.datetime] = None, parse_workers: int = 0,
          channels: Optional[list] = None, lookup_clients: Optional[list] = None,
          catalog: Optional[Catalog] = None, app_audit: Optional[AppAuditConfig] = None) -> CycleResult:
    """`parse_workers` > 0: log files are parsed in that many processes (for large backlogs). A bucket
    that cannot be listed is an evidence gap (CycleResult.unread_sources); the others are read.
    `catalog`: whose manual evidence the day's reminders are about (None: the bundled catalog)."""
    t0 = time.perf_counter()
    rules = load_rules(rules_path, catalog.parameters if catalog is not None else None)
    cap = max_inflated()  # a bad AUDITBOOK_CLOUDTRAIL_MAX_MB stops here, in one line
    out = CycleResult()
    now = now or dt.datetime.now(dt.timezone.utc)
    windows = load_windows(engine, rules, now)
    out.ingest = _ingest_buckets(engine, s3_for, buckets, rules, rules_path, prefix, windows, parse_workers, cap, now)
    for client in lookup_clients or []:
        out.ingest[f"lookup_events {client.meta.region_name}"] = ingest_lookup(engine, client, rules, windows, now)
    if app_audit is not None:  # the application's audit log groups (app-audit.yml): log group -> result
        out.ingest.update(ingest_app_audit(engine, app_audit, rules, now))
    out.resolved += resolve_quiet(engine, rules, now)
    fired, resolved = evaluate_posture(engine, rules, now, out.posture_gaps)
    out.posture_fired, out.resolved = fired, out.resolved + resolved
    out.escalated = escalate_breaches(engine, now)
    out.triage_escalated = escalate_triage_breaches(engine, now)
    if channels:
        out.notifications = dispatch(engine, channels)
        out.reminders = daily_reminders(engine, channels, now, catalog)
    out.seconds = time.perf_counter() - t0
    return out


@dataclass
class Watch:
    """What `auditbook watch` reads, checked: its buckets, rules, channels, LookupEvents clients and
    the catalog its evidence reminders are about."""
    buckets: list[str]
    prefix: str = ""
    rules_path: Optional[Path] = None
    channels: list = field(default_factory=list)
    lookup_clients: list = field(default_factory=list)
    s3_clients: dict = field(default_factory=dict, repr=False)
    catalog: Optional[Catalog] = field(default=None, repr=False)
    app_audit: Optional[AppAuditConfig] = field(default=None, repr=False)

    def s3_for(self, _bucket: str):
        """The S3 client (one for every bucket, made when the first is read)."""
        if "s3" not in self.s3_clients:
            self.s3_clients["s3"] = aws_client("s3")
        return self.s3_clients["s3"]


def prepare(buckets: Optional[list[str]] = None, prefix: str = "", rules_path: Optional[Path] = None,
            notify_path: Optional[Path] = None, lookup_regions: Optional[list[str]] = None,
            catalog_path: Optional[Path] = None, app_audit_path: Optional[Path] = None) -> Watch:
    """Every input of `watch`, checked before the first cycle (each problem one line, a UserError):
    the rules file, notify.yml and its secrets, AUDITBOOK_CLOUDTRAIL_MAX_MB, the LookupEvents regions,
    the catalog (loaded once; None: the bundled one)."""
    catalog = load_catalog(catalog_path)
    load_rules(rules_path, catalog.parameters)
    channels = load_channels(notify_path) if notify_path else []
    max_inflated()
    lookups = [aws_client("cloudtrail", region) for region in lookup_regions or []]
    app_audit = load_config(app_audit_path) if app_audit_path else None
    return Watch(list(buckets or []), prefix, rules_path, channels, lookups, catalog=catalog, app_audit=app_audit)


def run_cycle(engine, watch: Watch, now: Optional[dt.datetime] = None) -> CycleResult:
    """One cycle of a prepared watch."""
    return cycle(engine, watch.s3_for, watch.buckets, watch.rules_path, watch.prefix, now=now,
                 channels=watch.channels, lookup_clients=watch.lookup_clients, catalog=watch.catalog,
                 app_audit=watch.app_audit)


def watch_loop(engine, watch: Watch, *, interval: int, once: bool,
               on_cycle: Callable[[CycleResult], None], sleep: Callable[[float], None] = time.sleep) -> CycleResult:
    """`auditbook watch`: a cycle every `interval` seconds (once: a single cycle, for cron), each
    result handed to `on_cycle`. Returns the last cycle's result."""
    while True:
        result = run_cycle(engine, watch)
        on_cycle(result)
        if once:
            return result
        sleep(interval)
