"""OSCAL assessment-results (one result per run: an observation per finding, an OSCAL finding per
criterion), built and validated with compliance-trestle's models."""
from __future__ import annotations

import uuid

from trestle.oscal import OSCAL_VERSION
from trestle.oscal import assessment_results as ar
from trestle.oscal import common as oc

from auditbook import __version__
from auditbook.report.exports.view import RunView

NAMESPACE = uuid.UUID("6f0b8a1e-6f4b-4a55-9d0e-7b1d7a3c2a10")  # auditbook's uuid5 namespace


def _uuid(*parts) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(str(p) for p in parts)))


def to_oscal(view: RunView) -> dict:
    run = view.run
    start, end = run.started_at, run.finished_at  # aware, UTC
    observations, by_control = [], {}
    for row in view.rows:
        obs_id = _uuid(run.id, row["check"], row["account"], row["resource"])
        observations.append(ar.Observation(
            uuid=obs_id, title=f"{row['check']}: {row['status']}", description=row["message"] or row["check"],
            methods=["TEST"], types=["finding"], collected=end,
            props=[oc.Property(name="status", value=row["status"]), oc.Property(name="severity", value=row["severity"]),
                   oc.Property(name="check", value=row["check"]), oc.Property(name="account", value=row["account"])],
            subjects=[oc.SubjectReference(subject_uuid=_uuid("resource", row["account"], row["resource"]),
                                          type="resource", title=row["resource"])],
            relevant_evidence=[oc.RelevantEvidence(href=f"urn:auditbook:evidence:sha256:{h}",
                                                   description=f"AWS API response, SHA-256 {h}")
                               for h in row["evidence"]] or None,
        ))
        for cid in row["controls"]:
            by_control.setdefault(cid, []).append(obs_id)
    findings = []
    for row in view.summary():
        cid = row["control"]
        satisfied = row["status"] == "PASS"
        counts = f"{row['PASS']} pass, {row['FAIL']} fail, {row['ERROR']} error, {row['EXCEPTED']} excepted"
        findings.append(oc.Finding(
            uuid=_uuid(run.id, "finding", cid), title=f"{cid} {row['title']}",
            description=f"{cid}: {row['status'].replace('_', ' ').lower()} ({counts} over {row['checks']} checks)",
            target=oc.FindingTarget(
                type="objective-id", target_id=cid,
                status=oc.ObjectiveStatus(state="satisfied" if satisfied else "not-satisfied",
                                          reason="pass" if satisfied else "fail" if row["status"] == "FAIL" else "other",
                                          remarks=row["status"])),
            related_observations=[oc.RelatedObservation(observation_uuid=o) for o in by_control.get(cid, [])] or None,
        ))
    result = ar.Result(
        uuid=_uuid(run.id, "result"), title=f"auditbook run {run.id}",
        description=f"Automated checks and manual-evidence state for {view.catalog.framework}",
        start=start, end=end,
        reviewed_controls=oc.ReviewedControls(control_selections=[oc.ControlSelections(
            include_controls=[oc.SelectControlById(control_id=c.id) for c in view.catalog.controls])]),
        observations=observations or None, findings=findings or None,
    )
    doc = ar.AssessmentResults(
        uuid=_uuid(run.id, "assessment-results"),
        metadata=oc.Metadata(title=f"auditbook assessment results, run {run.id}", last_modified=end,
                             version=__version__, oscal_version=OSCAL_VERSION),
        import_ap=ar.ImportAp(href=f"urn:auditbook:catalog:sha256:{run.catalog_sha256}"),
        results=[result],
    )
    return {"assessment-results": doc.model_dump(mode="json", by_alias=True, exclude_none=True)}
