"""Checks over collected records → findings. Pure: no AWS, no database.

Status: PASS, FAIL, or ERROR (the evidence needed could not be read, or the condition could not be
evaluated); the exception register later turns matched FAILs into EXCEPTED (auditbook.evaluate.risk_register).
A gap never turns into PASS and never disappears: a scope whose list call failed gets one ERROR
finding per check for the whole scope.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from jmespath import exceptions as jexc

from auditbook.catalog.model import Catalog, Check
from auditbook.plugins import check_functions
from auditbook.collect.runner import Collection, Gap, Record
from auditbook.catalog.expressions import AuditFunctions, analyse, compile_expression, options, truthy

SCOPE_WIDE = "*"          # resource id of a finding about a whole scope (its list call failed)
ACCOUNT_SCOPE = "account"  # scope_region of an account-wide (aggregate) finding


@dataclass(slots=True)
class Finding:
    check: str
    controls: list[str]
    status: str
    severity: str
    account: str
    region: str
    scope_region: str
    resource_type: str
    resource_id: str
    resource: str
    message: str
    evidence: list[str] = field(default_factory=list)
    resource_name: str = ""

    def key(self) -> tuple:
        return (self.check, self.account, self.scope_region, self.resource_type, self.resource_id)

    def as_dict(self) -> dict:
        return {"check": self.check, "controls": self.controls, "status": self.status,
                "severity": self.severity, "account": self.account, "region": self.region,
                "resource_type": self.resource_type, "resource": self.resource,
                "resource_name": self.resource_name, "message": self.message,
                "evidence": self.evidence}


class _Compiled:
    def __init__(self, check: Check):
        self.check = check
        self.applies = compile_expression(check.applies) if check.applies else None
        self.expect = compile_expression(check.expect) if check.expect else None
        self.depends_on: set[str] = set()
        self.reads_all = False
        for parsed in (self.applies, self.expect):
            if parsed is not None:
                info = analyse(parsed)
                self.depends_on |= info.types
                self.reads_all |= "all" in info.fields


class Evaluator:
    def __init__(self, catalog: Catalog, collection: Collection, now: dt.datetime | None = None):
        self.catalog = catalog
        self.collection = collection
        self.now = now or dt.datetime.now(dt.timezone.utc)
        self.by_type: dict[str, list[Record]] = defaultdict(list)
        for rec in collection.records:
            self.by_type[rec.type].append(rec)
        self.scopes_by_type = defaultdict(list)
        for scope in collection.scopes:
            self.scopes_by_type[scope.resource_type].append(scope)
        self._values: dict[tuple, list] = {}
        self.functions = AuditFunctions(self.now, self._lookup)
        self.check_functions = check_functions() if any(c.function for c in catalog.checks) else {}
        self.opts = options(self.functions)

    def _lookup(self, rtype: str, fieldname: str) -> list:
        key = (rtype, fieldname)
        if key not in self._values:
            self._values[key] = [r.data.get(fieldname) for r in self.by_type.get(rtype, [])
                                 if r.data.get(fieldname) is not None]
        return self._values[key]

    def _type_gaps(self, rtype: str, account: str | None = None) -> list[Gap]:
        gaps = [s.gap for s in self.scopes_by_type.get(rtype, []) if s.gap and (account is None or s.account == account)]
        gaps += [g for r in self.by_type.get(rtype, []) if account is None or r.account == account
                 for g in r.gaps.values()]
        return gaps

    def _finding(self, c: _Compiled, status, account, region, scope_region, rid, resource, message, evidence=(),
                 name=""):
        return Finding(c.check.id, list(c.check.controls), status, c.check.severity, account, region,
                       scope_region, c.check.resource, rid, resource, message, sorted(set(evidence)), name or rid)

    def _test(self, c: _Compiled, data: dict) -> tuple[str | None, str]:
        """(status or None when the check does not apply, message)."""
        try:
            if c.applies is not None and not truthy(c.applies.search(data, options=self.opts)):
                return None, ""
            if c.expect is not None:
                met = truthy(c.expect.search(data, options=self.opts))
            else:
                met = bool(self.check_functions[c.check.function](data))
        except (jexc.JMESPathError, TypeError, ValueError, KeyError) as exc:
            return "ERROR", f"cannot evaluate {c.check.id}: {type(exc).__name__}: {exc}"
        return ("PASS", c.check.title) if met else ("FAIL", f"not met: {c.check.title}")

    def _dependency_error(self, c: _Compiled) -> str | None:
        for rtype in sorted(c.depends_on):
            gaps = self._type_gaps(rtype)
            if gaps:
                return f"depends on {rtype}, which has {len(gaps)} evidence gap(s); first: {gaps[0].reason()}"
        return None

    def run(self) -> list[Finding]:
        out: list[Finding] = []
        for check in self.catalog.checks:
            c = _Compiled(check)
            out.extend(self._account_check(c) if check.scope == "account" else self._resource_check(c))
        return out

    def _resource_check(self, c: _Compiled) -> list[Finding]:
        rtype = c.check.resource
        out = []
        for scope in self.scopes_by_type.get(rtype, []):
            # a failed list hides which resources carry the scoping tags: the gap is reported regardless
            if scope.gap and c.check.covers_account(scope.account):
                out.append(self._finding(c, "ERROR", scope.account, scope.region, scope.region, SCOPE_WIDE,
                                         f"{rtype} in {scope.account}/{scope.region}", scope.gap.reason(),
                                         name=f"all {rtype} in {scope.region}"))
        dep_error = self._dependency_error(c)
        for rec in self.by_type.get(rtype, []):
            if not c.check.in_scope(rec.account, rec.tags):
                continue
            where = (rec.account, rec.region, rec.scope_region, rec.id, rec.arn)
            if rec.gaps:
                status, message = "ERROR", "; ".join(g.reason() for g in rec.gaps.values())
            elif dep_error:
                status, message = "ERROR", dep_error
            else:
                status, message = self._test(c, rec.data)
            if status:
                out.append(self._finding(c, status, *where, message, rec.evidence, rec.name))
        return out

    def _account_check(self, c: _Compiled) -> list[Finding]:
        rtype = c.check.resource
        accounts = sorted({s.account for s in self.scopes_by_type.get(rtype, []) if c.check.covers_account(s.account)})
        tagged = [r for r in self.by_type.get(rtype, []) if c.check.matches_tags(r.tags)]
        every = [r.data for r in tagged]  # "all": every account's records (an organisation trail covers members)
        out = []
        for account in accounts:
            records = [r for r in tagged if r.account == account]
            evidence = [h for r in records for h in r.evidence]
            gaps = self._type_gaps(rtype, None if c.reads_all else account)
            args = (account, "global", ACCOUNT_SCOPE, account, f"account {account}")
            name = {"name": "account"}
            if gaps:
                out.append(self._finding(c, "ERROR", *args, f"{len(gaps)} evidence gap(s); first: {gaps[0].reason()}",
                                         evidence, **name))
                continue
            dep_error = self._dependency_error(c)
            if dep_error:
                out.append(self._finding(c, "ERROR", *args, dep_error, evidence, **name))
                continue
            status, message = self._test(c, {"resources": [r.data for r in records], "all": every})
            if status:
                out.append(self._finding(c, status, *args, message, evidence, **name))
        return out


def evaluate(catalog: Catalog, collection: Collection, now: dt.datetime | None = None) -> list[Finding]:
    return Evaluator(catalog, collection, now).run()


def criterion_status(counts: dict, needs_evidence: bool) -> str:
    """A criterion's overall state: a failure outranks a gap, a gap outranks missing manual evidence;
    accepted exceptions are shown as such; PASS only when nothing is outstanding."""
    if counts["FAIL"]:
        return "FAIL"
    if counts["ERROR"]:
        return "ERROR"
    if needs_evidence:
        return "NEEDS_EVIDENCE"
    if counts["EXCEPTED"]:
        return "EXCEPTED"
    return "PASS"


def summarise(catalog: Catalog, findings: list[Finding], needs_evidence: set[str] | None = None) -> list[dict]:
    """Per criterion: counts of PASS / FAIL / ERROR / EXCEPTED over its automated checks, and its status
    (NEEDS_EVIDENCE when required manual evidence is missing or expired)."""
    return _summary(catalog, ((f.controls, f.status) for f in findings), needs_evidence)


def summarise_stored(catalog: Catalog, rows: list[dict], needs_evidence: set[str] | None = None) -> list[dict]:
    """summarise() over findings as the store gives them back (dicts)."""
    return _summary(catalog, ((r["controls"], r["status"]) for r in rows), needs_evidence)


def _summary(catalog: Catalog, pairs, needs_evidence: set[str] | None) -> list[dict]:
    needs_evidence = needs_evidence or set()
    counts = {c.id: {"PASS": 0, "FAIL": 0, "ERROR": 0, "EXCEPTED": 0} for c in catalog.controls}
    for controls, status in pairs:
        for cid in controls:
            if cid in counts:
                counts[cid][status] += 1
    out = []
    for c in catalog.controls:
        checks = len(catalog.checks_for(c.id))
        out.append({"control": c.id, "title": c.title, "checks": checks, **counts[c.id],
                    "status": criterion_status(counts[c.id], c.id in needs_evidence)})
    return out
