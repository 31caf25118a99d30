"""`auditbook watch` as a process: a bad rules file is one line naming rule and field (exit 2), each
gap of a hostile log file is one line and a bad size cap stops it, and an endpoint that does not answer
is a gap, never a traceback (ingestion itself is tested in tests/unit/test_cloudtrail.py)."""
import os
import subprocess

import pytest
import yaml

from auditbook.errors import UserError
from auditbook.monitor.rules import load_rules
from tests.cloudtrail_files import gzipped, hostile_records, log_key
from tests.conftest import EXE


@pytest.mark.parametrize("rule, message", [
    ({"alert": "X1x", "expr": "count_over_time(events{colour=\"red\"}[5m]) > 1",
      "labels": {"severity": "high", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule X1x: expr: field 'colour' is not one of"),
    ({"alert": "Y1y", "expr": "count_over_time(events{eventName=\"A\"}[5m]) > 1",
      "labels": {"severity": "urgent", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule Y1y: labels.severity: 'urgent' is not one of"),
    ({"alert": "Z1z", "expr": "count_over_time(events{eventName=\"A\"}[5m]) > 1",
      "labels": {"severity": "high"}, "annotations": {"summary": "s s s"}},
     "rule Z1z: labels.soc2_control: Field required"),
    ({"alert": "W1w", "expr": "rate(x[5m]) > 1", "labels": {"severity": "high", "soc2_control": "CC7.2"},
      "annotations": {"summary": "s s s"}}, "rule W1w: expr: 'rate(x[5m]) > 1' is not"),
    ({"alert": "V1v", "expr": "count_over_time(events{eventName=~\"(\"}[5m]) > 1",
      "labels": {"severity": "high", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule V1v: expr: regex '(' of eventName is invalid"),
    ({"alert": "U1u", "expr": "count_over_time(events{eventName=\"A\"}[5q]) > 1",
      "labels": {"severity": "high", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule U1u: expr: window '5q' is not a duration"),
])
def test_bad_rules_file_is_one_line_naming_rule_and_field(tmp_path, rule, message):
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    with pytest.raises(UserError) as info:
        load_rules(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
    r = subprocess.run([EXE, "watch", "--once", "--rules", str(path), "--db", f"sqlite:///{tmp_path}/x.db"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_watch_prints_each_gap_on_one_line_and_a_bad_cap_stops_it(trail):
    from typer.testing import CliRunner

    from auditbook.cli.main import registered_app
    app = registered_app()
    at = trail["start"]
    records, expect = hostile_records(at)
    hostile = log_key(at, "b")
    trail["s3"].put_object(Bucket="org-trail", Key=hostile, Body=gzipped(records))
    db = str(trail["engine"].url)
    r = CliRunner().invoke(app, ["watch", "--once", "--bucket", "org-trail", "--db", db])
    assert r.exit_code == 0, r.output
    gaps = [line for line in r.output.splitlines() if "evidence gap" in line]
    assert len(gaps) == len(expect) and all(f"{hostile} record " in line for line in gaps)
    assert "\x1b[2J" not in r.output and "Traceback" not in r.output
    r = subprocess.run([EXE, "watch", "--once", "--bucket", "org-trail", "--db", db], capture_output=True, text=True,
                       env={**os.environ, "AUDITBOOK_CLOUDTRAIL_MAX_MB": "lots"})
    assert r.returncode == 2 and "AUDITBOOK_CLOUDTRAIL_MAX_MB: 'lots'" in r.stderr and "Traceback" not in r.stderr


def test_watch_once_with_an_endpoint_that_does_not_answer_prints_the_gap_not_a_traceback(tmp_path):
    from auditbook.demo.run import free_port
    r = subprocess.run([EXE, "watch", "--once", "--bucket", "x", "--db", f"sqlite:///{tmp_path}/w.db"],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    assert "Traceback" not in r.stderr and r.returncode == 1, r.stderr
    gap = [line for line in r.stderr.splitlines() if "evidence gap" in line]
    assert len(gap) == 1 and "x/x: cannot list the bucket: EndpointConnectionError" in gap[0]
