"""alerts.yml: alerting rules in the shape of Prometheus alerting rules (groups → rules with `alert`,
`expr`, `for`, `labels.severity`, `labels.soc2_control`, `annotations.summary`). Three kinds of expr:

  count_over_time(events{errorCode=~"AccessDenied|UnauthorizedOperation"}[5m]) by (principal) > 5
      CloudTrail records matching every matcher, counted per label set in a sliding window
  count_over_time(app_events{event="system_change"}[5m]) by (user) > 20
      the same over application audit events read from CloudWatch Logs (APP_EVENT_FIELDS;
      auditbook.monitor.app_audit)
  posture("aws.kms.key", "customer_symmetric && days_since(last_rotated || CreationDate) > `90`")
      a JMESPath condition over each resource of a type in the latest run, evaluated like a check
      (auditbook.monitor.posture_rules)
  check_regressed()
      a check that passed in one run and fails in the next

Matchers: field="v", field!="v", field=~"regex", field!~"regex" (regexes anchored, as in PromQL)
over the normalised fields of a CloudTrail record (EVENT_FIELDS below) or of an application audit event
(APP_EVENT_FIELDS). A bad file gets one line naming the rule and the field."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditbook.catalog.model import load_catalog
from auditbook.catalog.parameters import substituted
from auditbook.errors import UserError, field_path, first_error, name_of, shown
from auditbook.evaluate.conditions import Condition
from auditbook.plugins import resource_types
from auditbook.store.alerts import SOC2_CONTROL_LENGTH
from auditbook.yamlfile import load_yaml

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "alerts.yml"
EVENT_FIELDS = ("eventName", "eventSource", "errorCode", "principal", "userType", "account", "region",
                "sourceIP", "mfa", "loginResult", "worldOpen", "eventType", "readOnly")
# an application audit event (auditbook.monitor.app_audit_events.rule_fields): hour (00-23) and weekday
# (Mon-Sun) are of its time in UTC, for rules about actions outside change windows
APP_EVENT_FIELDS = ("event", "kind", "user", "sourceIP", "userAgent", "action", "outcome", "resource", "account",
                    "region", "logGroup", "hour", "weekday")
CHEAP_FIELDS = ("eventName", "eventSource", "errorCode", "userType")  # read without normalising a record
SEVERITIES = ("critical", "high", "medium", "low")
DURATION = re.compile(r"([0-9]+)([smhd])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 366 * 86400  # a window or a `for` of at most a year
EVENT_EXPR = re.compile(r"^count_over_time\((?P<source>events|app_events)\{(?P<m>.*)\}\[(?P<w>[^\]]+)\]\)"
                        r"(?:\s+by\s+\((?P<by>[^)]*)\))?\s*(?P<op>>=|>)\s*(?P<n>[0-9]{1,9})\Z")
POSTURE_EXPR = re.compile(r'^posture\(\s*"(?P<type>[a-z0-9_.]+)"\s*,\s*"(?P<cond>(?:[^"\\]|\\.)+)"\s*\)$')
# the text of a rule that is stored on each of its alerts fits its column (PostgreSQL refuses longer)
SOC2_CONTROL_MAX = SOC2_CONTROL_LENGTH
SUMMARY_MAX = 1000  # alerts.summary is Text; PagerDuty takes 1,024 characters of summary in all
MATCHER = re.compile(r'^\s*(?P<f>[A-Za-z]+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<v>(?:[^"\\]|\\.)*)"\s*$')


def seconds(text: str) -> int:
    m = DURATION.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"{shown(text)} is not a duration like 30s, 5m, 1h or 1d")
    digits = m.group(1).lstrip("0") or "0"
    value = int(digits) * UNITS[m.group(2)] if len(digits) <= 12 else MAX_SECONDS + 1
    if value > MAX_SECONDS:
        raise ValueError(f"{shown(text)} is longer than the {MAX_SECONDS // 86400}d allowed")
    return value


class _Labels(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]  # further labels: text, as in Prometheus
    severity: str
    soc2_control: str = Field(min_length=2, max_length=SOC2_CONTROL_MAX)


class _Annotations(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]
    summary: str = Field(min_length=3, max_length=SUMMARY_MAX)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    alert: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{2,80}$")
    expr: str
    for_: str = Field(default="0s", alias="for")
    labels: _Labels
    annotations: _Annotations


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    rules: list[dict]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[_Group] = Field(min_length=1)


@dataclass
class Rule:
    name: str
    kind: str  # events (CloudTrail), app_events (application audit events), posture, regressed
    severity: str
    soc2_control: str
    summary: str
    for_seconds: int = 0
    # events
    matchers: list[tuple[str, str, object]] = field(default_factory=list)
    window: int = 0
    by: tuple[str, ...] = ()
    op: str = ">"
    threshold: int = 0
    # posture
    resource_type: str = ""
    condition: str = ""
    extra_labels: dict = field(default_factory=dict)
    test: Optional[Callable[[dict], bool]] = None
    anchor: Optional[Callable[[dict], bool]] = None  # the matchers on CHEAP fields alone: a fast prefilter

    def passes(self, count: int) -> bool:
        return count > self.threshold if self.op == ">" else count >= self.threshold


def _matcher(rule: str, text: str, fields: tuple = EVENT_FIELDS) -> tuple[str, str, object]:
    m = MATCHER.match(text)
    if not m:
        raise UserError(f"rule {rule}: expr: matcher {shown(text.strip())} is not field=\"value\" (=, !=, =~, !~)")
    name, op, value = m.group("f"), m.group("op"), m.group("v").replace('\\"', '"')
    if name not in fields:
        raise UserError(f"rule {rule}: expr: field {shown(name)} is not one of {', '.join(fields)}")
    if op in ("=~", "!~"):
        try:
            return name, op, re.compile(f"(?:{value})$")
        except (re.error, OverflowError, RecursionError) as exc:
            raise UserError(f"rule {rule}: expr: regex {shown(value)} of {name} is invalid: {exc}")
    return name, op, value


def _split_matchers(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in text:
        if ch == '"' and not current.endswith("\\"):
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def compile_test(matchers: list[tuple[str, str, object]]) -> Callable[[dict], bool]:
    def test(event: dict) -> bool:
        for name, op, value in matchers:
            got = event.get(name) or ""
            if op == "=":
                if got != value:
                    return False
            elif op == "!=":
                if got == value:
                    return False
            elif op == "=~":
                if not value.match(got):
                    return False
            elif value.match(got):
                return False
        return True
    return test


def _event_rule(name: str, m: re.Match, for_seconds: int, base: dict) -> Rule:
    """An event-count rule over CloudTrail records (`events`) or application audit events (`app_events`)."""
    app = m.group("source") == "app_events"
    fields = APP_EVENT_FIELDS if app else EVENT_FIELDS
    matchers = [_matcher(name, t, fields) for t in _split_matchers(m.group("m"))]
    by = tuple(b.strip() for b in (m.group("by") or "").split(",") if b.strip())
    for b in by:
        if b not in fields:
            raise UserError(f"rule {name}: expr: by ({name_of(b)}) is not one of {', '.join(fields)}")
    try:
        window = seconds(m.group("w"))
    except ValueError as exc:
        raise UserError(f"rule {name}: expr: window {exc}")
    if for_seconds:
        raise UserError(f"rule {name}: for: event-count rules fire as soon as the count passes; "
                        "widen the window instead (for: 0s)")
    cheap = [mt for mt in matchers if mt[0] in CHEAP_FIELDS and not app]
    return Rule(kind="app_events" if app else "events", matchers=matchers, window=window, by=by, op=m.group("op"),
                threshold=int(m.group("n")), test=compile_test(matchers), anchor=compile_test(cheap), **base)


def _posture_rule(name: str, m: re.Match, base: dict, params: Callable[[], dict]) -> Rule:
    """A posture rule: its type must be declared, its condition compile as the checks' do, with the
    catalog's thresholds (${name}) in it as the checks read them (docs/parameters.md)."""
    if m.group("type") not in resource_types():
        raise UserError(f"rule {name}: expr: {shown(m.group('type'))} is not a resource type")
    condition = m.group("cond").replace('\\"', '"')
    try:
        condition = substituted(condition, params(), literal=True) if "${" in condition else condition
        Condition.compile(expect=condition)
    except ValueError as exc:  # parse errors, an unknown function, a wrong number of arguments
        raise UserError(f"rule {name}: expr: condition {shown(condition)}: {exc}")
    return Rule(kind="posture", resource_type=m.group("type"), condition=condition, **base)


def _validated(raw: dict, where: str) -> tuple[_Rule, int]:
    """The rule's fields checked, and its `for` in seconds."""
    name = raw.get("alert") if isinstance(raw, dict) else None
    try:
        parsed = _Rule.model_validate(raw)
    except ValidationError as exc:
        loc, message = first_error(exc)
        label = name_of(name) if name else "(unnamed)"
        raise UserError(f"{where}: rule {label}: {field_path(loc) or 'rule'}: {message}")
    if parsed.labels.severity not in SEVERITIES:
        raise UserError(f"{where}: rule {parsed.alert}: labels.severity: {shown(parsed.labels.severity)} is not one of "
                        f"{', '.join(SEVERITIES)}")
    try:
        return parsed, seconds(parsed.for_)
    except ValueError as exc:
        raise UserError(f"{where}: rule {parsed.alert}: for: {exc}")


def _summary(parsed: _Rule, params: Callable[[], dict], where: str) -> str:
    """The summary with the catalog's thresholds (${name}) written in."""
    text = parsed.annotations.summary
    try:
        return substituted(text, params(), literal=False) if "${" in text else text
    except ValueError as exc:
        raise UserError(f"{where}: rule {parsed.alert}: annotations.summary: {exc}") from None


def _rule(raw: dict, where: str, params: Callable[[], dict]) -> Rule:
    parsed, for_seconds = _validated(raw, where)
    extra = {k: v for k, v in (parsed.labels.model_extra or {}).items()}
    base = dict(name=parsed.alert, severity=parsed.labels.severity, soc2_control=parsed.labels.soc2_control,
                summary=_summary(parsed, params, where), for_seconds=for_seconds, extra_labels=extra)
    expr = parsed.expr.strip()
    try:
        m = EVENT_EXPR.match(expr)
        if m:
            return _event_rule(parsed.alert, m, for_seconds, base)
        m = POSTURE_EXPR.match(expr)
        if m:
            return _posture_rule(parsed.alert, m, base, params)
        if expr == "check_regressed()":
            return Rule(kind="regressed", **base)
    except UserError as exc:
        raise UserError(f"{where}: {exc}")
    raise UserError(f"{where}: rule {parsed.alert}: expr: {shown(expr)} is not count_over_time(events{{…}}[window]) "
                    "(or app_events{…}) "
                    "by (…) > N, posture(\"type\", \"condition\") or check_regressed()")


def load_rules(path: Optional[Path] = None, parameters: Optional[dict] = None) -> list[Rule]:
    """The rules file, validated; a posture condition or a summary reads the thresholds of `parameters`
    (a catalog's; None: the bundled catalog's, loaded only if a rule reads one)."""
    path = Path(path or DEFAULT_RULES)
    raw = load_yaml(path)
    loaded: dict = {}

    def params() -> dict:
        if "params" not in loaded:
            loaded["params"] = parameters if parameters is not None else load_catalog().parameters
        return loaded["params"]
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise UserError(f"{path}: {field_path(loc) or '(document)'}: {message}")
    rules, seen = [], set()
    for group in parsed.groups:
        for raw_rule in group.rules:
            rule = _rule(raw_rule, str(path), params)
            if rule.name in seen:
                raise UserError(f"{path}: rule {rule.name}: alert: the name is used twice")
            seen.add(rule.name)
            rules.append(rule)
    return rules
