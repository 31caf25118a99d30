"""Deviations of a period and management's response to each (issue 14 §5, docs/deviations.md).

A deviation is
- each failure stretch of an automated check on a resource that touches the period (history.type2's
  failures: first seen, fixed or still open, how it ended),
- each stretch of days of the period on which a required manual evidence item was not current
  (missing or expired, evaluate.manual_evidence.item_states judged day by day), and
- each account the organisation listed that the period's runs did not read (history.scope),
- each range of days without any scan (history.gaps), a deviation of every criterion with checks, and
- each alert not triaged in time (CC7.3) and each interval no CloudTrail log covered (CC7.2, CC8.1):
  history.deviation_kinds.

Each has a stable id (deviation_id: a hash of what it is, never of when it was computed), so a
response recorded today attaches to the same deviation in every later build. A response (root cause,
ticket, compensating control, remediation and date, management's response, whether the deviation
existed at the period's start when that differs from the computed answer, with the reason) is
recorded by `respond`: authorised (respond_deviation), versioned and in the audit trail in the same
unit of work. Free text is kept as typed and shown escaped by whoever shows it."""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown, unsafe_character
from auditbook.evaluate.manual_evidence import item_states
from auditbook.history import deviation_kinds as kinds
from auditbook.history import shared_reads
from auditbook.history.deviation_kinds import deviation_id
from auditbook.history.gaps import monitoring_gaps
from auditbook.history.per_check import failure_episodes
from auditbook.history.period import Period, period_runs
from auditbook.history.scope import scope_document
from auditbook.history.status import judged_on, period_intervals
from auditbook.store import audit_log
from auditbook.store import deviations as stored
from auditbook.store import history as finding_history
from auditbook.store import manual_evidence as documents
from auditbook.store.item_populations import item_populations
from auditbook.store.session import reading, writing

KINDS = ("failure", "manual evidence", "account not scanned", "monitoring gap", "alert triage", "log coverage")
NO_RESPONSE = "no management response"
ID = re.compile(r"[0-9a-f]{16}")
TEXT_CHARS, TICKET_CHARS = 4000, 200
OBJECT_TYPE = "deviation"


class StaleResponse(UserError):
    """The response changed since the responder read it: read it again."""


def _iso(value) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _start(period: Period) -> dt.datetime:
    return dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)


def first_observed(pruns) -> Optional[dt.datetime]:
    """When the period's first run started: a failure it already found existed at the period's start
    as far as the evidence of the period can say."""
    return pruns.times.get(pruns.ids[0]) if pruns.runs else None


def failure_deviation(episode: dict, criterion: str, period: Period,
                      first_run_at: Optional[dt.datetime] = None) -> dict:
    """One failure stretch (an entry of CriterionHistory.failures) as a deviation of `criterion`; it
    existed at the start when first seen before the period or by the period's first run."""
    seen = episode["first_seen"]
    existed = seen is not None and (seen < _start(period) or (first_run_at is not None and seen <= first_run_at))
    return {"id": deviation_id("failure", episode["check"], episode["account"], episode["region"],
                               episode["resource"], _iso(seen)),
            "kind": "failure", "criteria": [criterion], "check": episode["check"], "item": None,
            "account": episode["account"], "region": episode["region"], "resource": episode["resource"],
            "resource_name": episode.get("resource_name") or "", "severity": episode.get("severity"),
            "what": episode.get("message") or "", "from": _iso(seen), "until": _iso(episode["fixed"]),
            "state": episode["state"], "days_to_remediate": episode.get("days_to_remediate"),
            "existed_at_start_computed": existed}


def _stretches(flags: list[tuple[dt.date, Optional[object]]]) -> list[list[tuple[dt.date, object]]]:
    """Consecutive days whose state is not None, as lists of (day, state)."""
    out: list[list] = []
    previous = None
    for day, state in flags:
        if state is None:
            previous = None
            continue
        if previous is None:
            out.append([])
        out[-1].append((day, state))
        previous = day
    return out


def manual_deviations(catalog: Catalog, records: list, populations: dict, period: Period,
                      last_day: dt.date) -> list[dict]:
    """Each stretch of days (period start .. last_day) on which a required item was missing or
    expired, from the documents on file and the period's populations (item_states' keyword arguments:
    store.item_populations; each day judges the members by then) (pure)."""
    days = [d for d in period.days() if d <= last_day]
    by_day = {day: {(s.criterion, s.item): s for s in item_states(catalog, records, day, **populations)}
              for day in days}
    out = []
    for control in catalog.controls:
        for required in control.manual_evidence:
            key = (control.id, required.name)
            flags = [(d, by_day[d][key] if by_day[d][key].state != "current" else None) for d in days]
            for stretch in _stretches(flags):
                out.append(_manual(control.id, required.name, stretch, days[-1], period))
    return out


def _manual(criterion: str, item: str, stretch: list, last_day: dt.date, period: Period) -> dict:
    first, last = stretch[0][0], stretch[-1][0]
    states = sorted({s.state for _, s in stretch})
    missing_events = stretch[-1][1].missing_events
    what = f"{' then '.join(states)} from {first} to {last}"
    if missing_events:
        what += f"; incidents without an approved record: {', '.join(map(str, missing_events))}"
    return {"id": deviation_id("manual", criterion, item, first.isoformat()), "kind": "manual evidence",
            "criteria": [criterion], "check": None, "item": item, "account": None, "region": None,
            "resource": None, "resource_name": "", "severity": None, "what": what, "from": first.isoformat(),
            "until": None if last == last_day else last.isoformat(),
            "state": "open" if last == last_day else "closed", "existed_at_start_computed": first == period.start}


def account_deviation(entry: dict, period: Period) -> dict:
    """An account the organisation listed and the period's runs missed (scope_document's deviations)."""
    return {"id": deviation_id("account", entry["account"], entry["first_missing"]), "kind": "account not scanned",
            "criteria": [], "check": None, "item": None, "account": entry["account"], "region": None,
            "resource": None, "resource_name": entry.get("name") or "", "severity": None, "what": entry["deviation"],
            "from": entry["first_missing"], "until": entry["last_missing"], "state": "missing days",
            "existed_at_start_computed": entry["first_missing"] == period.start.isoformat()}


def gap_deviation(gap: dict, period: Period, criteria: Optional[list[str]] = None) -> dict:
    """Days without any scan (history.gaps.monitoring_gaps): monitoring did not operate, whatever the
    recorded reason (shown in `what`); a deviation of every criterion with automated checks (`criteria`)."""
    return {"id": deviation_id("gap", gap["from"]), "kind": "monitoring gap", "criteria": list(criteria or []),
            "check": None,
            "item": None, "account": None, "region": None, "resource": None, "resource_name": "",
            "severity": None, "what": f"no scan on {gap['days']} day(s); reason: {gap['reason']}",
            "from": gap["from"], "until": gap["to"], "state": "gap",
            "existed_at_start_computed": gap["from"] == period.start.isoformat(), "reason": gap["reason"],
            "explained_by": gap.get("explained_by"), "explained_at": gap.get("explained_at")}


def _episodes_by_check(engine, checks: list, pruns) -> dict[str, list[dict]]:
    """Each check's failure stretches over the period (history.per_check.failure_episodes, as a criterion's
    history has them), computed once per check however many criteria share it, from one read."""
    if not pruns.runs or not checks:
        return {}
    with reading(engine) as session:
        rows = period_intervals(session, [c.id for c in checks], pruns.ids[0], pruns.ids[-1])
        referenced = {x for r in rows for x in (r.first_run, r.closed_run) if x is not None}
        times = {**finding_history.start_times(session, referenced - set(pruns.times)), **pruns.times}
    per_check = defaultdict(list)
    for r in rows:
        per_check[r.check_id].append(r)
    return {c.id: failure_episodes(c, per_check.get(c.id, []), pruns, times) for c in checks}


def _failures(engine, catalog: Catalog, period: Period, criteria: list[str]) -> list[dict]:
    """The failure stretches of the criteria's checks, each once with every one of `criteria` it touches
    (in the catalog's order)."""
    pruns = period_runs(engine, period)
    wanted = set(criteria)
    checks = [c for c in catalog.checks if wanted & set(c.controls)]
    order = [c.id for c in catalog.controls if c.id in wanted]
    first_run_at = first_observed(pruns)
    found: dict[str, dict] = {}
    by_check = _episodes_by_check(engine, checks, pruns)
    for check in checks:
        mine = [cid for cid in order if cid in check.controls]
        for episode in by_check.get(check.id, []):  # none when the period has no run
            dev = failure_deviation(episode, mine[0], period, first_run_at)
            found.setdefault(dev["id"], {**dev, "criteria": mine})
    return list(found.values())


def _manual_for(engine, catalog: Catalog, period: Period, today: Optional[dt.date],
                criterion: Optional[str] = None) -> list[dict]:
    last_day = judged_on(period.end, today)
    if last_day < period.start:
        return []
    if criterion is not None:  # judge that criterion's items only (item_states walks the catalog's controls)
        catalog = catalog.model_copy(update={"controls": [c for c in catalog.controls if c.id == criterion]})
    def read() -> tuple:
        with reading(engine) as session:
            return documents.records(session, effective_by=last_day), item_populations(session, period.start, last_day)
    records, populations = shared_reads.once(("manual_inputs", shared_reads.store_key(engine), period.start, last_day),
                                             read)
    return manual_deviations(catalog, records, populations, period, last_day)


def _period_wide(engine, catalog: Catalog, period: Period, pruns, today: Optional[dt.date],
                 criterion: Optional[str]) -> list[dict]:
    """The monitoring gaps, alerts not triaged in time and log coverage intervals of the period — of
    `criterion` only, when given (each kind computed only when it can belong to it)."""
    def wanted(criteria) -> bool:
        return criterion is None or criterion in criteria
    found = []
    checked = kinds.with_checks(catalog)
    if wanted(checked):
        found += [gap_deviation(g, period, checked) for g in monitoring_gaps(engine, pruns, today)]
    if wanted(kinds.ALERT_CRITERIA):
        found += kinds.alert_deviations(engine, catalog, period, today)
    if wanted(kinds.LOG_COVERAGE_CRITERIA):
        found += kinds.log_coverage_deviations(engine, catalog, period, today)
    return [d for d in found if wanted(d["criteria"])]


def _ordered(found: list[dict]) -> list[dict]:
    return sorted(found, key=lambda d: (d["from"] or "", d["kind"], d["id"]))


def deviations(engine, catalog: Catalog, period: Period, criterion: Optional[str] = None,
               today: Optional[dt.date] = None, scope: Optional[dict] = None) -> list[dict]:
    """Every deviation of the period (of one criterion, if given; accounts not scanned belong to no one
    criterion and are listed only for the whole period), each with its response (or None,
    shown as NO_RESPONSE) and whether it existed at the period's start (the response's override, else
    computed). Plain JSON values, ordered by when it began. `scope`: the period's scope_document, when
    the caller has it already."""
    if criterion is not None and criterion not in {c.id for c in catalog.controls}:
        raise UserError(f"--criterion: {shown(criterion)} is not a criterion in the catalog")
    criteria = [criterion] if criterion else [c.id for c in catalog.controls]
    found = _failures(engine, catalog, period, criteria)
    found += _manual_for(engine, catalog, period, today, criterion)
    found += _period_wide(engine, catalog, period, period_runs(engine, period), today, criterion)
    if criterion is None:
        scope = scope if scope is not None else scope_document(engine, catalog, period)
        found += [account_deviation(e, period) for e in scope["deviations"]]
    return with_responses(engine, _ordered(found))


def for_criterion(engine, catalog: Catalog, period: Period, criterion: str, failures: list[dict],
                  today: Optional[dt.date] = None) -> list[dict]:
    """One criterion's deviations for its packet page, from the failures its page already computed
    (CriterionHistory.failures): the same list, ids and responses as deviations(…, criterion)."""
    pruns = period_runs(engine, period)
    first_run_at = first_observed(pruns)
    found = [failure_deviation(e, criterion, period, first_run_at) for e in failures]
    found += _manual_for(engine, catalog, period, today, criterion)
    found += _period_wide(engine, catalog, period, pruns, today, criterion)
    return with_responses(engine, _ordered(found))


def with_responses(engine, found: list[dict]) -> list[dict]:
    """The deviations with their responses attached (one read)."""
    with reading(engine) as session:
        answers = stored.responses(session, [d["id"] for d in found])
    return [_attached(d, answers.get(d["id"])) for d in found]


def _attached(dev: dict, answer: Optional[dict]) -> dict:
    plain = _json_response(answer) if answer else None
    override = answer["existed_at_start"] if answer else None
    return {**dev, "existed_at_start": dev["existed_at_start_computed"] if override is None else override,
            "existed_at_start_overridden": override is not None, "response": plain,
            "response_text": plain["response"] if plain else NO_RESPONSE}


def _json_response(answer: dict) -> dict:
    return {k: (_iso(v) if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in answer.items() if k != "subject"}


# -- recording a response ------------------------------------------------------------------------------

def _text(value, option: str, limit: int, required: bool = False, one_line: bool = False) -> Optional[str]:
    """Free text as typed (stripped): bounded, no character errors.unsafe_character refuses (control and
    format characters; tabs and line breaks only in multi-line fields); None when empty and not required."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise UserError(f"{option}: required")
        return None
    if len(text) > limit:
        raise UserError(f"{option}: {len(text)} characters; at most {limit}")
    bad = unsafe_character(text, one_line)
    if bad is not None:
        raise UserError(f"{option}: {shown(text, 80)} contains the control character {bad!r}")
    return text


def _day(value, today: dt.date) -> Optional[dt.date]:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
        raise UserError(f"--remediated-on: {shown(value)} is not a date (YYYY-MM-DD)")
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"--remediated-on: {shown(value)} is not a date (YYYY-MM-DD)") from None
    if day > today or day.year < 2000:
        raise UserError(f"--remediated-on: {day} is not between 2000-01-01 and today ({today})")
    return day


def checked_fields(root_cause, response, ticket=None, compensating=None, remediation=None, remediated_on=None,
                   existed_at_start=None, existed_reason=None, today: Optional[dt.date] = None) -> dict:
    """A response's fields checked (a one-line UserError naming the option otherwise), as stored."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if existed_at_start not in (None, True, False):
        raise UserError(f"--existed-at-start: {shown(existed_at_start)} is not yes or no")
    reason = _text(existed_reason, "--existed-reason", TEXT_CHARS, required=existed_at_start is not None)
    if existed_at_start is None and reason is not None:
        raise UserError("--existed-reason: give it with --existed-at-start (overriding the computed answer)")
    return {"root_cause": _text(root_cause, "--root-cause", TEXT_CHARS, required=True),
            "response": _text(response, "--response", TEXT_CHARS, required=True),
            "ticket": _text(ticket, "--ticket", TICKET_CHARS, one_line=True),
            "compensating": _text(compensating, "--compensating", TEXT_CHARS),
            "remediation": _text(remediation, "--remediation", TEXT_CHARS),
            "remediated_on": _day(remediated_on, today), "existed_at_start": existed_at_start,
            "existed_reason": reason}


def checked_id(value) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not ID.fullmatch(text):
        raise UserError(f"ID: {shown(value)} is not a deviation id (16 hex digits, from `auditbook deviations list`)")
    return text


def respond(engine, actor: Actor, deviation_id: str, version: int, *, catalog: Catalog, period: Period,
            today: Optional[dt.date] = None, **fields) -> dict:
    """Record management's response to a deviation of the period: `version` is the response's version
    the responder saw (0: none yet). Fields: root_cause and response (required), ticket, compensating,
    remediation, remediated_on, existed_at_start (True/False overrides the computed answer) with
    existed_reason. Returns the deviation with its new response."""
    authorize(actor, "respond_deviation")
    ident = checked_id(deviation_id)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise UserError(f"--version: {shown(version)} is not a version (0 when there is no response yet)")
    checked = checked_fields(today=today, **fields)
    dev = next((d for d in deviations(engine, catalog, period, today=today) if d["id"] == ident), None)
    if dev is None:
        raise UserError(f"ID: {ident} is not a deviation of {period.label} (see `auditbook deviations list`)")
    at = audit_log.now()
    with writing(engine) as session:
        before = stored.response(session, ident)
        _write(session, actor, dev, before, version, checked, at)
        after = stored.response(session, ident)
        audit_log.record(session, actor, "respond_deviation", OBJECT_TYPE, ident,
                         before=_json_response(before) if before else None, after=_json_response(after),
                         note=f"{period.label}: {dev['kind']}", at=at)
    return _attached(dev, after)


def _write(session, actor: Actor, dev: dict, before: Optional[dict], version: int, checked: dict,
           at: dt.datetime) -> None:
    now = before["version"] if before else 0
    if version != now:
        raise StaleResponse(f"deviation {dev['id']}: its response changed since it was read (version {version}, "
                            f"now {now}): read it again")
    subject = {k: dev[k] for k in ("kind", "criteria", "check", "item", "account", "region", "resource", "from")}
    done = (stored.add(session, dev["id"], dev["kind"], subject, checked, actor.name, actor.role, at) if now == 0
            else stored.replace_if_version(session, dev["id"], version, checked, actor.name, actor.role, at))
    if not done:
        raise StaleResponse(f"deviation {dev['id']}: someone else responded while this response was made: "
                            "read it again")


def response_trail(engine, deviation_id: str) -> list[dict]:
    """Every response recorded to a deviation (the audit trail), oldest first."""
    with reading(engine) as session:
        return audit_log.trail(session, OBJECT_TYPE, checked_id(deviation_id))
