"""Populations of an audit period (SOC 2 Type II: the auditor obtains every occurrence of a control in
the period, then samples from it). Each population is a table of plain rows — every value text, so a
row read back from its CSV is the row that was hashed — with a stable `id`, a count and a SHA-256 of
its canonical rows (docs/samples.md):

  resources  the resources of a criterion's checks' types observed by a run of the period
             (history.period_evidence.population; the packet's data/<ID>-population.csv)
  alerts     CC7.3: every alert first seen or open in the period, with its triage
  incidents  CC7.4/CC7.5: every incident open in the period, with its post-mortem fields
  changes    CC8.1: the CloudTrail write events kept in the period, who/when/what and their ticket
  access     CC6.2/CC6.3: the IAM users and roles the period's runs saw, and the IAM write events
  manual     the catalog's manual evidence items (state at the period's end) and their documents
  app_events CC6.3 / CC8.1: the application's audit events read from CloudWatch Logs (history.app_events)
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.evaluate.tickets import ticket_of, ticket_pattern
from auditbook.history import app_events, period_evidence
from auditbook.history.incidents import incidents_in_period
from auditbook.history.period import Period, PeriodRuns, period_runs
from auditbook.history.resource_timeline import (
    COVERAGE_SLACK,
    cloudtrail_region,
    coverage_gaps,
)
from auditbook.history.scope import out_of_scope_rows
from auditbook.store import changes as stored_changes
from auditbook.store import period_events
from auditbook.store import scope as stored_scope
from auditbook.store.incidents import POSTMORTEM_FIELDS
from auditbook.store.session import reading

KINDS = ("resources", "alerts", "incidents", "changes", "access", "manual", app_events.KIND)
CRITERION_KINDS = ("resources", "manual", app_events.KIND)  # one criterion's (app_events: or every kind)
# the population a criterion is sampled from unless --population says otherwise
CRITERION_KIND = {"CC7.3": "alerts", "CC7.4": "incidents", "CC7.5": "incidents", "CC8.1": "changes",
                  "CC6.2": "access", "CC6.3": "access"}
IAM_TYPES = ("aws.iam.role", "aws.iam.user")
IAM_SOURCES = period_events.IAM_SOURCES
IAM_PRINCIPAL = re.compile(r":iam::[0-9]{12}:(user|role|group)/")  # whose access an IAM call changed
ACCESS_KINDS = (  # IAM calls by what they do to a person's access (the access population's change_kind)
    ("joiner", ("CreateUser", "CreateLoginProfile", "AddUserToGroup", "CreateRole", "CreateGroup",
                "CreateGroupMembership", "CreateAccountAssignment")),
    ("leaver", ("DeleteUser", "DeleteLoginProfile", "RemoveUserFromGroup", "DeleteRole", "DeleteGroup",
                "DeleteGroupMembership", "DeleteAccountAssignment")),
    ("credential", ("CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "UpdateLoginProfile",
                    "EnableMFADevice", "DeactivateMFADevice", "ResyncMFADevice", "UploadSSHPublicKey")),
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")  # a spreadsheet reads these as a formula (or the escape)
ASCII_SPACE = "".join(chr(i) for i in range(128) if chr(i).isspace())
# a printable ASCII character that starts no formula: nothing before it to skip, and no character after it
# can make NFKC put a formula start in its place (composition makes letters, not = + - @)
_PLAIN_FIRST = frozenset(chr(i) for i in range(0x21, 0x7F)) - set(FORMULA_START)

COLUMNS = {
    "resources": ("id", "resource_type", "account", "region", "resource", "name", "first_seen", "last_seen"),
    "alerts": ("id", "alert", "rule", "severity", "soc2_control", "state_at_period_end", "summary", "labels",
               "first_seen", "fired_at", "decision", "reason", "triaged_by", "triaged_at",
               "minutes_to_triage", "assignee", "incident", "acknowledged_by", "acknowledged_at", "resolved_at"),
    "incidents": ("id", "incident", "title", "severity", "status", "assignee", "created_by", "created_at",
                  "acknowledged_at", "resolved_at", "closed_at", "acknowledge_breached", "resolve_breached",
                  *POSTMORTEM_FIELDS, "action_items", "attachments", "links"),
    "changes": ("id", "event_id", "at", "account", "region", "event_source", "event_name", "principal",
                "principal_type", "session_name", "source_ip", "error_code", "resources", "ticket",
                "ticket_from", "linked", "simulated"),
    app_events.KIND: app_events.COLUMNS,
    "access": ("id", "record", "account", "principal", "name", "resource_type", "first_seen", "last_seen",
               "at", "change_kind", "event_name", "changed_by", "resources", "ticket", "linked", "error_code"),
    "manual": ("id", "record", "criterion", "item", "cadence", "state_at_period_end", "due",
               "matched_to", "not_evidenced", "why", "filename", "sha256", "owner",
               "submitted_by", "uploaded_at", "effective_date", "expires_on", "review", "decided_by", "decided_at",
               "reason", "incident", "evidences", "explanation", "counts", "flags"),
}


@dataclass(frozen=True)
class Population:
    kind: str
    criterion: Optional[str]  # resources are a criterion's; the other kinds are the period's
    period: Period
    rows: list[dict] = field(repr=False)  # sorted by id; every value text
    # changes and access: what CloudTrail input covered the period, and every interval it did not
    # (completeness limits) — not part of the rows or their hash (change_completeness)
    completeness: Optional[dict] = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def sha256(self) -> str:
        return rows_sha256(self.rows)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]


def cell(value) -> str:
    """A value as the text a population row holds (None: empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def _rows(kind: str, items: list[dict]) -> list[dict]:
    """Rows of `kind` (its columns, every value text), sorted by id; an id seen twice is a bug."""
    rows = sorted(({c: cell(item.get(c)) for c in COLUMNS[kind]} for item in items), key=lambda r: r["id"])
    for a, b in zip(rows, rows[1:]):
        if a["id"] == b["id"]:
            raise ValueError(f"population {kind}: id {a['id']!r} twice")
    return rows


def rows_sha256(rows: list[dict]) -> str:
    """SHA-256 of the canonical rows: JSON of the rows sorted by id, keys sorted, no spaces, UTF-8."""
    ordered = sorted(rows, key=lambda r: r["id"])
    text = json.dumps(ordered, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bounds(period: Period) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    return start, dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def _checked_size(kind: str, found: list) -> list:
    if len(found) > period_events.MAX_ROWS:
        raise UserError(f"--population: {kind} has more than {period_events.MAX_ROWS} rows in the period; "
                        "take a shorter period")
    return found


# -- the kinds -------------------------------------------------------------------------------------

def _resources(engine, catalog: Catalog, criterion: str, pruns: PeriodRuns) -> list[dict]:
    types = sorted({c.resource for c in catalog.checks_for(criterion)})
    found = period_evidence.population(engine, types, pruns)
    return [{**r, "id": "|".join((r["resource_type"], r["account"], r["region"], r["resource"]))} for r in found]


def _minutes(start: Optional[dt.datetime], end: Optional[dt.datetime]) -> Optional[str]:
    return None if start is None or end is None else f"{(end - start).total_seconds() / 60:.1f}"


def _alerts(engine, period: Period) -> list[dict]:
    since, until = _bounds(period)
    with reading(engine) as session:
        found = _checked_size("alerts", period_events.alerts_in(session, since, until))
    return [{**a, **_as_of_period_end(a, until), "id": f"alert-{a['id']:09d}", "alert": a["id"],
             "decision": a["triage_decision"], "reason": a["triage_reason"],
             "minutes_to_triage": _minutes(a["fired_at"] or a["first_seen"], a["triaged_at"]),
             "incident": a["incident_id"]} for a in found]


def _as_of_period_end(alert: dict, until: dt.datetime) -> dict:
    """What the alert was at the period's end, so a closed period's population does not change when
    the alert fires again, is acknowledged or resolves later (an auditor's re-draw must match): its state
    then; its last-seen time and count move with every later firing, so neither is listed (first seen
    and fired at are stable)."""
    def by_end(at):
        return at if at is not None and at < until else None
    state = ("resolved" if by_end(alert["resolved_at"]) else
             "acknowledged" if by_end(alert["acknowledged_at"]) else "firing")
    return {"state_at_period_end": state, "resolved_at": by_end(alert["resolved_at"]),
            "acknowledged_at": by_end(alert["acknowledged_at"]),
            "acknowledged_by": alert["acknowledged_by"] if by_end(alert["acknowledged_at"]) else None}


def _incidents(engine, period: Period) -> list[dict]:
    return [{**i, "id": f"incident-{i['id']:09d}", "incident": i["id"], "action_items": len(i["actions"]),
             "attachments": len(i["attachments"]), "links": [f"{link['kind']}:{link['ref']}" for link in i["links"]]}
            for i in incidents_in_period(engine, period)]


def _write_events(engine, period: Period, pattern) -> list[dict]:
    since, until = _bounds(period)
    with reading(engine) as session:
        found = _checked_size("changes", period_events.changes_in(session, since, until))
    for event in found:
        event["ticket"], event["ticket_from"] = ticket_of(event, pattern)
        event["linked"] = event["ticket"] is not None
    return found


def _changes(engine, period: Period, pattern) -> list[dict]:
    return [{**e, "id": f"change-{e['event_id']}", "resources": "; ".join(e["resources"])}
            for e in _write_events(engine, period, pattern)]


def access_change_kind(event_name: str) -> str:
    """What an IAM write event did to someone's access: joiner, leaver, credential or permission."""
    for kind, names in ACCESS_KINDS:
        if event_name in names:
            return kind
    return "permission" if "Policy" in event_name or "Permission" in event_name else "other"


def _access(engine, period: Period, pruns: PeriodRuns, pattern) -> list[dict]:
    principals = [{**r, "id": f"principal-{r['resource']}", "record": "principal", "principal": r["resource"]}
                  for r in period_evidence.population(engine, list(IAM_TYPES), pruns)]
    changes = [{**e, "id": f"access-change-{e['event_id']}", "record": "access change",
                "change_kind": access_change_kind(e["event_name"]),
                "changed_by": e["principal"], "principal": "; ".join(k for k in e["resources"] if IAM_PRINCIPAL.search(k)),
                "resources": "; ".join(e["resources"])}
               for e in _write_events(engine, period, pattern) if e["event_source"] in IAM_SOURCES]
    return principals + changes


def _manual(engine, catalog: Catalog, period: Period, criterion: Optional[str]) -> list[dict]:
    out = []
    for control in catalog.controls:
        if criterion is not None and control.id != criterion:
            continue
        found = period_evidence.manual_evidence(engine, catalog, control.id, period)
        for item in found["items"]:
            out.append({**item, "id": f"item-{control.id}-{item['item']}", "record": "required item",
                        "criterion": control.id})
        for n, doc in enumerate(found["documents"]):
            out.append({**doc, "id": f"document-{control.id}-{doc['sha256']}-{n:04d}", "record": "document",
                        "criterion": control.id})
    return out


def _pairs_in_scope(session, lo: dt.datetime, hi: dt.datetime, period: Period) -> list[tuple[str, str]]:
    """(account, CloudTrail region) of every scope the period's runs read, less what was out of scope
    in the period: where the period's write events are logged."""
    runs = stored_scope.run_accounts(session, lo, hi)
    if not runs:
        return []
    out = out_of_scope_rows(stored_scope.read_scope(session)["entries"], period)
    excluded = {(r["kind"], r["value"]) for r in out if _out_for_whole(r, period)}
    return sorted({(account, cloudtrail_region(region))
                   for account, region in stored_scope.regions_read(session, runs[0].run_id, runs[-1].run_id)
                   if ("account", account) not in excluded and ("region", region) not in excluded})


def _out_for_whole(row: dict, period: Period) -> bool:
    """Whether an out-of-scope row covers the whole period (excluded by its start, not lifted before
    its end): a pair in scope for part of it keeps its coverage gaps — never hidden by a short exclusion."""
    excluded = dt.datetime.fromisoformat(row["excluded_at"]).date()
    lifted = dt.datetime.fromisoformat(row["lifted_at"]).date() if row["lifted_at"] else None
    return excluded <= period.start and (lifted is None or lifted >= period.end)


def change_completeness(engine, period: Period, now: Optional[dt.datetime] = None) -> dict:
    """How complete the period's change population is: for each account and region in scope, the
    CloudTrail input the store read over the period (to now, while it runs; the per-file coverage of
    issue 13) and each interval no input covered — a completeness limit (a trail that never logged,
    logs not delivered or not read): changes made then are not in the population."""
    since, until = _bounds(period)
    until = min(until, (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0))
    pairs, limits = [], []
    with reading(engine) as session:
        read = stored_changes.coverage_by_pair(session, since - COVERAGE_SLACK, until + COVERAGE_SLACK)
        for account, region in _pairs_in_scope(session, since, until, period):
            rows = read.get((account, region), [])
            gaps = coverage_gaps(rows, since, until) if until > since else []
            pairs.append({"account": account, "region": region, "log_files": len(rows), "gaps": len(gaps),
                          "unread_records": sum(r["unread"] for r in rows)})
            reason = ("no CloudTrail input read for this account and region in the period (e.g. a trail that "
                      "never logged)" if not rows else "no CloudTrail input read for this interval")
            limits.extend({"account": account, "region": region, "from": cell(a), "to": cell(b), "reason": reason}
                          for a, b in gaps)
    return {"source": "CloudTrail input read by the store (auditbook trail ingest / lookup), per account and region",
            "from": cell(since), "to": cell(until), "accounts_regions": pairs, "limits": limits,
            "complete": bool(pairs) and not limits,
            "note": ("" if pairs else "no run of the period read any account: the population's completeness is "
                     "unknown")}


def population(engine, catalog: Catalog, kind: str, period: Period, criterion: Optional[str] = None,
               pruns: Optional[PeriodRuns] = None, ticket: Optional[str] = None) -> Population:
    """The population of `kind` over the period. `criterion` is needed for resources (its checks'
    types) and narrows manual to one criterion; the other kinds are the whole period's. `ticket`: the
    ticket-reference pattern (default AUDITBOOK_TICKET_PATTERN or the built-in one)."""
    if kind not in KINDS:
        raise UserError(f"--population: {shown(kind)} is not one of {', '.join(KINDS)}")
    if kind in ("resources", "access") and pruns is None:
        pruns = period_runs(engine, period)
    if kind == "resources":
        if criterion is None:
            raise UserError("--population: resources are a criterion's: name the criterion")
        items = _resources(engine, catalog, criterion, pruns)
    elif kind == "alerts":
        items = _alerts(engine, period)
    elif kind == "incidents":
        items = _incidents(engine, period)
    elif kind == "changes":
        items = _changes(engine, period, ticket_pattern(ticket))
    elif kind == "access":
        items = _access(engine, period, pruns, ticket_pattern(ticket))
    elif kind == app_events.KIND:
        items = app_events.app_event_items(engine, period, criterion)
    else:
        items = _manual(engine, catalog, period, criterion)
    complete = (change_completeness(engine, period) if kind in ("changes", "access") else
                app_events.app_completeness(engine, period) if kind == app_events.KIND else None)
    return Population(kind, criterion if kind in CRITERION_KINDS else None, period, _rows(kind, items), complete)


def default_kind(catalog: Catalog, criterion: str) -> str:
    """The population a criterion is sampled from by default: its events for the criteria about events
    (CRITERION_KIND), else its resources when it has automated checks, else its manual evidence."""
    if criterion in CRITERION_KIND:
        return CRITERION_KIND[criterion]
    return "resources" if catalog.checks_for(criterion) else "manual"


def population_file(kind: str, criterion: Optional[str] = None) -> str:
    """The packet's data/ file of a population: population-<kind>.csv, or for one criterion's
    resources or manual evidence population-<kind>-<ID>.csv."""
    return f"population-{kind}-{criterion}.csv" if kind in CRITERION_KINDS and criterion else f"population-{kind}.csv"


# -- CSV: inert in a spreadsheet, and read back to the rows that were hashed -------------------------

def neutralised(text: str) -> str:
    """A cell a spreadsheet cannot read as a formula: text starting with = + - @ (or a tab, a carriage
    return, or the quote itself) gets a leading `'`. Reversible: restored() drops exactly one."""
    return "'" + text if _formula_like(text) else text


def _formula_like(text: str) -> bool:
    """Whether a spreadsheet may read the text as a formula: it starts with = + - @ (tab, carriage
    return, the quote), also after leading spaces, BOMs or zero-width characters, or in a full-width
    form (＝＋－＠, the same characters once NFKC-normalised)."""
    if not text or text[0] in _PLAIN_FIRST:
        return False
    if text.startswith(FORMULA_START):
        return True
    if text.isascii():  # the common case, quickly: NFKC leaves ASCII alone and no ASCII character is Cf
        return text[:64].lstrip(ASCII_SPACE).startswith(FORMULA_START)
    lead = unicodedata.normalize("NFKC", text[:64])
    skipped = next((i for i, ch in enumerate(lead) if not (ch.isspace() or unicodedata.category(ch) == "Cf")),
                   len(lead))
    return lead[skipped:].startswith(FORMULA_START)


def restored(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def completeness_lines(completeness: Optional[dict]) -> list[str]:
    """The population's completeness as the lines heading its CSV (each starting with "#")."""
    if not completeness:
        return []
    pairs, limits = completeness["accounts_regions"], completeness["limits"]
    lines = [f"# completeness: {completeness['source']}, {completeness['from']} to {completeness['to']}: "
             f"{len(pairs)} account/region pair(s), {len(limits)} interval(s) not covered"
             + (f" ({completeness['note']})" if completeness.get("note") else "")]
    lines += [f"# not covered: account {x['account']} region {x['region']} from {x['from']} to {x['to']}: "
              f"{x['reason']}" for x in limits]
    return lines


def write_csv(pop: Population, path: Path) -> None:
    """The population's rows (formula cells neutralised), headed by its completeness lines if any."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        for line in completeness_lines(pop.completeness):
            writer.writerow([line])
        writer.writerow(COLUMNS[pop.kind])
        for row in pop.rows:
            writer.writerow([neutralised(row[c]) for c in COLUMNS[pop.kind]])


def read_csv(path: Path) -> list[dict]:
    """A population CSV back to its rows (the rows it was written from: hash them with rows_sha256)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        while header and len(header) == 1 and header[0].startswith("#"):  # the completeness lines
            header = next(reader, None)
        if not header or header[0] != "id":
            raise UserError(f"{path}: not a population file (its first column must be id)")
        return [dict(zip(header, (restored(v) for v in row))) for row in reader]
