"""Application audit events on a real PostgreSQL store: the same reads, kept once (ON CONFLICT DO
NOTHING on the event's unique index), the same alerts and population as on SQLite."""
import datetime as dt

from auditbook.demo.estate_applogs import LOG_GROUP, audit_group, simulated_events
from auditbook.history.period import Period
from auditbook.monitor.alerts import list_alerts
from auditbook.monitor.app_audit import ingest, source_key
from auditbook.monitor.app_audit_config import AppAuditConfig
from auditbook.monitor.rules import load_rules
from auditbook.store.db import open_engine


def app_population(engine, period, criterion=None, now=None):
    from auditbook.catalog.model import load_catalog
    from auditbook.history.populations import population
    return population(engine, load_catalog(), "app_events", period, criterion)


CONFIG = AppAuditConfig.model_validate({"sources": [{"log_group": LOG_GROUP, "region": "us-east-1"}]})


def test_ingest_on_postgres_matches_sqlite(postgres, aws, tmp_path):
    from auditbook.demo.estate import Account
    now = dt.datetime.now(dt.timezone.utc)
    events = simulated_events(now)
    audit_group(Account(aws, "123456789012", "prod-us-east"), compliant=True, events=events)
    period = Period((now - dt.timedelta(days=2)).date(), now.date(), "test")
    populations = []
    for engine in (open_engine(postgres.database()), open_engine(f"sqlite:///{tmp_path}/s.db")):
        first = ingest(engine, CONFIG, load_rules(), now=now)[source_key("123456789012", "us-east-1", LOG_GROUP)]
        again = ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=1))
        assert first.kept == len(events) and sum(r.records for r in again.values()) == 0
        assert "AppRepeatedDeniedDataAccess" in {a["rule"] for a in list_alerts(engine, ("firing",))}
        populations.append(app_population(engine, period, "CC6.3", now=now - dt.timedelta(minutes=15)))
    assert populations[0].sha256 == populations[1].sha256 and populations[0].count == 49
