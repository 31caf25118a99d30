"""What the alerts page and `auditbook alerts list` show: alerts through filters (state, severity,
rule, account, region, time range, assignee, triage, suppressed — given as URL-style parameters so
a view can be shared), sorted by severity then age by default, counted and paged in SQL; and one
alert's detail: the CloudTrail records behind it (time, principal, source IP, user agent, request
parameters — redacted when they were stored), the resources and findings it concerns, its
suppression, its time to triage and its history (the audit trail)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Mapping, Optional, Sequence

from auditbook.errors import UserError, shown
from auditbook.monitor.alerts import REGRESSED, STATES, document, evidence_of
from auditbook.monitor.triage import DECISIONS, cutoffs, targets, time_to_triage
from auditbook.store import alert_detail, alert_filters, audit_log
from auditbook.store import alerts as stored
from auditbook.store import suppressions as stored_suppressions
from auditbook.store.alert_filters import OVERDUE, UNTRIAGED, AlertQuery
from auditbook.store.audit_log import now
from auditbook.store.session import reading

ORDERS = tuple(alert_filters.ORDERS)
DEFAULT_ORDER = ORDERS[0]  # severity, then the oldest first
TRIAGE_FILTERS = (UNTRIAGED, OVERDUE) + DECISIONS
SUPPRESSED_FILTERS = {"any": None, "yes": True, "no": False}
MULTI = ("state", "severity", "rule", "account", "region")
MAX_VALUES = 50  # values of one filter
PAGE_SIZES = (25, 50, 100, 200)


def _date(value: str, name: str, end: bool = False) -> dt.datetime:
    """A day (YYYY-MM-DD: its start, or with end=True the start of the next) or an ISO time with a zone."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), dt.timezone.utc)
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise UserError(f"{name}: {shown(value)} has no time zone")
        return parsed.astimezone(dt.timezone.utc)
    except OverflowError:  # a day or time at the edge of the calendar, past it in UTC
        raise UserError(f"{name}: {shown(value)} is out of range (years 1 to 9999 in UTC)") from None
    except ValueError:
        raise UserError(f"{name}: {shown(value)} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None


def _values(params: Mapping[str, Sequence[str]], name: str) -> tuple:
    values = tuple(dict.fromkeys(str(v) for v in params.get(name, ()) if str(v) != ""))
    if len(values) > MAX_VALUES:
        raise UserError(f"{name}: {len(values)} values; at most {MAX_VALUES}")
    if any(len(v) > 600 for v in values):
        raise UserError(f"{name}: a value longer than 600 characters")
    return values


def _one(params: Mapping[str, Sequence[str]], name: str, allowed: Sequence[str] = ()) -> Optional[str]:
    values = _values(params, name)
    if len(values) > 1:
        raise UserError(f"{name}: give it once")
    if values and allowed and values[0] not in allowed:
        raise UserError(f"{name}: {shown(values[0])} is not one of {', '.join(allowed)}")
    return values[0] if values else None


def parse_filters(params: Mapping[str, Sequence[str]], engine=None,
                  at: Optional[dt.datetime] = None) -> tuple[AlertQuery, str]:
    """URL-style parameters ({name: [values]}) as (AlertQuery, order); a UserError naming the first
    that is wrong. `assignee`: a name, or "-" for unassigned; `since`/`until`: dates or times;
    `triage`: untriaged, overdue or a decision; `suppressed`: any, yes, no; `sort`: one of ORDERS."""
    at = at or now()
    unknown = sorted(set(params) - {*MULTI, "assignee", "since", "until", "triage", "suppressed", "sort", "alert",
                                    "page", "size"})
    if unknown:
        raise UserError(f"{shown(unknown[0])}: not a filter of the alerts")
    multi = {name: _values(params, name) for name in MULTI}
    for state in multi["state"]:
        if state not in STATES:
            raise UserError(f"state: {shown(state)} is not one of {', '.join(STATES)}")
    since, until = _one(params, "since"), _one(params, "until")
    triage = _one(params, "triage", TRIAGE_FILTERS)
    assignee = _one(params, "assignee")
    query = AlertQuery(
        states=multi["state"], severities=multi["severity"], rules=multi["rule"], accounts=multi["account"],
        regions=multi["region"], assignee=("" if assignee == "-" else assignee),
        since=_date(since, "since") if since else None, until=_date(until, "until", end=True) if until else None,
        triage=triage, suppressed=SUPPRESSED_FILTERS[_one(params, "suppressed", tuple(SUPPRESSED_FILTERS)) or "any"],
        cutoffs=cutoffs(targets(engine), at) if triage == OVERDUE and engine is not None else (), at=at)
    if query.since and query.until and query.since >= query.until:
        raise UserError("since: after until")
    return query, _one(params, "sort", ORDERS) or DEFAULT_ORDER


def page(engine, query: AlertQuery, order: str = DEFAULT_ORDER, number: int = 1, size: int = 50) -> dict:
    """Page `number` (from 1) of the alerts through `query`: {rows, total, number, pages, by_state}."""
    if order not in ORDERS:
        raise UserError(f"sort: {shown(order)} is not one of {', '.join(ORDERS)}")
    size = max(1, min(int(size), max(PAGE_SIZES)))
    with reading(engine) as session:
        total = alert_filters.count(session, query)
        pages = max(1, -(-total // size))
        number = max(1, min(int(number), pages))
        rows = alert_filters.page(session, query, order, limit=size, offset=(number - 1) * size)
        by_state = alert_filters.counts_by_state(session, query)
    return {"rows": rows, "total": total, "number": number, "pages": pages, "by_state": by_state}


def documents(engine, query: AlertQuery, order: str = DEFAULT_ORDER, limit: int = 1000) -> tuple[list[dict], int]:
    """`alerts --format json`: (the first `limit` alerts through `query`, each a JSON-ready document
    with its triage and evidence; how many there are in all)."""
    with reading(engine) as session:
        total = alert_filters.count(session, query)
        return [document(session, a) for a in alert_filters.page(session, query, order, limit=limit)], total


def facets(engine) -> dict[str, list[str]]:
    """The values each filter can take (rules, severities, accounts, regions, assignees in the store)."""
    with reading(engine) as session:
        return alert_filters.facets(session)


def record_row(record: dict) -> dict:
    """A CloudTrail record (as stored: redacted) as the detail shows it."""
    ident = record.get("userIdentity") if isinstance(record.get("userIdentity"), dict) else {}
    params = record.get("requestParameters")
    return {"time": str(record.get("eventTime", "")), "event": str(record.get("eventName", "")),
            "source": str(record.get("eventSource", "")),
            "principal": str(ident.get("arn") or ident.get("principalId") or ident.get("type") or ""),
            "source_ip": str(record.get("sourceIPAddress", "")), "user_agent": str(record.get("userAgent", "")),
            "error": str(record.get("errorCode") or ""), "account": str(record.get("recipientAccountId", "")),
            "region": str(record.get("awsRegion", "")),
            "request_parameters": json.dumps(params, sort_keys=True, default=str) if params is not None else "",
            "event_id": str(record.get("eventID", ""))}


def _resources(alert: dict, records: list[dict]) -> tuple[list[str], list[str]]:
    """(resources, accounts) an alert names: its `resource` label and the ARNs in its CloudTrail records."""
    resources = [alert["labels"]["resource"]] if alert["labels"].get("resource") else []
    for rec in records:
        listed = rec.get("resources")
        for res in listed if isinstance(listed, list) else []:
            if isinstance(res, dict) and isinstance(res.get("ARN"), str):
                resources.append(res["ARN"])
    accounts = [alert["labels"]["account"]] if alert["labels"].get("account") else []
    accounts += [str(r["recipientAccountId"]) for r in records if r.get("recipientAccountId")]
    return list(dict.fromkeys(resources))[:100], list(dict.fromkeys(accounts))


def detail(engine, alert_id: int, at: Optional[dt.datetime] = None) -> dict:
    """One alert and what stands behind it: {alert, records (CloudTrail, as record_row), evidence
    (a regression's hashed API responses), resources, findings, suppression, triage (time_to_triage),
    history (the audit trail, oldest first)}."""
    at = at or now()
    limits = targets(engine)
    with reading(engine) as session:
        alert = stored.get(session, alert_id)
        if alert is None:
            raise UserError(f"alert: no alert {alert_id}")
        behind = evidence_of(session, alert, limit=100)
        records = [] if alert["rule"] == REGRESSED else [r for r in behind if isinstance(r, dict)]
        resources, accounts = _resources(alert, records)
        out = {"alert": alert, "records": [record_row(r) for r in records],
               "evidence": behind if alert["rule"] == REGRESSED else [], "resources": resources,
               "findings": alert_detail.open_findings_on(session, resources, accounts),
               "suppression": (stored_suppressions.get(session, alert["suppression_id"])
                               if alert["suppression_id"] else None),
               "triage": time_to_triage(alert, limits, at), "history": audit_log.trail(session, "alert", alert_id)}
    return out
