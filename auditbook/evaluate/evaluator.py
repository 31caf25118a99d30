"""Checks over collected records → findings. Pure: no AWS, no database.

Status: PASS, FAIL, or ERROR (the evidence needed could not be read, or the condition could not be
evaluated: the rule of auditbook.evaluate.conditions, which the posture alert rules share); the exception register later turns matched FAILs into EXCEPTED (auditbook.evaluate.risk_register).
A gap never turns into PASS and never disappears: a scope whose list call failed gets one ERROR
finding per check for the whole scope.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from auditbook.catalog.expressions import root_reads
from auditbook.catalog.messages import MessageTemplate, compile_template
from auditbook.catalog.model import Catalog, Check
from auditbook.collect.records import Collection
from auditbook.evaluate.conditions import (
    MATCH,
    NO_MATCH,
    NOT_APPLICABLE,
    Condition,
    Context,
    SharedValues,
    Verdict,
    evaluate_type,
)
from auditbook.evaluate.observed import observed, rendered
from auditbook.plugins import check_functions

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
    """A check with its condition compiled (auditbook.evaluate.conditions), for one evaluation."""

    def __init__(self, check: Check):
        self.check = check
        self.condition = Condition.compile(expect=check.expect, applies=check.applies, function=check.function or "")
        self.message = compile_template(check.message) if check.message else None
        # what a document of this check holds that is the same in every document: an account check's `all`
        self.shared_fields = frozenset({"all"}) if check.scope == "account" else frozenset()
        self._settled: MessageTemplate | None = None

    def fail_message(self, data: dict, opts) -> str:
        """The FAIL message on `data`. A placeholder that reads nothing of the document but its shared
        fields (e.g. the scan's trail log groups, `values(…)`) says the same for every resource or
        account: it is written once, on the first failure, and kept as text."""
        if self._settled is None:
            self._settled = MessageTemplate(tuple(
                rendered(MessageTemplate((part,)), data, opts)
                if not isinstance(part, str) and root_reads(part.parsed) <= self.shared_fields else part
                for part in self.message.parts))
        return rendered(self._settled, data, opts)


class Evaluator:
    """The catalog's checks over one collection, through the shared conditions.Context: a record's
    verdict becomes PASS (MATCH), FAIL (NO_MATCH) or ERROR; a failed scope one ERROR per check."""

    def __init__(self, catalog: Catalog, collection: Collection, now: dt.datetime | None = None):
        self.catalog = catalog
        self.collection = collection
        functions = check_functions() if any(c.function for c in catalog.checks) else {}
        self.context = Context(collection, now, functions)
        self.now = self.context.now

    def _finding(self, c: _Compiled, status, account, region, scope_region, rid, resource, message, evidence=(),
                 name=""):
        return Finding(c.check.id, list(c.check.controls), status, c.check.severity, account, region,
                       scope_region, c.check.resource, rid, resource, message, sorted(set(evidence)), name or rid)

    def _test(self, c: _Compiled, data: dict, shared: SharedValues | None = None) -> tuple[str | None, str]:
        """(status or None when the check does not apply, message)."""
        return self._said(c, self.context.apply(c.condition, data, shared), data)

    def _said(self, c: _Compiled, verdict: Verdict, data: dict) -> tuple[str | None, str]:
        """The status and message; a FAIL says what is wrong — the check's own message, else what the
        resource holds under the check's expression (evaluate/observed.py)."""
        status, message = self._status(c, verdict)
        if status == "FAIL" and c.message is not None:
            return status, c.fail_message(data, self.context.opts)
        if status == "FAIL" and c.condition.expect is not None:
            found = observed(c.condition.expect, data, self.context.opts)
            message = f"{message} — {found}" if found else message
        return status, message

    @staticmethod
    def _status(c: _Compiled, verdict: Verdict) -> tuple[str | None, str]:
        if verdict.outcome == MATCH:
            return "PASS", c.check.title
        if verdict.outcome == NO_MATCH:
            return "FAIL", f"not met: {c.check.title}"
        if verdict.outcome == NOT_APPLICABLE:
            return None, ""
        return "ERROR", f"cannot evaluate {c.check.id}: {verdict.reason}"

    def run(self) -> list[Finding]:
        out: list[Finding] = []
        for check in self.catalog.checks:
            c = _Compiled(check)
            out.extend(self._account_check(c) if check.scope == "account" else self._resource_check(c))
        return out

    def _resource_check(self, c: _Compiled) -> list[Finding]:
        rtype = c.check.resource
        result = evaluate_type(self.context, rtype, c.condition,
                               include=lambda rec: c.check.in_scope(rec.account, rec.tags))
        out = []
        for scope in result.scope_gaps:
            # a failed list hides which resources carry the scoping tags: the gap is reported regardless
            if c.check.covers_account(scope.account):
                out.append(self._finding(c, "ERROR", scope.account, scope.region, scope.region, SCOPE_WIDE,
                                         f"{rtype} in {scope.account}/{scope.region}", scope.gap.reason(),
                                         name=f"all {rtype} in {scope.region}"))
        for rec, verdict in result.records:
            status, message = ("ERROR", verdict.reason) if verdict.evidence_gap else self._said(c, verdict, rec.data)
            if status:
                out.append(self._finding(c, status, rec.account, rec.region, rec.scope_region, rec.id, rec.arn,
                                         message, rec.evidence, rec.name))
        return out

    def _account_check(self, c: _Compiled) -> list[Finding]:
        """One finding per account: what is known once for the check (its records by account, `all`,
        the dependency error, the parts of the condition that read only `all`) is worked out once; each
        account then costs its own records, not the organisation's."""
        rtype = c.check.resource
        ctx = self.context
        accounts = sorted({s.account for s in ctx.scopes_by_type.get(rtype, []) if c.check.covers_account(s.account)})
        tagged = [r for r in ctx.records_in(rtype) if c.check.matches_tags(r.tags)]
        every = [r.data for r in tagged]  # "all": every account's records (an organisation trail covers members)
        by_account: dict[str, list] = defaultdict(list)
        for rec in tagged:
            by_account[rec.account].append(rec)
        dep_error = ctx.dependency_error(c.condition)
        shared = SharedValues(c.condition, every, ctx.opts)
        out = []
        for account in accounts:
            records = by_account.get(account, [])
            evidence = [h for r in records for h in r.evidence]
            gaps = ctx.type_gaps(rtype, None if c.condition.reads_all else account)
            args = (account, "global", ACCOUNT_SCOPE, account, f"account {account}")
            name = {"name": "account"}
            if gaps:
                out.append(self._finding(c, "ERROR", *args, f"{len(gaps)} evidence gap(s); first: {gaps[0].reason()}",
                                         evidence, **name))
                continue
            if dep_error:
                out.append(self._finding(c, "ERROR", *args, dep_error, evidence, **name))
                continue
            status, message = self._test(c, {"resources": [r.data for r in records], "all": every}, shared)
            if status:
                out.append(self._finding(c, status, *args, message, evidence, **name))
        return out


def evaluate(catalog: Catalog, collection: Collection, now: dt.datetime | None = None) -> list[Finding]:
    return Evaluator(catalog, collection, now).run()


def criterion_status(counts: dict, needs_evidence: bool) -> str:
    """A criterion's overall state — the rule: a failure outranks a gap, a gap outranks missing manual
    evidence (`needs_evidence`: a required item not current), which is never PASS; accepted exceptions
    are shown as such; PASS only when nothing is outstanding. The services judge every criterion
    through history.status.status_of (the packet, the control room, the exports) or summarise (a scan)."""
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
