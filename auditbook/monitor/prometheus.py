"""Prometheus exporter: posture gauges, the unauthorized-access-attempts counter and each KMS key's
last rotation time, read from the store at every scrape (prometheus-client custom collector)."""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.history.status import statuses_at_run
from auditbook.monitor.cloudtrail import parse_time
from auditbook.store import alerts as stored_alerts
from auditbook.store import cloudtrail as stored_trail
from auditbook.store import resources, runs
from auditbook.store.session import reading

DENIED_RULE = "UnauthorizedDataAccess"
KEY_TYPE = "aws.kms.key"


def _posture(session, catalog: Catalog):
    """The latest run's gauges: criteria by category and status, findings by status, its start, and
    each customer-managed key's last rotation."""
    category = {c.id: c.category for c in catalog.controls}
    criteria = GaugeMetricFamily("auditbook_criteria", "Criteria by category and status at the latest run",
                                 labels=["category", "status"])
    findings = GaugeMetricFamily("auditbook_findings", "Findings by status at the latest run", labels=["status"])
    last = GaugeMetricFamily("auditbook_last_scan_timestamp_seconds", "Start of the latest run")
    rotation = GaugeMetricFamily("auditbook_kms_key_last_rotation_timestamp_seconds",
                                 "Last rotation (or creation) of each customer-managed KMS key",
                                 labels=["account", "region", "key"])
    run = runs.latest(session)
    if run is not None:
        last.add_metric([], run.started_at.timestamp())
        counts = Counter((category.get(criterion, "unknown"), row["status"])
                         for criterion, row in statuses_at_run(session, catalog, run.id).items())
        for (cat, status), n in sorted(counts.items()):
            criteria.add_metric([cat, status], n)
        for status, n in sorted(run.counts.items()):
            findings.add_metric([status], n)
        for key in resources.records_at(session, run.id, KEY_TYPE):
            data = key["data"]
            when = data.get("last_rotated") or data.get("CreationDate")
            if data.get("customer_symmetric") and when:
                rotation.add_metric([key["account"], key["region"], key["resource_id"]], parse_time(str(when)).timestamp())
    return criteria, findings, last, rotation


class StoreCollector:
    def __init__(self, engine, catalog: Catalog):
        self.engine, self.catalog = engine, catalog

    def collect(self):
        with reading(self.engine) as session:
            posture = _posture(session, self.catalog)
            denied = CounterMetricFamily("auditbook_unauthorized_access_attempts",
                                         "Denied API calls (AccessDenied / UnauthorizedOperation) read from CloudTrail",
                                         labels=["principal"])
            for labels_key, n in stored_trail.match_counts(session, DENIED_RULE):
                denied.add_metric([labels_key.split("principal=", 1)[-1]], n)
            alerts = GaugeMetricFamily("auditbook_alerts", "Alerts by rule, state and severity",
                                       labels=["rule", "state", "severity"])
            for rule, state, severity, n in stored_alerts.counts(session):
                alerts.add_metric([rule, state, severity], n)
        yield from (*posture, denied, alerts)


def registry(engine, catalog: Catalog) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(engine, catalog))
    return reg


def serve(engine, catalog: Catalog, host: str, port: int, on_ready: Callable[[str], None],
          sleep: Callable[[float], None] = time.sleep) -> None:
    """`auditbook exporter`: /metrics on host:port until interrupted (Ctrl-C returns)."""
    from prometheus_client import start_http_server
    try:
        start_http_server(port, addr=host, registry=registry(engine, catalog))
    except OSError as exc:  # address in use, not an address of this host
        raise UserError(f"--host/--port: cannot listen on {shown(host)}:{port}: {exc.strerror or exc}") from None
    on_ready(f"http://{host}:{port}/metrics")
    try:
        while True:
            sleep(3600)
    except KeyboardInterrupt:
        return
