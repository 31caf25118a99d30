"""OCSF 1.x Detection Finding (class 2004), built and validated with py-ocsf-models."""
from __future__ import annotations

import datetime as dt

from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import (
    DetectionFindingTypeID,
)
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.account import Account, TypeID
from py_ocsf_models.objects.cloud import Cloud
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.product import Product
from py_ocsf_models.objects.remediation import Remediation
from py_ocsf_models.objects.resource_details import ResourceDetails

from auditbook import __version__
from auditbook.report.exports.view import RunView

SEVERITY = {"critical": SeverityID.Critical, "high": SeverityID.High, "medium": SeverityID.Medium,
            "low": SeverityID.Low, "informational": SeverityID.Informational}
# PASS/FAIL/ERROR/EXCEPTED go in status_code; status_id is the workflow state
WORKFLOW = {"PASS": StatusID.Resolved, "FAIL": StatusID.New, "ERROR": StatusID.Other, "EXCEPTED": StatusID.Suppressed}


def _epoch(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp())


def to_ocsf(view: RunView) -> list[dict]:
    run = view.run
    when = run.finished_at
    out = []
    for row in view.rows:
        check = view.check(row["check"])
        uid = f"auditbook-run{run.id}-{row['check']}-{row['account']}-{row['resource']}"
        finding = DetectionFinding(
            activity_id=ActivityID.Create, activity_name="Create",
            type_uid=DetectionFindingTypeID.Create, type_name="Detection Finding: Create",
            time=_epoch(when), time_dt=when,
            severity_id=SEVERITY.get(row["severity"], SeverityID.Unknown), severity=row["severity"].capitalize(),
            status=row["status"], status_code=row["status"], status_detail=row["message"],
            status_id=WORKFLOW[row["status"]], message=row["message"],
            metadata=Metadata(product=Product(name="auditbook", vendor_name="auditbook", version=__version__),
                              version="1.5.0", event_code=row["check"], profiles=["cloud"],
                              tenant_uid=row["account"]),
            finding_info=FindingInformation(uid=uid, title=check.title if check else row["check"],
                                            desc=row["message"], types=row["controls"],
                                            created_time=_epoch(when), created_time_dt=when),
            cloud=Cloud(provider="aws", region=row["region"],
                        account=Account(uid=row["account"], name=row["account"], type_id=TypeID.AWS_Account,
                                        type="AWS Account")),
            resources=[ResourceDetails(uid=row["resource"], name=row["resource_name"], type=row["resource_type"],
                                       region=row["region"], cloud_partition="aws",
                                       data={"evidence_sha256": row["evidence"]})],
            remediation=Remediation(desc=check.remediation) if check else None,
            unmapped={"controls": row["controls"], "framework": view.catalog.framework, "run": run.id},
        )
        out.append(finding.model_dump(mode="json", exclude_none=True))
    return out
