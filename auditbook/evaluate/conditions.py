"""Conditions over resource records: the one evaluator's core, shared by the catalog's checks
(auditbook.evaluate.evaluator) and the posture alert rules (auditbook.monitor.posture_rules). Pure: no AWS,
no database.

A condition is an optional `applies` filter and either an `expect` JMESPath expression or a check
function (named in controls.yaml with `function:`). Applied to one record's data it gives MATCH,
NO_MATCH, NOT_APPLICABLE (the filter is false) or ERROR with its reason (a value of the wrong type, a
function that raised): never a silent NO_MATCH.

Over one resource type (`evaluate_type`) the rule for gaps is the same for every caller: a record
with evidence gaps (a detail call failed) is ERROR, a record whose condition reads another type that
has gaps (`values()`) is ERROR, and a scope whose list call failed is reported as a scope gap — its
resources are unknown, so nothing about them is a match or a non-match."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from jmespath import exceptions as jexc
from jmespath.visitor import TreeInterpreter

from auditbook.catalog.expressions import (
    AuditFunctions,
    analyse,
    compile_expression,
    options,
    subtrees_reading_only,
    truthy,
)
from auditbook.collect.records import Collection, Gap, Record, Scope

MATCH, NO_MATCH, NOT_APPLICABLE, ERROR = "MATCH", "NO_MATCH", "NOT_APPLICABLE", "ERROR"
APPLY_ERRORS = (jexc.JMESPathError, TypeError, ValueError, KeyError)  # what applying a condition may raise


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # MATCH, NO_MATCH, NOT_APPLICABLE or ERROR
    reason: str = ""  # ERROR: why the condition could not be applied
    evidence_gap: bool = False  # ERROR: the evidence is missing (not: the condition failed on it)


MATCHED, NOT_MATCHED, SKIPPED = Verdict(MATCH), Verdict(NO_MATCH), Verdict(NOT_APPLICABLE)


@dataclass(frozen=True)
class Condition:
    """A compiled condition: `applies` (optional filter), then `expect` or the check function named
    `function`; the resource types its values() calls read, and whether it reads the field `all`."""
    applies: Any = None
    expect: Any = None
    function: str = ""
    depends_on: frozenset = frozenset()
    reads_all: bool = False
    applies_depends_on: frozenset = frozenset()  # the types the `applies` filter alone reads

    @classmethod
    def compile(cls, expect: Optional[str] = None, applies: Optional[str] = None, function: str = "") -> "Condition":
        """Parse the expressions (ValueError with a short reason when one is invalid)."""
        parsed_applies = compile_expression(applies) if applies else None
        parsed_expect = compile_expression(expect) if expect else None
        types: set[str] = set()
        reads_all = False
        for parsed in (parsed_applies, parsed_expect):
            if parsed is not None:
                info = analyse(parsed)
                types |= info.types
                reads_all |= "all" in info.fields
        applies_types = frozenset(analyse(parsed_applies).types) if parsed_applies is not None else frozenset()
        return cls(parsed_applies, parsed_expect, function, frozenset(types), reads_all, applies_types)


@dataclass
class TypeEvaluation:
    """A condition over every record of one resource type: each record's verdict, and the scopes
    (account, region) of the type whose list call failed."""
    resource_type: str
    records: list[tuple[Record, Verdict]] = field(default_factory=list)
    scope_gaps: list[Scope] = field(default_factory=list)
    attempted: bool = False  # the collection tried the type in at least one scope
    read_scopes: set = field(default_factory=set)  # (account, scope region) read without a gap


class Context:
    """One evaluation: its clock, the collection's records and scopes by type (and by type and account),
    and the JMESPath functions bound to both (values() reads the collection). Indexed once: what an
    account asks for is found without scanning every record of the type (an organisation's 1,000
    accounts would make that quadratic)."""

    def __init__(self, collection: Collection, now: Optional[dt.datetime] = None,
                 functions: Optional[dict[str, Callable[[dict], Any]]] = None):
        self.now = now or dt.datetime.now(dt.timezone.utc)
        self.by_type: dict[str, list[Record]] = defaultdict(list)
        self._records_in: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for rec in collection.records:
            self.by_type[rec.type].append(rec)
            self._records_in[rec.type, rec.account].append(rec)
        self.scopes_by_type: dict[str, list[Scope]] = defaultdict(list)
        self._scopes_in: dict[tuple[str, str], list[Scope]] = defaultdict(list)
        for scope in collection.scopes:
            self.scopes_by_type[scope.resource_type].append(scope)
            self._scopes_in[scope.resource_type, scope.account].append(scope)
        self.functions = functions or {}
        self._values: dict[tuple, list] = {}
        self._gaps: dict[tuple[str, Optional[str]], tuple[Gap, ...]] = {}
        self._dependency: dict[frozenset, Optional[str]] = {}
        self.opts = options(AuditFunctions(self.now, self.lookup))

    def records_in(self, rtype: str, account: Optional[str] = None) -> Sequence[Record]:
        """The records of a type (of one account, if given), in collection order. Shared: do not modify."""
        return self.by_type.get(rtype, []) if account is None else self._records_in.get((rtype, account), [])

    def lookup(self, rtype: str, fieldname: str, account: Optional[str] = None) -> list:
        """values(type, field): every non-null value of a top-level field across the type's records;
        values_in(type, field, account): of one account's records only."""
        key = (rtype, fieldname, account)
        if key not in self._values:
            self._values[key] = [r.data.get(fieldname) for r in self.records_in(rtype, account)
                                 if r.data.get(fieldname) is not None]
        return self._values[key]

    def type_gaps(self, rtype: str, account: Optional[str] = None) -> Sequence[Gap]:
        """The evidence gaps of a type (in one account, if given): failed scopes, then records' gaps."""
        key = (rtype, account)
        if key not in self._gaps:
            scopes = self.scopes_by_type.get(rtype, []) if account is None else self._scopes_in.get(key, [])
            self._gaps[key] = (tuple(s.gap for s in scopes if s.gap)
                               + tuple(g for r in self.records_in(rtype, account) for g in r.gaps.values()))
        return self._gaps[key]

    def dependency_error(self, condition: Condition) -> Optional[str]:
        """Why a condition cannot be trusted anywhere: a type its values() reads has evidence gaps."""
        if condition.depends_on not in self._dependency:
            self._dependency[condition.depends_on] = self._dependency_error(condition.depends_on)
        return self._dependency[condition.depends_on]

    def _dependency_error(self, types: frozenset) -> Optional[str]:
        for rtype in sorted(types):
            gaps = self.type_gaps(rtype)
            if gaps:
                return f"depends on {rtype}, which has {len(gaps)} evidence gap(s); first: {gaps[0].reason()}"
        return None

    def unknown_unless_filtered_out(self, condition: Condition, data: dict, reason: str) -> Verdict:
        """A record whose condition reads a type with evidence gaps: ERROR — unless the `applies`
        filter, reading none of the gapped types, says the condition is not for this record."""
        gapped = {t for t in condition.depends_on if self.type_gaps(t)}
        if condition.applies is not None and not condition.applies_depends_on & gapped:
            try:
                if not truthy(condition.applies.search(data, options=self.opts)):
                    return SKIPPED
            except APPLY_ERRORS as exc:
                return Verdict(ERROR, f"{type(exc).__name__}: {exc}")
        return Verdict(ERROR, reason, evidence_gap=True)

    def apply(self, condition: Condition, data: dict, shared: Optional["SharedValues"] = None) -> Verdict:
        """The condition on one record's data (or an account's {"resources", "all"}); `shared`: the values
        of its account-independent parts, for every account of one check."""
        search = shared.search if shared is not None else (lambda parsed, doc: parsed.search(doc, options=self.opts))
        try:
            if condition.applies is not None and not truthy(search(condition.applies, data)):
                return SKIPPED
            if condition.expect is not None:
                met = truthy(search(condition.expect, data))
            else:
                met = self._call(condition.function, data)
        except APPLY_ERRORS as exc:
            return Verdict(ERROR, f"{type(exc).__name__}: {exc}")
        return MATCHED if met else NOT_MATCHED

    def _call(self, name: str, data: dict) -> bool:
        """A registered check function on a record. It is code from the catalog or a plugin: whatever it
        raises is this record's ERROR with the reason (never a crashed scan, never a silent pass)."""
        try:
            return bool(self.functions[name](data))
        except Exception as exc:  # noqa: BLE001 — reported as the record's ERROR, never swallowed
            raise ValueError(f"check function {name!r} raised {type(exc).__name__}: {exc}") from exc


class SharedValues:
    """The parts of a condition that read nothing of the document but its field `all` (every account's
    records: the same document for each account of one account-scoped check), evaluated once — on the
    first account whose evaluation reaches them, so what short-circuits before them still does — and
    reused: a value, or the error it raised (raised again, the same type and message), for every other
    account. Only a document whose `all` is this very list is served from them."""

    SHARED_FIELDS = frozenset({"all"})

    def __init__(self, condition: Condition, every: list, opts):
        self.nodes = [n for parsed in (condition.applies, condition.expect) if parsed is not None
                      for n in subtrees_reading_only(parsed, self.SHARED_FIELDS)]  # held: their ids stay theirs
        self._ids = {id(n) for n in self.nodes}
        self._every = every
        self._memo: dict[int, tuple[Optional[Exception], Any]] = {}
        self.opts = opts
        self.evaluations = 0  # how many times a shared part was actually evaluated (tests count them)

    def search(self, parsed, data: dict) -> Any:
        if not self._ids or not isinstance(data, dict) or data.get("all") is not self._every:
            return parsed.search(data, options=self.opts)
        return _SharingInterpreter(self, data).visit(parsed.parsed, data)

    def value(self, node: dict, evaluate: Callable[[], Any]) -> Any:
        key = id(node)
        if key not in self._memo:
            self.evaluations += 1
            try:
                self._memo[key] = (None, evaluate())
            except Exception as exc:  # noqa: BLE001 — kept and raised again for every account, never swallowed
                self._memo[key] = (exc, None)
        error, value = self._memo[key]
        if error is not None:
            raise error.with_traceback(None)
        return value

    def shares(self, node: dict) -> bool:
        return id(node) in self._ids


class _SharingInterpreter(TreeInterpreter):
    """jmespath's interpreter, serving a shared part from SharedValues when it is evaluated on the
    document itself (never on an element of a projection or filter)."""

    def __init__(self, shared: SharedValues, root: dict):
        super().__init__(shared.opts)
        self._shared, self._root = shared, root

    def visit(self, node, *args, **kwargs):
        if args and args[0] is self._root and not kwargs and self._shared.shares(node):
            return self._shared.value(node, lambda: super(_SharingInterpreter, self).visit(node, *args))
        return super().visit(node, *args, **kwargs)


def record_gaps(record: Record) -> str:
    """Why a record is unknown: its evidence gaps, in one line each joined."""
    return "; ".join(g.reason() for g in record.gaps.values())


def evaluate_type(ctx: Context, rtype: str, condition: Condition,
                  include: Optional[Callable[[Record], bool]] = None) -> TypeEvaluation:
    """The condition over each record of `rtype` (those `include` accepts): a record with evidence
    gaps, or any record when a type the condition depends on has gaps, is ERROR; failed scopes are
    listed as scope gaps."""
    scopes = ctx.scopes_by_type.get(rtype, [])
    out = TypeEvaluation(rtype, scope_gaps=[s for s in scopes if s.gap], attempted=bool(scopes),
                         read_scopes={(s.account, s.region) for s in scopes if not s.gap})
    dependency = ctx.dependency_error(condition)
    for rec in ctx.by_type.get(rtype, []):
        if include is not None and not include(rec):
            continue
        if rec.gaps:
            verdict = Verdict(ERROR, record_gaps(rec), evidence_gap=True)
        elif dependency:
            verdict = ctx.unknown_unless_filtered_out(condition, rec.data, dependency)
        else:
            verdict = ctx.apply(condition, rec.data)
        out.records.append((rec, verdict))
    return out
