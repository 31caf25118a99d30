"""The demo's SIMULATED documents are uploaded after the quarter, so each is flagged as a late upload;
a flagged document covers its period only with its submitter's explanation approved with it (issue
14 §2), so the demo gives each one — and the documented criteria's items are current in the quarter."""
import datetime as dt

from freezegun import freeze_time

from auditbook.catalog.model import load_catalog
from auditbook.demo.quarter import (
    APPROVER,
    DOCUMENTED,
    LATE_UPLOAD,
    SUBMITTER,
    demo_documents,
)
from auditbook.history.period import quarter
from auditbook.scan import evidence_documents, evidence_status


def test_late_demo_documents_carry_an_approved_simulated_explanation_and_cover_the_quarter(tmp_path):
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(f"sqlite:///{tmp_path}/d.db"), load_catalog()
    with freeze_time("2026-12-01 08:00:00"):
        count = demo_documents(engine, catalog, quarter(2026, 3))
    docs = evidence_documents(engine)
    assert count == len(docs) > 0
    assert all(d.timeline_flags and d.explanation == LATE_UPLOAD and "SIMULATED" in d.explanation for d in docs)
    assert all((d.status, d.submitted_by, d.decided_by) == ("approved", SUBMITTER.name, APPROVER.name) for d in docs)
    assert all(d.counts for d in docs)
    day_30 = dt.date(2026, 7, 30)  # after the documents' effective day (the tenth), before monthly items lapse
    states = {(s.criterion, s.item): s.state for s in evidence_status(engine, catalog, day_30)
              if s.criterion in DOCUMENTED}
    documented = {(cid, i.name) for cid in DOCUMENTED for i in catalog.control(cid).manual_evidence if i.per is None}
    assert documented and all(states[k] == "current" for k in documented), states
