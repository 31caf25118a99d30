"""Posture alert rules (`posture("type", "condition")` in alerts.yml) over the latest run's resource
records, through the one evaluator (auditbook.evaluate.conditions): the same compile and apply as
the catalog's checks, and the same rule for gaps.

- A record the condition holds for raises the rule's alert (pending first, with `for`).
- A record the condition does not hold for resolves the rule's alert on it.
- A record the condition cannot be applied to (a value of the wrong type), a record with evidence
  gaps, or a scope (account, region) whose list call failed in the run is a gap, never a "no match":
  it raises a PostureRuleUnevaluated alert (severity warning; labels rule, account, region,
  resource_type, and resource for a record) with the reason in its summary, and the rule's alerts on
  what it covers are left as they were. The gap alert resolves once a later run has no such gap.
- An alert in a scope (account, region) the latest run did not read at all — a scan of other regions
  or accounts — is left as it was, and so are gap alerts there: only what was judged resolves.
- A rule whose resource type the latest run did not collect at all is left as it was, and listed.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Optional

from auditbook.errors import one_line
from auditbook.evaluate.conditions import (
    ERROR,
    MATCH,
    Condition,
    Context,
    TypeEvaluation,
    evaluate_type,
)
from auditbook.monitor.alerts import ACTIVE_STATES, OPEN_STATES, dedup_key, fire
from auditbook.monitor.rules import SUMMARY_MAX, Rule
from auditbook.store import alerts as stored
from auditbook.store import runs, scan_records
from auditbook.store.session import writing

UNEVALUATED = "PostureRuleUnevaluated"
UNEVALUATED_SEVERITY = "warning"
GLOBAL = "global"  # the scope region of a global resource type
MAX_REASON = 300


@dataclass
class RuleOutcome:
    """One posture rule over one run: the label sets it holds for, its gaps (labels, what, reason),
    and what the gaps cover (alerts there are neither raised nor resolved)."""
    matching: dict = field(default_factory=dict)  # sorted label items -> labels
    gaps: list = field(default_factory=list)  # (gap alert labels, what was not evaluated, reason)
    held_resources: set = field(default_factory=set)
    held_scopes: set = field(default_factory=set)  # (account, scope region)
    read_scopes: set = field(default_factory=set)  # (account, scope region) the run read without a gap

    def holds(self, labels: dict) -> bool:
        """Is an alert with these labels on something this run could not judge (a gap there, or a
        scope the run did not read at all)?"""
        if labels.get("resource") in self.held_resources:
            return True
        account, region = labels.get("account"), labels.get("region")
        if (account, region) in self.held_scopes or (account, GLOBAL) in self.held_scopes:
            return True
        return (account, region) not in self.read_scopes and (account, GLOBAL) not in self.read_scopes


def _resource_labels(rule: Rule, rec) -> dict:
    return {"resource_type": rule.resource_type, "account": rec.account, "region": rec.region,
            "resource": rec.arn or rec.id}


def outcome(rule: Rule, result: TypeEvaluation) -> RuleOutcome:
    """What a rule's evaluation over one type means for its alerts."""
    out = RuleOutcome(read_scopes=set(result.read_scopes))
    base = {"rule": rule.name, "resource_type": rule.resource_type}
    for scope in result.scope_gaps:
        out.held_scopes.add((scope.account, scope.region))
        out.gaps.append(({**base, "account": scope.account, "region": scope.region},
                         f"{rule.resource_type} in {scope.account}/{scope.region}", scope.gap.reason()))
    for rec, verdict in result.records:
        labels = _resource_labels(rule, rec)
        if verdict.outcome == MATCH:
            out.matching[tuple(sorted(labels.items()))] = labels
        elif verdict.outcome == ERROR:
            out.held_resources.add(labels["resource"])
            out.gaps.append(({**base, "account": rec.account, "region": rec.region, "resource": labels["resource"]},
                             labels["resource"], verdict.reason))
    return out


def _raise(session, rule: Rule, labels: dict, now: dt.datetime) -> int:
    """A posture condition holds for a resource: with `for`, the alert is pending until it has held
    that long, then fires. Returns 1 when an alert starts firing."""
    key = dedup_key(rule.name, labels)
    alert = stored.open_by_key(session, key, ACTIVE_STATES)
    if alert is None:
        state = "pending" if rule.for_seconds else "firing"
        stored.insert_alert(session, rule=rule.name, dedup_key=key, state=state, severity=rule.severity,
                            soc2_control=rule.soc2_control, labels=labels, summary=rule.summary, at=now, evidence=[])
        return int(state == "firing")
    values = {"last_seen": now, "count": alert["count"] + 1}
    starts = alert["state"] == "pending" and (now - alert["first_seen"]).total_seconds() >= rule.for_seconds
    if starts:
        values["state"] = "firing"
    stored.change(session, alert["id"], values)
    return int(starts)


def _apply(session, rule: Rule, found: RuleOutcome, now: dt.datetime) -> tuple[int, int]:
    """Raise the rule's alerts on what matches; resolve its open alerts on what was judged and does
    not match (an alert on a gap stays as it was). -> (fired, resolved)"""
    fired = sum(_raise(session, rule, labels, now) for labels in found.matching.values())
    gone = [a["id"] for a in stored.listing(session, ACTIVE_STATES, rule=rule.name)
            if tuple(sorted(a["labels"].items())) not in found.matching and not found.holds(a["labels"])]
    return fired, stored.resolve_ids(session, gone, now)


def _raise_gaps(session, rule: Rule, found: RuleOutcome, now: dt.datetime) -> tuple[int, set]:
    """A PostureRuleUnevaluated alert per gap: (how many started firing, their dedup keys)."""
    fired, keys = 0, set()
    for labels, what, reason in found.gaps:
        summary = f"posture rule {rule.name} could not be evaluated on {what}: {one_line(reason)[:MAX_REASON]}"
        alert = fire(session, rule=UNEVALUATED, labels=labels, severity=UNEVALUATED_SEVERITY,
                     soc2_control=rule.soc2_control, summary=summary[:SUMMARY_MAX], at=now)
        fired += alert["count"] == 1
        keys.add(dedup_key(UNEVALUATED, labels))
    return fired, keys


def _resolve_gaps(session, keep: set, judged: dict, now: dt.datetime) -> int:
    """Resolve the gap alerts this evaluation did not raise again where it judged again: their rule
    is gone from alerts.yml, or the run read their scope (account, region) without a gap. Gap alerts
    of rules left as they were, or in scopes the run did not read, stay."""
    def gone(alert) -> bool:
        labels = alert["labels"]
        if alert["dedup_key"] in keep:
            return False
        if labels.get("rule") not in judged:
            return labels.get("rule") not in judged.get(None, set())  # None: the rules left as they were
        scopes = judged[labels["rule"]]
        return (labels.get("account"), labels.get("region")) in scopes or (labels.get("account"), GLOBAL) in scopes
    ids = [a["id"] for a in stored.listing(session, OPEN_STATES, rule=UNEVALUATED) if gone(a)]
    return stored.resolve_ids(session, ids, now)


def evaluate_posture(engine, rules: list[Rule], now: Optional[dt.datetime] = None,
                     gaps: Optional[list] = None) -> tuple[int, int]:
    """Posture rules over the latest run's resources: (alerts that started firing — gap alerts
    included —, alerts resolved). Each gap is also added to `gaps` as (rule, what, reason)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    posture = [r for r in rules if r.kind == "posture"]
    conditions = {r.name: Condition.compile(expect=r.condition) for r in posture}
    fired = resolved = 0
    with writing(engine) as session:
        run = runs.latest(session)
        if run is None:
            return 0, 0
        run_id = run.id
        types = {r.resource_type for r in posture} | {t for c in conditions.values() for t in c.depends_on}
        context = Context(scan_records.collection_at(session, run_id, types), now)
        raised, judged = set(), {None: set()}  # judged: rule -> scopes read; None -> rules left as they were
        for rule in posture:
            result = evaluate_type(context, rule.resource_type, conditions[rule.name])
            if not result.attempted:
                judged[None].add(rule.name)
                _note(gaps, rule.name, rule.resource_type, f"not collected by the latest run ({run_id}): left as it was")
                continue
            found = outcome(rule, result)
            judged[rule.name] = found.read_scopes
            rule_fired, rule_resolved = _apply(session, rule, found, now)
            gap_fired, keys = _raise_gaps(session, rule, found, now)
            fired, resolved, raised = fired + rule_fired + gap_fired, resolved + rule_resolved, raised | keys
            for _labels, what, reason in found.gaps:
                _note(gaps, rule.name, what, reason)
        resolved += _resolve_gaps(session, raised, judged, now)
    return fired, resolved


def _note(gaps: Optional[list], rule: str, what: str, reason: str) -> None:
    if gaps is not None:
        gaps.append((rule, what, one_line(reason)[:MAX_REASON]))
