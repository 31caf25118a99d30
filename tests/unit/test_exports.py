"""OCSF, ASFF (and Security Hub import) and OSCAL exports of a stored run, each validated against
the format's own models (py-ocsf-models, compliance-trestle) or service (Security Hub under moto,
in-process). The formats are a registry (the export_formats seam) and report.exports.render is
what a front end calls."""
import json

import pytest
from typer.testing import CliRunner

from auditbook.catalog.model import load_catalog
from auditbook.cli.main import registered_app

app = registered_app()
from auditbook.errors import UserError
from auditbook.report.exports.view import load_view, render
from auditbook.store.db import open_engine


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


def _render(db, fmt, **kwargs):
    return render(open_engine(db, create=False), "latest", fmt, load_catalog(), **kwargs)




def test_a_plugin_format_is_rendered_like_a_built_in_one(stored_run):
    import types

    from auditbook import plugins
    from auditbook.hookspecs import hookimpl
    from auditbook.report.exports.formats import ExportFormat
    db, result = stored_run
    plugin = types.ModuleType("count_plugin")
    plugin.export_formats = hookimpl(lambda: [ExportFormat("counts", "findings per status",
                                                           lambda view: {"run": view.run.id, "rows": len(view.rows)})])
    plugins.register(plugin, name="count_plugin")
    try:
        assert _render(db, "counts") == {"run": result.run_id, "rows": len(result.findings)}
        failing = sum(f.status == "FAIL" for f in result.findings)
        assert _render(db, "counts", status="fail") == {"run": result.run_id, "rows": failing}
    finally:
        plugins.unregister(plugin)
    with pytest.raises(UserError, match=r"^--format: 'counts' is not an export format \(asff, ocsf, oscal\)$"):
        _render(db, "counts")


def test_unknown_status_or_run_is_one_line(stored_run):
    db, _ = stored_run
    with pytest.raises(UserError, match="^--status: 'PASSED' is not PASS, FAIL, ERROR or EXCEPTED$"):
        _render(db, "ocsf", status="PASSED")
    with pytest.raises(UserError, match="^--run: no run 99 in the store$"):
        render(open_engine(db, create=False), "99", "ocsf", load_catalog())


def test_ocsf_detection_findings_validate(stored_run):
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding
    db, result = stored_run
    docs = _render(db, "ocsf")
    assert len(docs) == len(result.findings)
    parsed = [DetectionFinding.model_validate(d) for d in docs]
    assert {p.class_uid for p in parsed} == {2004}
    versioning = {d["resources"][0]["name"]: d["status_code"] for d in docs if d["metadata"]["event_code"] == "s3-versioning"}
    assert versioning == {"export-unversioned": "FAIL", "export-versioned": "PASS"}
    assert all(d["cloud"]["account"]["uid"] == "123456789012" for d in docs)


def test_the_cli_exports_what_render_gives(stored_run):
    db, _ = stored_run
    for fmt in ("ocsf", "oscal"):
        out = CliRunner().invoke(app, ["findings", "--format", fmt, "--db", db])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output) == json.loads(json.dumps(_render(db, fmt)))


def _hub_ids(hub) -> list[str]:
    found, token = [], None
    while True:
        page = hub.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found += page["Findings"]
        token = page.get("NextToken")
        if not token:
            return found


def test_security_hub_imports_update_the_same_findings(stored_run, aws):
    """The ASFF ids are stable per check, account and resource: importing the same run again, or
    the next run, leaves Security Hub with exactly the same set of finding ids (never copies)."""
    from auditbook.report.exports.asff import import_run
    from auditbook.scan import run_scan
    db, result = stored_run
    engine, catalog = open_engine(db, create=False), load_catalog()
    docs = _render(db, "asff")
    assert len(docs) == len(result.findings) and len({d["Id"] for d in docs}) == len(docs)
    hub = aws.client("securityhub")
    first = import_run(hub, load_view(engine, "latest", catalog), "123456789012", "us-east-1")
    assert first == {"imported": len(docs), "failed": []}
    found = _hub_ids(hub)
    ids = sorted(f["Id"] for f in found)
    assert ids == sorted(d["Id"] for d in docs)
    by_resource = {f["Resources"][0]["Id"]: f["Compliance"]["Status"] for f in found
                   if f["GeneratorId"] == "auditbook/s3-versioning"}
    assert by_resource == {"arn:aws:s3:::export-unversioned": "FAILED", "arn:aws:s3:::export-versioned": "PASSED"}
    again = import_run(hub, load_view(engine, "latest", catalog), "123456789012", "us-east-1")
    assert again["imported"] == len(docs) and sorted(f["Id"] for f in _hub_ids(hub)) == ids
    aws.client("s3").put_bucket_versioning(Bucket="export-unversioned", VersioningConfiguration={"Status": "Enabled"})
    second = run_scan(db=db, regions="us-east-1")
    import_run(hub, load_view(engine, second.run_id, catalog), "123456789012", "us-east-1")
    after = _hub_ids(hub)
    assert sorted(f["Id"] for f in after) == ids  # the next run's findings update the same ones
    assert {f["Resources"][0]["Id"]: f["Compliance"]["Status"] for f in after
            if f["GeneratorId"] == "auditbook/s3-versioning"}["arn:aws:s3:::export-unversioned"] == "PASSED"


def test_oscal_assessment_results_validate(stored_run):
    from trestle.oscal.assessment_results import AssessmentResults
    db, result = stored_run
    doc = _render(db, "oscal")
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


def test_a_failure_says_what_is_wrong_in_ocsf_and_asff(stored_run):
    """Issue 15 §3: OCSF status_detail and ASFF Description carry the check's message with the offending
    value, not "not met: <title>"."""
    db, _ = stored_run
    [ocsf] = [d for d in _render(db, "ocsf") if d["metadata"]["event_code"] == "s3-versioning"
              and d["resources"][0]["name"] == "export-unversioned"]
    assert ocsf["status_detail"] == "versioning is never enabled (required: Enabled)"
    asff = [f for f in _render(db, "asff") if "s3-versioning" in f["GeneratorId"]
            and f["Resources"][0]["Id"].endswith("export-unversioned")]
    assert asff and asff[0]["Description"] == ocsf["status_detail"]
