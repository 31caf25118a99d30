"""Prometheus exporter: posture gauges, the unauthorized-access-attempts counter and each KMS key's
last rotation time, read from the store at every scrape (prometheus-client custom collector)."""
from __future__ import annotations

from collections import Counter

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditbook.catalog.model import Catalog
from auditbook.monitor.cloudtrail import parse_time
from auditbook.store.db import utc
from auditbook.store.models import Alert, CloudTrailMatch, CriterionCount, Run
from auditbook.store.query import records_at

DENIED_RULE = "UnauthorizedDataAccess"


class StoreCollector:
    def __init__(self, engine, catalog: Catalog):
        self.engine, self.catalog = engine, catalog

    def collect(self):
        category = {c.id: c.category for c in self.catalog.controls}
        with Session(self.engine) as session:
            run = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).first()
            criteria = GaugeMetricFamily("auditbook_criteria", "Criteria by category and status at the latest run",
                                         labels=["category", "status"])
            findings = GaugeMetricFamily("auditbook_findings", "Findings by status at the latest run", labels=["status"])
            last = GaugeMetricFamily("auditbook_last_scan_timestamp_seconds", "Start of the latest run")
            rotation = GaugeMetricFamily("auditbook_kms_key_last_rotation_timestamp_seconds",
                                         "Last rotation (or creation) of each customer-managed KMS key",
                                         labels=["account", "region", "key"])
            if run is not None:
                last.add_metric([], utc(run.started_at).timestamp())
                counts = Counter((category.get(c.criterion, "unknown"), c.status) for c in session.scalars(
                    select(CriterionCount).where(CriterionCount.run_id == run.id)))
                for (cat, status), n in sorted(counts.items()):
                    criteria.add_metric([cat, status], n)
                for status, n in sorted((run.counts or {}).items()):
                    findings.add_metric([status], n)
                for key in records_at(session, run.id, "aws.kms.key"):
                    data = key["data"]
                    when = data.get("last_rotated") or data.get("CreationDate")
                    if data.get("customer_symmetric") and when:
                        rotation.add_metric([key["account"], key["region"], key["resource_id"]],
                                            parse_time(str(when)).timestamp())
            denied = CounterMetricFamily("auditbook_unauthorized_access_attempts",
                                         "Denied API calls (AccessDenied / UnauthorizedOperation) read from CloudTrail",
                                         labels=["principal"])
            for labels_key, n in session.execute(select(CloudTrailMatch.labels_key, func.count())
                                                 .where(CloudTrailMatch.rule == DENIED_RULE)
                                                 .group_by(CloudTrailMatch.labels_key)):
                denied.add_metric([labels_key.split("principal=", 1)[-1]], n)
            alerts = GaugeMetricFamily("auditbook_alerts", "Alerts by rule, state and severity",
                                       labels=["rule", "state", "severity"])
            for rule, state, severity, n in session.execute(select(Alert.rule, Alert.state, Alert.severity, func.count())
                                                            .group_by(Alert.rule, Alert.state, Alert.severity)):
                alerts.add_metric([rule, state, severity], n)
        yield from (criteria, findings, last, rotation, denied, alerts)


def registry(engine, catalog: Catalog) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(engine, catalog))
    return reg
