"""Alerts: stored, deduplicated by rule and labels, firing → acknowledged → resolved.

The rule every run feeds: CheckRegressed — a resource whose check passed in one run and fails in the
next. It resolves when that finding stops failing."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Optional

from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from auditbook.store.audit_log import now, record
from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.hookspecs import hookimpl
from auditbook.store.db import utc as _utc
from auditbook.store.models import Alert, FindingState

REGRESSED = "CheckRegressed"
OPEN_STATES = ("firing", "acknowledged")
MAX_EVIDENCE = 200  # evidence ids kept on one alert (the newest)
MAX_KEY = 600  # the length of alerts.dedup_key and cloudtrail_matches.labels_key
MAX_CONTROLS = Alert.__table__.c.soc2_control.type.length  # alerts.soc2_control (rules are held to it at load)
STATES = ("pending", "firing", "acknowledged", "resolved")  # pending: a posture rule's `for` not yet over


class StaleAlert(Exception):
    def __init__(self, current: dict):
        super().__init__(f"alert {current['id']} changed meanwhile (now {current['state']}); nothing was saved")
        self.current = current


def as_dict(a: Alert) -> dict:
    return {"id": a.id, "rule": a.rule, "state": a.state, "severity": a.severity, "soc2_control": a.soc2_control,
            "labels": dict(a.labels or {}), "summary": a.summary, "first_seen": _utc(a.first_seen),
            "last_seen": _utc(a.last_seen), "count": a.count, "evidence": list(a.evidence or []),
            "acknowledged_by": a.acknowledged_by, "acknowledged_at": _utc(a.acknowledged_at),
            "resolved_at": _utc(a.resolved_at), "version": a.version, "dedup_key": a.dedup_key}


def dedup_key(rule: str, labels: dict) -> str:
    """rule|label=value|… — cut to fit its column (MAX_KEY) with the SHA-256 of the whole key, so a
    long principal (an IAM path may be 512 characters) still names one alert."""
    key = rule + "|" + "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    if len(key) <= MAX_KEY:
        return key
    tail = "|sha256=" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key[:MAX_KEY - len(tail)] + tail


def fire(session: Session, *, rule: str, labels: dict, severity: str, soc2_control: str, summary: str,
         at: dt.datetime, evidence: Optional[list] = None) -> Alert:
    """Raise an alert, or count one more occurrence of the same open alert."""
    key = dedup_key(rule, labels)
    alert = session.scalars(select(Alert).where(Alert.dedup_key == key, Alert.state.in_(OPEN_STATES))).first()
    if alert is not None:
        alert.count += 1
        alert.last_seen = max(_utc(alert.last_seen), at)
        kept = list(alert.evidence or [])
        kept += [e for e in evidence or [] if e not in kept]
        alert.evidence = kept[-MAX_EVIDENCE:]
        alert.version += 1
        return alert
    alert = Alert(rule=rule, dedup_key=key, state="firing", severity=severity, soc2_control=soc2_control,
                  labels=labels, summary=summary, first_seen=at, last_seen=at, count=1,
                  evidence=list(dict.fromkeys(evidence or []))[-MAX_EVIDENCE:], version=1)
    session.add(alert)
    return alert


def resolve(session: Session, rule: str, labels: dict, at: dt.datetime) -> int:
    done = session.execute(sa_update(Alert).where(Alert.dedup_key == dedup_key(rule, labels),
                                                  Alert.state.in_(OPEN_STATES))
                           .values(state="resolved", resolved_at=at, version=Alert.version + 1))
    return done.rowcount


def fit_controls(controls: list) -> tuple[str, str]:
    """A check's criteria for alerts.soc2_control: (as many whole ids as fit the column, the note the
    summary carries naming every one when some did not fit)."""
    joined = ",".join(controls)
    if len(joined) <= MAX_CONTROLS:
        return joined, ""
    kept: list = []
    for control in controls:
        if len(",".join(kept + [control])) > MAX_CONTROLS:
            break
        kept.append(control)
    return ",".join(kept), f" (SOC 2 criteria: {', '.join(controls)})"


def _labels(row) -> dict:
    return {"check": row.check_id, "account": row.account, "region": row.region,
            "resource_type": row.resource_type, "resource": row.resource}


def sync_regressions(engine, run_id: int, at: dt.datetime) -> dict:
    """After run `run_id` is stored: FAIL that was PASS in the previous run fires CheckRegressed;
    a CheckRegressed finding that no longer fails resolves it."""
    cols = (FindingState.check_id, FindingState.account, FindingState.region, FindingState.scope_region,
            FindingState.resource_type, FindingState.resource_id, FindingState.resource,
            FindingState.resource_name, FindingState.status, FindingState.severity, FindingState.controls,
            FindingState.evidence)

    def key(r):
        return (r.check_id, r.account, r.scope_region, r.resource_type, r.resource_id)
    fired = resolved = 0
    with Session(engine) as session, session.begin():
        started = {key(r): r for r in session.execute(select(*cols).where(FindingState.first_run == run_id))}
        ended = {key(r): r for r in session.execute(select(*cols).where(FindingState.closed_run == run_id))}
        for k, new in started.items():
            old = ended.get(k)
            if new.status == "FAIL" and old is not None and old.status == "PASS":
                controls, all_controls = fit_controls(list(new.controls or []))
                fire(session, rule=REGRESSED, labels=_labels(new), severity=new.severity,
                     soc2_control=controls, at=at, evidence=new.evidence,
                     summary=f"{new.check_id} passed in the previous run and fails now on "
                             f"{new.resource_name or new.resource} ({new.account}, {new.region}){all_controls}")
                fired += 1
        for k, old in ended.items():
            new = started.get(k)
            if old.status == "FAIL" and (new is None or new.status != "FAIL"):
                resolved += resolve(session, REGRESSED, _labels(old), at)
    return {"fired": fired, "resolved": resolved}


def list_alerts(engine, states: Optional[tuple[str, ...]] = None) -> list[dict]:
    with Session(engine) as session:
        q = select(Alert).order_by(Alert.last_seen.desc(), Alert.id.desc())
        if states:
            q = q.where(Alert.state.in_(states))
        return [as_dict(a) for a in session.scalars(q)]


def get(engine, alert_id: int) -> dict:
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise UserError(f"alert: no alert {alert_id}")
        return as_dict(alert)


def acknowledge(engine, actor: Actor, alert_id: int, version: int, note: Optional[str] = None) -> dict:
    authorize(actor, "acknowledge_alert")
    current = get(engine, alert_id)
    if current["state"] != "firing":
        raise UserError(f"alert {alert_id}: is {current['state']}, only a firing alert can be acknowledged")
    stamp = now()
    with Session(engine) as session, session.begin():
        done = session.execute(sa_update(Alert).where(Alert.id == alert_id, Alert.version == version,
                                                      Alert.state == "firing")
                               .values(state="acknowledged", acknowledged_by=actor.name, acknowledged_at=stamp,
                                       version=version + 1))
        if done.rowcount == 1:
            record(session, actor, "acknowledge", "alert", alert_id, before={"state": "firing"},
                   after={"state": "acknowledged"}, note=note, at=stamp)
    if done.rowcount != 1:
        raise StaleAlert(get(engine, alert_id))
    return get(engine, alert_id)


@hookimpl
def run_stored(engine, run_id: int, at: dt.datetime) -> None:
    """Subscribed to the scan's "run stored" event: a check regressing from PASS to FAIL raises an alert."""
    sync_regressions(engine, run_id, at)
