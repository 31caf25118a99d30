"""The system boundary of a period (docs/scope.md): the accounts, regions and AWS services in scope,
what an admin put out of scope (an account, region, tag or resource: who, why, when — never an
exception, which is an accepted risk in the register), the scanned accounts reconciled against the
organisation's account list (an account the organisation had and no run read is a deviation), the
regions each account was not read in and why, what the scope in force left out of each run (a scan
applies it: collect.plan.apply_boundary), and the subservice organisations with the complementary
user-entity controls of subservice-organisations.yaml and the status of their evidence.

Out-of-scope entries live in the store's `scope` setting, changed only by `exclude`/`include` here
(admins: manage_settings), each change versioned and in the audit trail in the same unit of work."""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.catalog.subservice import FILE_NAME, load_subservice
from auditbook.collect.plan import needed_types
from auditbook.collect.records import GLOBAL
from auditbook.collect.targets import known_regions
from auditbook.errors import UserError, shown, unsafe_character
from auditbook.history.period import Period
from auditbook.history.status import (
    counts_of,
    coverage_of,
    judged_on,
    manual_item_states,
    run_statuses,
    status_of,
)
from auditbook.store import accounts as account_names
from auditbook.store import audit_log
from auditbook.store import scope as stored
from auditbook.store.session import reading, writing

KINDS = ("account", "region", "tag", "resource")
MAX_REASON = 1000
ACCOUNT = re.compile(r"[0-9]{12}")
REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+){2,4}")
ARN = re.compile(r"arn:[a-z0-9-]{1,20}:[a-z0-9-]{1,40}:[a-z0-9-]{0,40}:([0-9]{12}|aws)?:\S{1,1900}")
TAG_KEY, TAG_VALUE = 128, 256  # AWS's limits
SUBSERVICE_ITEM = ("CC9.2", "Subservice organisation report (AWS SOC 2) and user-entity controls")
SUBSERVICE = {"organisation": "Amazon Web Services (AWS)", "method": "carve-out",
              "relied_on_for": "physical and environmental security of the data centres, the hardware, "
                               "network and virtualisation beneath every account in scope"}
EVALUATION_NOTE = ("Out of scope is not evaluated: a scan never reads an account or region out of scope when it "
                   "runs, and drops the records of resources and tags out of scope before evaluation, so they "
                   "count in no status, failure or deviation from then on; runs before an entry keep what they "
                   "evaluated. `left_out` says what each entry left out.")


class StaleScope(UserError):
    """The scope changed since it was read: read it again."""


def _no_controls(text: str, field: str) -> None:
    bad = unsafe_character(text)
    if bad is not None:
        raise UserError(f"{field}: {shown(text)} contains the control character {bad!r}")


def checked_value(kind: str, value: Optional[str]) -> str:
    """An account id, region, tag (key=value) or resource ARN to put out of scope, checked; a
    one-line UserError naming the option and value otherwise."""
    if kind not in KINDS:
        raise UserError(f"scope: {shown(kind)} is not one of {', '.join(KINDS)}")
    text = value if isinstance(value, str) else ""
    if kind == "account" and not ACCOUNT.fullmatch(text):
        raise UserError(f"--account: {shown(value)} is not a 12-digit account id")
    if kind == "region" and not REGION.fullmatch(text):
        raise UserError(f"--region: {shown(value)} is not a region name")
    if kind == "resource" and not ARN.fullmatch(text):
        raise UserError(f"--resource: {shown(value)} is not an ARN (arn:partition:service:region:account:resource)")
    if kind == "tag":
        key, sep, tag_value = text.partition("=")
        if not sep or not key.strip() or len(key) > TAG_KEY or len(tag_value) > TAG_VALUE:
            raise UserError(f"--tag: {shown(value)} is not key=value (a key of 1-{TAG_KEY} characters, "
                            f"a value of at most {TAG_VALUE})")
        _no_controls(text, "--tag")
    return text


def checked_reason(reason: Optional[str]) -> str:
    """The reason as typed: required, at most MAX_REASON characters, no control characters but
    tabs and line breaks."""
    if not isinstance(reason, str) or not reason.strip():
        raise UserError("--reason: a reason is required")
    if len(reason) > MAX_REASON:
        raise UserError(f"--reason: {len(reason)} characters; at most {MAX_REASON}")
    _no_controls(reason, "--reason")
    return reason


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _in_force(entries: list[dict], kind: str, value: str) -> Optional[dict]:
    return next((e for e in entries if e["kind"] == kind and e["value"] == value and e.get("lifted") is None), None)


def _change(engine, actor: Actor, kind: str, value: str, reason: str, version: Optional[int], lift: bool) -> dict:
    authorize(actor, "manage_settings")
    value, reason = checked_value(kind, value), checked_reason(reason)
    with writing(engine) as session:
        seen = stored.read_scope(session)
        if version is not None and version != seen["version"]:
            raise StaleScope(f"scope: changed since it was read (version {version}, now {seen['version']}): "
                             "read it again")
        entries = [dict(e) for e in seen["entries"]]
        current = _in_force(entries, kind, value)
        at = {"by": actor.name, "role": actor.role, "at": _now(), "reason": reason}
        if lift:
            if current is None:
                raise UserError(f"--{kind}: {shown(value)} is not out of scope")
            before = dict(current)
            current["lifted"] = at
            entry, action = current, "include_in_scope"
        else:
            if current is not None:
                raise UserError(f"--{kind}: {shown(value)} is already out of scope (entry {current['id']})")
            before = None
            entry = {"id": max((e["id"] for e in entries), default=0) + 1, "kind": kind, "value": value,
                     "excluded": at, "lifted": None}
            entries.append(entry)
            action = "exclude_from_scope"
        new = {"version": seen["version"] + 1, "entries": entries}
        if not stored.write_scope(session, new, seen["version"]):
            raise StaleScope("scope: changed by someone else while this change was made: read it again")
        audit_log.record(session, actor, action, "scope", entry["id"], before=before, after=entry, note=reason)
    return entry


def exclude(engine, actor: Actor, kind: str, value: str, reason: str, version: Optional[int] = None) -> dict:
    """Put an account, region, tag (key=value) or resource ARN out of scope, with the reason: admins
    only; `version` (if given) must be the scope's version the admin saw. Returns the entry."""
    return _change(engine, actor, kind, value, reason, version, lift=False)


def include(engine, actor: Actor, kind: str, value: str, reason: str, version: Optional[int] = None) -> dict:
    """Bring an out-of-scope item back into scope, with the reason (the entry is kept, marked lifted)."""
    return _change(engine, actor, kind, value, reason, version, lift=True)


def current_scope(engine) -> dict:
    """The scope setting: {"version": n, "entries": [every entry, lifted or not]}."""
    with reading(engine) as session:
        return stored.read_scope(session)


def scope_trail(engine) -> list[dict]:
    """Every scope change in the audit trail, oldest first."""
    with reading(engine) as session:
        entries = stored.read_scope(session)["entries"]
        trails = audit_log.trails(session, "scope", [e["id"] for e in entries])
    return sorted((dict(t, entry=int(i)) for i, ts in trails.items() for t in ts), key=lambda t: t["at"])


def _overlaps(entry: dict, period: Period) -> bool:
    start = dt.datetime.fromisoformat(entry["excluded"]["at"]).date()
    lifted = entry.get("lifted")
    end = dt.datetime.fromisoformat(lifted["at"]).date() if lifted else None
    return start <= period.end and (end is None or end >= period.start)


def out_of_scope_rows(entries: list[dict], period: Period) -> list[dict]:
    """The entries out of scope at any time in the period, as flat rows (who, why, when; lifted)."""
    rows = []
    for e in entries:
        if not _overlaps(e, period):
            continue
        lifted = e.get("lifted") or {}
        rows.append({"id": e["id"], "kind": e["kind"], "value": e["value"], "reason": e["excluded"]["reason"],
                     "excluded_by": e["excluded"]["by"], "excluded_role": e["excluded"]["role"],
                     "excluded_at": e["excluded"]["at"], "lifted_by": lifted.get("by"),
                     "lifted_at": lifted.get("at"), "lift_reason": lifted.get("reason")})
    return rows


def out_of_scope_on(engine, day: Optional[dt.date] = None) -> list[dict]:
    """The entries out of scope on a day (default today), as out_of_scope_rows: for the control room."""
    day = day or dt.datetime.now(dt.timezone.utc).date()
    return out_of_scope_rows(current_scope(engine)["entries"], Period(day, day, day.isoformat()))


def _services(catalog, attempted: dict[str, bool]) -> list[dict]:
    """Each resource type the catalog's checks read, its AWS service and whether the period read it."""
    return [{"service": t.service, "resource_type": t.name, "description": t.description,
             "collected": attempted.get(t.name, False)} for t in needed_types(catalog)]


def _reconcile(listings: list, read_days: dict[str, set], names: dict, excluded: dict[str, str]) -> dict:
    """The organisation's accounts (those the --org runs of the period listed) against the accounts
    read: per account the days listed, read and missing; deviations for the accounts in scope."""
    listed: dict[str, set] = defaultdict(set)
    for run in listings:
        for ident in run.identities:
            if isinstance(ident.get("account"), str):
                listed[ident["account"]].add(run.day)
    rows, deviations = [], []
    for account in sorted(listed):
        days, read = listed[account], read_days.get(account, set())
        missing = sorted(days - read)
        status = (f"out of scope: {excluded[account]}" if account in excluded else "not scanned" if not read & days
                  else "partly scanned" if missing else "scanned")
        rows.append({"account": account, "name": names.get(account), "listed_days": len(days),
                     "scanned_days": len(read & days), "missing_days": len(missing), "status": status})
        if status in ("not scanned", "partly scanned"):
            what = ("listed by the organisation but never scanned in the period" if status == "not scanned"
                    else f"not scanned on {len(missing)} of the {len(days)} days the organisation listed it")
            deviations.append({"kind": "account not scanned", "account": account, "name": names.get(account),
                               "deviation": what, "first_missing": missing[0].isoformat(),
                               "last_missing": missing[-1].isoformat()})
    return {"organisation_listed": bool(listings), "listing_runs": len(listings), "accounts": rows,
            "not_in_organisation": sorted(set(read_days) - set(listed)) if listings else [],
            "note": ("The organisation's account list is what each `scan --org` run listed (organizations:"
                     "ListAccounts, ACTIVE accounts), kept in the run's identities." if listings else
                     "No run of the period listed the organisation (scan --org): the scanned accounts "
                     "are not reconciled against an organisation account list.")}, deviations


def _subservice(catalog) -> list[dict]:
    """The subservice organisations of subservice-organisations.yaml (AWS as a carve-out when the
    catalog has no such file), each with the manual item that evidences its report's review."""
    criterion, item = SUBSERVICE_ITEM
    declared = any(c.id == criterion and any(m.name == item for m in c.manual_evidence) for c in catalog.controls)
    orgs = load_subservice(catalog)
    if not orgs:
        return [{**SUBSERVICE, "criterion": criterion, "manual_item": item if declared else None,
                 "complementary_user_entity_controls": f"none declared: no {FILE_NAME} next to the catalog"}]
    return [{"organisation": o.name, "method": o.method, "services": ", ".join(o.services),
             "relied_on_for": o.relied_on_for, "criterion": o.report_item.split(": ", 1)[0],
             "manual_item": o.report_item.split(": ", 1)[1],
             "complementary_user_entity_controls": ", ".join(c.id for c in o.complementary_controls)}
            for o in orgs]


def cuec_rows(engine, catalog, period: Period, today: Optional[dt.date] = None) -> list[dict]:
    """Each complementary user-entity control (subservice-organisations.yaml) with the checks and manual
    items that evidence it and their status by the one rule (history.status): the checks' findings at
    the period's latest run, the items' states on the day the period's evidence is judged."""
    cuecs = [(o.name, c) for o in load_subservice(catalog) for c in o.complementary_controls]
    if not cuecs:
        return []
    resource = {c.id: c.resource for c in catalog.checks}
    with reading(engine) as session:
        runs = stored.run_accounts(session, *_bounds(period))
        last = runs[-1].run_id if runs else None
        checks = {k for _, c in cuecs for k in c.checks}  # counted by status: no evidence read
        found = [f for f in run_statuses(session, last) if f["check"] in checks] if last is not None else []
        attempted = stored.types_attempted(session, last, last) if last is not None else {}
        states = manual_item_states(session, catalog, judged_on(period.end, today), period.start)
    item_state = {f"{s.criterion}: {s.item}": s.state for s in states}
    by_check: dict[str, list] = defaultdict(list)
    for f in found:
        by_check[f["check"]].append(f)
    rows = []
    for organisation, cuec in cuecs:
        evidence = [{"check": k, "status": status_of(counts_of(by_check[k]), [],
                                                     coverage_of([resource[k]], attempted))} for k in cuec.checks]
        items = [{"item": i, "state": item_state.get(i, "missing")} for i in cuec.manual_items]
        everything = [f for k in cuec.checks for f in by_check[k]]
        status = status_of(counts_of(everything), [i["state"] for i in items],
                           coverage_of({resource[k] for k in cuec.checks}, attempted))
        rows.append({"id": cuec.id, "subservice_organisation": organisation, "statement": cuec.statement,
                     "criteria": cuec.criteria, "checks": evidence, "manual_items": items, "status": status})
    return rows


def _bounds(period: Period) -> tuple[dt.datetime, dt.datetime]:
    lo = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    return lo, dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def scope_document(engine, catalog, period: Period) -> dict:
    """The period's scope and boundary for the packet's data/scope.json and its index (plain JSON
    values): accounts with names, regions, services, out of scope, reconciliation and deviations."""
    with reading(engine) as session:
        runs = stored.run_accounts(session, *_bounds(period))
        first, last = (runs[0].run_id, runs[-1].run_id) if runs else (0, -1)
        read = stored.accounts_read(session, first, last)
        regions = stored.regions_read(session, first, last)
        attempted = stored.types_attempted(session, first, last)
        names = account_names.names(session)
        entries = stored.read_scope(session)["entries"]
    day_of = {r.run_id: r.day for r in runs}
    read_days: dict[str, set] = defaultdict(set)
    for run_id, account in read:
        read_days[account].add(day_of[run_id])
    by_account: dict[str, set] = defaultdict(set)
    for account, region in regions:
        if region != GLOBAL:  # the scope of global services (IAM, S3's account settings), not a region
            by_account[account].add(region)
    out = out_of_scope_rows(entries, period)
    excluded_accounts = {r["value"]: r["reason"] for r in out if r["kind"] == "account"}
    reconciliation, deviations = _reconcile([r for r in runs if r.organisation], read_days, names, excluded_accounts)
    listed = sorted(set(read_days) | {i["account"] for r in runs for i in r.identities
                                      if i.get("out_of_scope") and isinstance(i.get("account"), str)})
    not_read = regions_not_read(listed, by_account, runs, out)
    return {"period": period.as_dict(), "runs": len(runs),
            "accounts": [{"account": a, "name": names.get(a), "scanned_days": len(read_days[a]),
                          "regions": sorted(by_account[a]), "regions_not_read": not_read[a],
                          "out_of_scope": a in excluded_accounts, "out_of_scope_reason": excluded_accounts.get(a)}
                         for a in listed],
            "regions": sorted(set().union(*by_account.values())), "services": _services(catalog, attempted),
            "out_of_scope": out, "evaluation": EVALUATION_NOTE, "left_out": left_out_in(runs),
            "reconciliation": reconciliation, "deviations": deviations,
            "subservice_organisations": _subservice(catalog),
            "complementary_user_entity_controls": cuec_rows(engine, catalog, period)}


def left_out_in(runs: list) -> list[dict]:
    """What each out-of-scope entry left out of the period's runs (their parameters "out_of_scope"):
    in how many runs it was in force, the records the latest of them dropped, the accounts and
    regions it kept the scans from reading, and a sentence for the packet."""
    rows: dict[int, dict] = {}
    for run in runs:
        for e in run.left_out:
            if not isinstance(e.get("entry"), int):
                continue
            row = rows.setdefault(e["entry"], {"entry": e["entry"], "kind": e.get("kind"), "value": e.get("value"),
                                               "reason": e.get("reason"), "runs": 0, "first_day": run.day.isoformat(),
                                               "accounts_not_read": set(), "regions_not_read": set()})
            row.update(runs=row["runs"] + 1, last_day=run.day.isoformat(), records=int(e.get("records") or 0),
                       resources=[r for r in e.get("resources") or [] if isinstance(r, str)])  # the latest run's
            row["accounts_not_read"] |= set(e.get("accounts_not_read") or [])
            row["regions_not_read"] |= set(e.get("regions_not_read") or [])
    for row in rows.values():
        row["accounts_not_read"], row["regions_not_read"] = sorted(row["accounts_not_read"]), sorted(row["regions_not_read"])
        row["statement"] = (f"{row['records']} resources out of scope by entry {row['entry']} ({row['kind']} "
                            f"{row['value']}), excluded from every count in {row['runs']} runs")
    return sorted(rows.values(), key=lambda r: r["entry"])


def regions_not_read(accounts: list[str], read: dict[str, set], runs: list, out: list[dict]) -> dict[str, list[dict]]:
    """Per account, each region the period's scans did not read in it and why: out of scope (the
    entry's reason), asked for by a scan's --regions but not read (the account out of scope or not
    reached, or an evidence gap), or not in the scans' --regions. The regions are the partition's as
    botocore knows them (collect.targets.known_regions): the scan does not list which the account enabled."""
    requested = {r for run in runs for r in run.regions_requested}
    excluded = {r["value"]: r for r in out if r["kind"] == "region"}
    universe = set(known_regions()) | requested | set(excluded)
    result = {}
    for account in accounts:
        rows = []
        for region in sorted(universe - read.get(account, set())):
            entry = excluded.get(region)
            why = (f"out of scope: {entry['reason']} (entry {entry['id']})" if entry else
                   "in the scan's --regions, not read (the account was not reached or an evidence gap)"
                   if region in requested else "not in the scan's --regions")
            rows.append({"region": region, "reason": why})
        result[account] = rows
    return result


def index_tables(doc: dict) -> dict[str, list[dict]]:
    """scope_document's nested parts as flat rows for the packet index's tables: regions read and not
    read per account, what each entry left out, and each CUEC with its evidence and status."""
    def regions(a: dict) -> dict:
        why = a["regions_not_read"]
        return {"account": a["account"], "name": a["name"], "regions_read": ", ".join(a["regions"]),
                "out_of_scope": "; ".join(f"{r['region']}: {r['reason']}" for r in why
                                          if r["reason"].startswith("out of scope")),
                "asked_for_not_read": ", ".join(r["region"] for r in why if r["reason"].startswith("in the scan")),
                "not_in_scan_regions": sum(1 for r in why if r["reason"] == "not in the scan's --regions")}
    return {
        "regions": [regions(a) for a in doc["accounts"]],
        "left_out": [{"entry": r["entry"], "kind": r["kind"], "value": r["value"], "reason": r["reason"],
                      "runs": r["runs"], "from": r["first_day"], "to": r["last_day"], "records_left_out": r["records"],
                      "accounts_not_read": ", ".join(r["accounts_not_read"]),
                      "regions_not_read": ", ".join(r["regions_not_read"])} for r in doc["left_out"]],
        "cuecs": [{"id": c["id"], "organisation": c["subservice_organisation"], "statement": c["statement"],
                   "criteria": ", ".join(c["criteria"]),
                   "checks": "; ".join(f"{k['check']} {k['status']}" for k in c["checks"]),
                   "manual_items": "; ".join(f"{i['item']} {i['state']}" for i in c["manual_items"]),
                   "status": c["status"]} for c in doc["complementary_user_entity_controls"]],
    }
