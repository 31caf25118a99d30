"""What a scan must collect: the resource types a catalog's checks read; and what it must leave
out: the system boundary in force when it runs (Boundary, apply_boundary)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Optional

from auditbook.catalog.expressions import analyse, compile_expression
from auditbook.catalog.model import Catalog
from auditbook.collect.records import Collection, Record
from auditbook.collect.spec import ResourceType
from auditbook.errors import UserError, shown
from auditbook.plugins import resource_types


def needed_types(catalog: Catalog, only: Optional[set[str]] = None) -> list[ResourceType]:
    """The resource types the catalog's checks read (directly or through values()); `only`: just
    those of these check ids."""
    names: set[str] = set()
    for check in catalog.checks:
        if only is not None and check.id not in only:
            continue
        names.add(check.resource)
        for text in (check.applies, check.expect):
            if text:
                names |= analyse(compile_expression(text)).types
    types = resource_types()
    return [types[n] for n in sorted(names)]


def closed_checks(catalog: Catalog, check_ids: set[str]) -> Catalog:
    """The catalog cut down to `check_ids` plus every other check on the resource types they read,
    repeated until nothing new is needed. A run that collects a type must evaluate every check on it,
    or the store would take the missing findings for resolved ones."""
    unknown = sorted(check_ids - {c.id for c in catalog.checks})
    if unknown:
        raise UserError(f"checks: {shown(unknown[0])} is not a check in the catalog")
    chosen = set(check_ids)
    while True:
        types = {t.name for t in needed_types(catalog, chosen)}
        more = {c.id for c in catalog.checks if c.resource in types} - chosen
        if not more:
            return catalog.model_copy(update={"checks": [c for c in catalog.checks if c.id in chosen]})
        chosen |= more


# -- the system boundary a scan applies (docs/scope.md: out of scope is not evaluated) ---------------

@dataclass(frozen=True)
class ScopeRule:
    """One out-of-scope entry in force when a scan runs (auditbook.history.scope keeps them)."""
    id: int
    kind: str  # account, region, tag (key=value) or resource (an ARN)
    value: str
    reason: str

    def as_dict(self) -> dict:
        return {"entry": self.id, "kind": self.kind, "value": self.value, "reason": self.reason}


def _when(stamp: Optional[dict]) -> Optional[dt.datetime]:
    if not isinstance(stamp, dict) or not isinstance(stamp.get("at"), str):
        return None
    try:
        at = dt.datetime.fromisoformat(stamp["at"])
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Boundary:
    """The out-of-scope entries in force at one moment: accounts and regions are not read at all,
    records of excluded resources and tags (and of resources in an excluded region, such as an S3
    bucket listed globally) are dropped before evaluation."""
    rules: tuple[ScopeRule, ...] = ()

    @classmethod
    def in_force(cls, entries: list[dict], at: dt.datetime) -> "Boundary":
        """The entries put out of scope at or before `at` and not brought back by then."""
        rules = []
        for e in entries:
            if not (isinstance(e, dict) and isinstance(e.get("id"), int) and isinstance(e.get("kind"), str)
                    and isinstance(e.get("value"), str) and _when(e.get("excluded")) is not None
                    and (e.get("lifted") is None or _when(e["lifted"]) is not None)):
                # a scope the scan cannot read must not be taken for "nothing out of scope"
                raise UserError(f"settings scope: entry {shown(e)} is malformed (id, kind, value, excluded.at, lifted.at)")
            start, lifted = _when(e["excluded"]), _when(e.get("lifted"))
            if start <= at and (lifted is None or lifted > at):
                rules.append(ScopeRule(e["id"], e["kind"], e["value"], str(e["excluded"].get("reason", ""))))
        return cls(tuple(rules))

    def _of(self, kind: str) -> dict[str, ScopeRule]:
        return {r.value: r for r in self.rules if r.kind == kind}

    def account_rule(self, account: str) -> Optional[ScopeRule]:
        return self._of("account").get(account)

    def regions_out(self) -> dict[str, ScopeRule]:
        return self._of("region")

    def accounts_out(self) -> dict[str, dict]:
        """{account: its scope entry} of the accounts out of scope (listed by a scan, never reached)."""
        return {value: rule.as_dict() for value, rule in self._of("account").items()}

    def record_rule(self, record: Record) -> Optional[ScopeRule]:
        """The rule that puts a record out of scope (resource, then tag, region, account), or None."""
        for rule in self.rules:
            if (rule.kind == "resource" and rule.value in (record.arn, record.id)
                    or rule.kind == "tag" and _tag_matches(rule.value, record.tags)
                    or rule.kind == "region" and record.region == rule.value
                    or rule.kind == "account" and record.account == rule.value):
                return rule
        return None


def _tag_matches(value: str, tags: dict) -> bool:
    key, _, wanted = value.partition("=")
    return key in tags and tags[key] == wanted


def apply_boundary(collection: Collection, boundary: Boundary) -> tuple[Collection, dict[int, list[str]]]:
    """THE place a scan applies its scope to what it read: the collection without the records the
    boundary puts out of scope (nor their evidence gaps), and {entry id: the records left out, as
    "type account region ARN"}. The evaluator then sees only what is in scope."""
    if not boundary.rules:
        return collection, {}
    kept, dropped, left_out = [], set(), defaultdict(list)
    for rec in collection.records:
        rule = boundary.record_rule(rec)
        if rule is None:
            kept.append(rec)
        else:
            left_out[rule.id].append(f"{rec.type} {rec.account} {rec.scope_region} {rec.arn or rec.id}")
            dropped.add((rec.type, rec.account, rec.scope_region, rec.id))
    gaps = [g for g in collection.gaps if g.resource is None
            or (g.resource_type, g.account, g.region, g.resource) not in dropped]
    return replace(collection, records=kept, gaps=gaps), dict(left_out)


LISTED_LEFT_OUT = 200  # records named per entry and run (the count is always whole)


def left_out(boundary: Boundary, records: dict[int, list[str]], accounts: list[str], regions: list[str]) -> list[dict]:
    """What a run left out, per entry in force: the entry (id, kind, value, reason), the accounts and
    regions it kept the scan from reading, and the records it dropped before evaluation — counted, and
    named (the first LISTED_LEFT_OUT): a tag anyone can set must not hide a resource unnamed."""
    out = []
    for rule in boundary.rules:
        mine = sorted(records.get(rule.id, []))
        out.append({**rule.as_dict(), "records": len(mine), "resources": mine[:LISTED_LEFT_OUT],
                    "accounts_not_read": [a for a in accounts if rule.kind == "account" and a == rule.value],
                    "regions_not_read": [r for r in regions if rule.kind == "region" and r == rule.value]})
    return out
