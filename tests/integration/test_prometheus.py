"""The Prometheus side: the exporter's exposition (parsed back with prometheus-client), and
docs/prometheus/alerts.yml checked by promtool and kept equal in names and labels to alerts.yml."""
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auditbook.catalog.model import load_catalog
from auditbook.demo import trail as trailgen
from auditbook.monitor.prometheus import registry
from auditbook.monitor.watch import cycle
from auditbook.store.db import open_engine

ROOT = Path(__file__).resolve().parents[2]


def _samples(engine):
    text = generate_latest(registry(engine, load_catalog())).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_exporter_metrics(aws, tmp_path):
    from auditbook.scan import run_scan
    kms = aws.client("kms")
    key = kms.create_key(Description="data")["KeyMetadata"]["KeyId"]
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="trail")
    db = f"sqlite:///{tmp_path}/m.db"
    run_scan(regions="us-east-1", db=db, criterion="CC6.1")
    engine = open_engine(db)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30)
    trailgen.upload(s3, "trail", trailgen.files("111122223333", "us-east-1", start, 2, 20))
    cycle(engine, lambda b: s3, ["trail"])
    samples = _samples(engine)
    denied = samples[("auditbook_unauthorized_access_attempts_total",
                      (("principal", "arn:aws:iam::111122223333:user/intruder"),))]
    assert denied == 8
    rotation = [v for (name, labels), v in samples.items()
                if name == "auditbook_kms_key_last_rotation_timestamp_seconds" and ("key", key) in labels]
    assert len(rotation) == 1 and abs(rotation[0] - dt.datetime.now(dt.timezone.utc).timestamp()) < 3600
    assert samples[("auditbook_alerts", (("rule", "RootAccountUsage"), ("severity", "critical"), ("state", "firing")))] == 1
    assert any(name == "auditbook_criteria" for name, _ in samples)
    assert samples[("auditbook_last_scan_timestamp_seconds", ())] > 0


def test_prometheus_rules_match_ours_and_pass_promtool():
    ours = {r["alert"]: r for g in yaml.safe_load((ROOT / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    theirs = {r["alert"]: r for g in yaml.safe_load((ROOT / "docs/prometheus/alerts.yml").read_text())["groups"]
              for r in g["rules"]}
    assert set(ours) == set(theirs)
    from auditbook.monitor.rules import load_rules
    summaries = {r.name: r.summary for r in load_rules()}  # thresholds (${name}) written in, as the alerts carry them
    for name, rule in theirs.items():
        assert rule["labels"] == ours[name]["labels"] and rule["annotations"] == {"summary": summaries[name]}, name
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is installed by .ci/run"
    r = subprocess.run([promtool, "check", "rules", str(ROOT / "docs/prometheus/alerts.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 14 rules found" in r.stdout
