"""The simulated quarter's incidents (SIMULATED): the on-call's INC-2041 (web-https opened to the world
on port 22) and INC-2077 (the public access block removed from prod-customer-data).

Each is opened from the alert that raised it, the morning after, through monitor.incidents — so its
title, description and links are the alert's, led by "SIMULATED INC-…" — and taken to investigating;
it is resolved and closed (with its post-mortem's root cause and lessons learned) the morning the
day's scan shows the fix. All of it on the simulated day's incident clock (demo/clock.py): the
incidents are in the period, as they would have been had auditbook been running then. The session
names of the CloudTrail changes (priya-INC-2041, priya-INC-2077: demo/trail.py STORY) and management's
responses (demo/audit_work.py) cite these tickets.

After the quarter, each incident's record (CC7.4's per-incident item) is uploaded when the audit is
prepared, like the other demo documents (effective the day the incident was opened): flagged late,
explained by its submitter, approved by a second person."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from auditbook.auth import Actor
from auditbook.demo.clock import incident_clock
from auditbook.monitor import alerts as alert_service
from auditbook.monitor import incidents

ONCALL = Actor("Priya Nair (SIMULATED on-call engineer)", "analyst")
RECORDS_CRITERION, RECORDS_ITEM = "CC7.4", "Incident records"


@dataclass(frozen=True)
class QuarterIncident:
    ticket: str
    rule: str  # the alert it is opened from: its rule and a word of its summary
    summary_has: str
    opened_day: int  # days of the quarter (0-based), after that day's 06:00 scan
    closed_day: int
    root_cause: str
    lessons_learned: str


STORY = (
    QuarterIncident("INC-2041", "SecurityGroupOpenedToWorld", "0.0.0.0/0", 17, 20,
                    "SIMULATED: an engineer opened SSH to the world on web-https from the console to debug a "
                    "deployment.",
                    "SIMULATED: console changes to security groups now need a change ticket."),
    QuarterIncident("INC-2077", "CheckRegressed", "s3-bucket-public-access-block", 38, 45,
                    "SIMULATED: a Terraform module upgrade dropped prod-customer-data's public access block.",
                    "SIMULATED: the module is pinned; plans are reviewed for public access block changes."),
)
OPEN_AT, RESOLVE_AT, CLOSE_AT = dt.time(6, 40), dt.time(6, 50), dt.time(9, 30)


def _at(period_start: dt.date, day: int, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(period_start + dt.timedelta(days=day), time, dt.timezone.utc)


def _alert_of(engine, story: QuarterIncident, before: dt.datetime) -> dict:
    found = [a for a in alert_service.list_alerts(engine) if a["rule"] == story.rule
             and story.summary_has in a["summary"] and a["fired_at"] <= before]
    if not found:
        raise RuntimeError(f"simulated quarter: no {story.rule} alert for {story.ticket} before {before:%Y-%m-%d %H:%M}")
    return max(found, key=lambda a: a["fired_at"])


class QuarterIncidents:
    """The quarter's incidents, opened and closed day by day (`after_scan`), then their records."""

    def __init__(self, engine, period_start: dt.date):
        self.engine, self.start = engine, period_start
        self.opened: dict[str, int] = {}  # ticket -> incident id

    def after_scan(self, day: int) -> None:
        """The incident steps of `day` (0-based), after its scan."""
        for story in STORY:
            if day == story.opened_day:
                self._open(story)
            if day == story.closed_day:
                self._close(story)

    def _open(self, story: QuarterIncident) -> None:
        at = _at(self.start, story.opened_day, OPEN_AT)
        alert = _alert_of(self.engine, story, at)
        with incident_clock(at):
            made = incidents.from_alert(self.engine, ONCALL, alert["id"], label=f"SIMULATED {story.ticket}")
            incidents.update(self.engine, ONCALL, made["id"], made["version"], status="investigating",
                             assignee=ONCALL.name)
        self.opened[story.ticket] = made["id"]

    def _close(self, story: QuarterIncident) -> None:
        ident = self.opened[story.ticket]
        with incident_clock(_at(self.start, story.closed_day, RESOLVE_AT)):
            now = incidents.get(self.engine, ident)
            incidents.update(self.engine, ONCALL, ident, now["version"], status="resolved")
        with incident_clock(_at(self.start, story.closed_day, CLOSE_AT)):
            now = incidents.get(self.engine, ident)
            incidents.update(self.engine, ONCALL, ident, now["version"], status="closed",
                             root_cause=story.root_cause, lessons_learned=story.lessons_learned)

    def records(self, catalog) -> int:
        """Each incident's record (CC7.4's per-incident item), effective the day the incident was opened
        (the record is kept from then: an incident is never without it in the period), uploaded now (after the quarter: flagged late, with its submitter's explanation), approved by a second
        person. -> documents added."""
        import tempfile
        from pathlib import Path

        from auditbook.demo.quarter import APPROVER, LATE_UPLOAD, SUBMITTER
        from auditbook.history.evidence_events import annotate_evidence
        from auditbook.scan import add_evidence, decide_evidence
        owner, count = catalog.control(RECORDS_CRITERION).owner, 0
        with tempfile.TemporaryDirectory() as tmp:
            for story in STORY:
                if story.ticket not in self.opened:
                    continue
                opened, closed = (self.start + dt.timedelta(days=d) for d in (story.opened_day, story.closed_day))
                doc = Path(tmp) / f"incident-record-{story.ticket.lower()}.txt"
                doc.write_text(f"SIMULATED demo document — not real evidence.\n{RECORDS_CRITERION}: {RECORDS_ITEM}\n"
                               f"Incident {self.opened[story.ticket]} ({story.ticket}), opened {opened}, closed {closed}.\n"
                               f"Root cause: {story.root_cause}\nLessons learned: {story.lessons_learned}\n")
                row = add_evidence(self.engine, catalog, RECORDS_CRITERION, doc, effective=opened, owner=owner,
                                   item=RECORDS_ITEM, actor=SUBMITTER, incident=self.opened[story.ticket])
                if row.timeline_flags:
                    row = annotate_evidence(self.engine, catalog, SUBMITTER, row.id, row.version,
                                            explanation=LATE_UPLOAD)
                decide_evidence(self.engine, APPROVER, row.id, row.version, "approve",
                                "SIMULATED: incident record read and accepted by the demo's control owner")
                count += 1
        return count
