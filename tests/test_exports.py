"""OCSF, ASFF (and Security Hub import) and OSCAL exports of a stored run, each validated against
the format's own models (py-ocsf-models, compliance-trestle) or service (Security Hub under moto)."""
import json

import boto3
import pytest
from typer.testing import CliRunner

from auditbook.cli.main import app


@pytest.fixture
def stored_run(aws, tmp_path):
    from auditbook.scan import run_scan
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="export-unversioned")
    s3.create_bucket(Bucket="export-versioned")
    s3.put_bucket_versioning(Bucket="export-versioned", VersioningConfiguration={"Status": "Enabled"})
    db = f"sqlite:///{tmp_path}/x.db"
    result = run_scan(db=db, regions="us-east-1")
    return db, result


def _export(db, fmt):
    out = CliRunner().invoke(app, ["findings", "--format", fmt, "--db", db])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_ocsf_detection_findings_validate(stored_run):
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding
    db, result = stored_run
    docs = _export(db, "ocsf")
    assert len(docs) == len(result.findings)
    parsed = [DetectionFinding.model_validate(d) for d in docs]
    assert {p.class_uid for p in parsed} == {2004}
    versioning = {d["resources"][0]["name"]: d["status_code"] for d in docs if d["metadata"]["event_code"] == "s3-versioning"}
    assert versioning == {"export-unversioned": "FAIL", "export-versioned": "PASS"}
    assert all(d["cloud"]["account"]["uid"] == "123456789012" for d in docs)


def test_asff_imports_into_security_hub(stored_run):
    db, result = stored_run
    docs = _export(db, "asff")
    assert len(docs) == len(result.findings) and len({d["Id"] for d in docs}) == len(docs)
    out = CliRunner().invoke(app, ["export", "securityhub", "--db", db, "--region", "us-east-1"])
    assert out.exit_code == 0, out.output
    hub = boto3.client("securityhub", region_name="us-east-1")
    found, token = [], None
    while True:
        page = hub.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found += page["Findings"]
        token = page.get("NextToken")
        if not token:
            break
    assert len(found) == len(docs)
    by_resource = {f["Resources"][0]["Id"]: f["Compliance"]["Status"] for f in found
                   if f["GeneratorId"] == "auditbook/s3-versioning"}
    assert by_resource == {"arn:aws:s3:::export-unversioned": "FAILED", "arn:aws:s3:::export-versioned": "PASSED"}
    # importing again updates the same findings (stable ids), it does not duplicate them
    assert CliRunner().invoke(app, ["export", "securityhub", "--db", db, "--region", "us-east-1"]).exit_code == 0
    assert len(hub.get_findings(MaxResults=100)["Findings"]) <= 100 and \
        len({f["Id"] for f in found}) == len(docs)


def test_oscal_assessment_results_validate(stored_run):
    from trestle.oscal.assessment_results import AssessmentResults
    db, result = stored_run
    doc = _export(db, "oscal")
    model = AssessmentResults.model_validate(doc["assessment-results"])
    [res] = model.results
    assert len(res.observations) == len(result.findings)
    targets = {f.target.target_id: f.target.status.state.value for f in res.findings}
    assert len(targets) == 61
    summary = {row["control"]: row["status"] for row in result.summary}
    assert all((targets[c] == "satisfied") == (s == "PASS") for c, s in summary.items())
    assert targets["CC1.1"] == "not-satisfied"  # manual evidence missing: never satisfied
    evidence = [e.href for o in res.observations for e in (o.relevant_evidence or [])]
    assert evidence and all(h.startswith("urn:auditbook:evidence:sha256:") for h in evidence)
