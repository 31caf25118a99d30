"""Declared controls: the criteria a resource's control tag says it implements (the seed tags its
Terraform resources `SOC2_Control = "CC6.1"`), set against what the checks observed. Pure: records and
findings in, plain dicts out (history/declared.py reads them from the store).

Per declared (resource, criterion): FAIL / ERROR / EXCEPTED / PASS, the worst finding of a check of that
criterion on the resource (or account-wide over its type in its account), or NOT_EVIDENCED when no such
finding exists (no check of the criterion reads the type, or their applies/tags/accounts exclude it).
Besides: resources of in-scope types (read by a resource check, listed, their tags collected) with no
control tag, and tag values that are not criterion ids (hostile input: each gets a short reason, the
value shown quoted and escaped)."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Optional

from auditbook.errors import shown

DEFAULT_TAG_KEY = "SOC2_Control"  # the catalog parameter control_tag_key's default
SEPARATOR = re.compile(r"[\s,]+")  # "CC6.1", "CC6.1,CC6.6", "CC6.1 CC7.2"
CRITERION_LIKE = re.compile(r"^(CC|A|C|PI|P)[0-9]+\.[0-9]+$")
STATES = ("FAIL", "ERROR", "EXCEPTED", "PASS", "NOT_EVIDENCED")  # worst first
VALUE_CHARS = 120  # a tag value as shown (quoted, cut)
REASONS_SHOWN = 5
# Resource types whose collector declares a tag path but whose calls return no tags (the tag APIs are
# separate: ListTagsForCertificate, ListTags, DescribeTags, ListResourceTags, ListRoleTags …): their
# resources would all read as untagged. Left out of the untagged list until their collector reads tags
# (tests/unit/test_declared.py fails when one of them gains a call that does).
TAGS_NOT_READ = {
    "aws.acm.certificate": "DescribeCertificate returns no tags",
    "aws.cloudtrail.trail": "DescribeTrails returns no tags",
    "aws.elbv2.load_balancer": "DescribeLoadBalancers returns no tags",
    "aws.iam.policy": "ListPolicies returns no tags",
    "aws.iam.role": "ListRoles returns no tags",
    "aws.iam.user": "ListUsers returns no tags",
    "aws.kms.key": "DescribeKey returns no tags",
}


@dataclass(frozen=True, slots=True)
class Observed:
    """A resource a run observed, as the declared view needs it."""
    resource_type: str
    account: str
    region: str
    resource: str  # its ARN (or id), as findings name it
    name: str
    tags: dict

    def key(self) -> tuple[str, str, str]:
        return (self.resource_type, self.account, self.resource)

    def identity(self) -> dict:
        return {"resource_type": self.resource_type, "account": self.account, "region": self.region,
                "resource": self.resource, "name": self.name}


def control_tag_key(catalog) -> str:
    """The tag key that declares criteria: the catalog parameter control_tag_key (the one place that
    reads it; a catalog that does not declare it uses the default)."""
    if "control_tag_key" not in (getattr(catalog, "parameters", None) or {}):
        return DEFAULT_TAG_KEY
    value = catalog.parameter_value("control_tag_key")
    return value.strip() if isinstance(value, str) and value.strip() else DEFAULT_TAG_KEY


def _token_reason(token: str, criteria: set[str]) -> str:
    if token.upper() in criteria:
        return f"{shown(token)} is not a criterion id (ids are upper case: {token.upper()})"
    if CRITERION_LIKE.match(token.upper()):
        return f"{shown(token)} is not a criterion of the catalog"
    return f"{shown(token)} is not a criterion id"


def parse_declaration(value, criteria: set[str]) -> tuple[list[str], list[str]]:
    """(the criteria a control tag's value declares, in the catalog's ids; a reason for each part that is
    not one). Ids are separated by commas or white space and must be spelled as the catalog spells them."""
    text = str(value)[:1024]
    tokens = [t for t in SEPARATOR.split(text) if t]
    if not tokens:
        return [], ["the tag is empty: no criterion declared"]
    found, reasons = [], []
    for token in dict.fromkeys(tokens):
        if token in criteria:
            found.append(token)
        else:
            reasons.append(_token_reason(token, criteria))
    return found, reasons


def _tag_of(tags: dict, key: str) -> tuple[Optional[str], Optional[str]]:
    """(the control tag's value, or None; the key as spelled when only its letter case differs)."""
    if key in tags:
        return tags[key], None
    other = sorted(k for k in tags if str(k).lower() == key.lower())
    return (tags[other[0]], other[0]) if other else (None, None)


def carries_tag(tags: dict, key: str) -> bool:
    """Whether the tags hold the control tag, in any letter case (a declaration, valid or not)."""
    return _tag_of(tags, key)[0] is not None


def type_coverage(catalog, specs: dict) -> tuple[list[str], list[dict]]:
    """(the in-scope types: read by a resource check, listed (not a singleton), their tags collected;
    the types a resource check reads whose tags are not collected, each with why)."""
    in_scope, no_tags = [], []
    for rtype in sorted({c.resource for c in catalog.checks if c.scope == "resource"}):
        spec = specs.get(rtype)
        if spec is None or spec.list is None:
            continue
        if not spec.tags or rtype in TAGS_NOT_READ:
            no_tags.append({"resource_type": rtype,
                            "reason": TAGS_NOT_READ.get(rtype, "its collector reads no tags")})
        else:
            in_scope.append(rtype)
    return in_scope, no_tags


def _joined(reasons: list[str]) -> str:
    more = len(reasons) - REASONS_SHOWN
    return "; ".join(reasons[:REASONS_SHOWN]) + (f"; … and {more} more" if more > 0 else "")


def declarations(resources: Iterable[Observed], criteria: set[str], tag_key: str,
                 in_scope: set[str]) -> tuple[list[tuple[Observed, list[str]]], list[dict], list[dict]]:
    """([(resource, criteria it declares)], the untagged resources of in-scope types, the invalid
    declarations), each sorted."""
    declared, untagged, invalid = [], [], []
    for res in sorted(resources, key=lambda r: (r.resource_type, r.account, r.region, r.resource)):
        value, other_key = _tag_of(res.tags, tag_key)
        if value is None:
            if res.resource_type in in_scope:
                untagged.append(res.identity())
            continue
        found, reasons = parse_declaration(value, criteria)
        if other_key is not None:
            found, reasons = [], [f"tag key {shown(other_key)} is not {tag_key} (tag keys are case-sensitive)"]
        if reasons:
            invalid.append({**res.identity(), "key": shown(other_key or tag_key, VALUE_CHARS),
                            "value": shown(value, VALUE_CHARS), "reason": _joined(reasons)})
        if found:
            declared.append((res, found))
    return declared, untagged, invalid


def _findings_index(catalog, findings: Iterable[dict]) -> tuple[dict, dict, dict]:
    """(checks by id; resource findings by (type, account, resource); account-wide ones by (account, type))."""
    checks = {c.id: c for c in catalog.checks}
    on_resource, account_wide = defaultdict(list), defaultdict(list)
    for f in findings:
        check = checks.get(f["check"])
        if check is None:
            continue
        if check.scope == "account":
            account_wide[(f["account"], f["resource_type"])].append(f)
        else:
            on_resource[(f["resource_type"], f["account"], f["resource"])].append(f)
    return checks, on_resource, account_wide


def _judged(catalog, checks: dict, res: Observed, criterion: str, covering: list[dict]) -> dict:
    """One declared (resource, criterion): its state, the findings behind it, and why when none is."""
    mine = sorted((f for f in covering if criterion in checks[f["check"]].controls),
                  key=lambda f: (STATES.index(f["status"]) if f["status"] in STATES else 0, f["check"]))
    row = {"criterion": criterion, **res.identity(), "reason": "",
           "checks": [{"check": f["check"], "status": f["status"], "message": f["message"],
                       "account_wide": checks[f["check"]].scope == "account"} for f in mine]}
    if mine:
        statuses = {f["status"] for f in mine}
        row["state"] = next((s for s in ("FAIL", "ERROR", "EXCEPTED") if s in statuses), "PASS")
        return row
    readers = sorted(c.id for c in catalog.checks_for(criterion) if c.resource == res.resource_type)
    row["state"] = "NOT_EVIDENCED"
    row["reason"] = (f"the checks of {criterion} that read {res.resource_type} ({', '.join(readers)}) do not "
                     "apply to it" if readers else f"no check of {criterion} reads {res.resource_type}")
    return row


def declared_view(catalog, resources: Iterable[Observed], findings: Iterable[dict], tag_key: str,
                  specs: dict) -> dict:
    """The declared controls of a run: per criterion the declared resources and their states; the
    three lists (declared resources failing or in error on their criterion, declared but not evidenced,
    in-scope resources without a control tag) and the invalid declarations; deterministic order."""
    criteria = [c.id for c in catalog.controls]
    in_scope, no_tags = type_coverage(catalog, specs)
    declared, untagged, invalid = declarations(resources, set(criteria), tag_key, set(in_scope))
    checks, on_resource, account_wide = _findings_index(catalog, findings)
    rows = []
    for res, found in declared:
        covering = on_resource.get(res.key(), []) + account_wide.get((res.account, res.resource_type), [])
        rows += [_judged(catalog, checks, res, criterion, covering) for criterion in found]
    order = {cid: i for i, cid in enumerate(criteria)}
    rows.sort(key=lambda r: (order[r["criterion"]], r["resource_type"], r["account"], r["region"], r["resource"]))
    per_criterion = []
    for cid in criteria:
        mine = [r for r in rows if r["criterion"] == cid]
        if mine:
            per_criterion.append({"criterion": cid, "declared": len(mine),
                                  **{s.lower(): sum(1 for r in mine if r["state"] == s) for s in STATES}})
    return {"tag_key": tag_key, "criteria": per_criterion, "declared": rows,
            "failing": [r for r in rows if r["state"] in ("FAIL", "ERROR")],
            "not_evidenced": [r for r in rows if r["state"] == "NOT_EVIDENCED"],
            "untagged": untagged, "invalid": invalid,
            "in_scope_types": in_scope, "types_without_tags": no_tags,
            "resources": [{**res.identity(), "criteria": found} for res, found in declared]}


def counts(view: dict) -> dict:
    """The three lists' sizes, and the invalid declarations'."""
    return {"failing": len(view["failing"]), "not_evidenced": len(view["not_evidenced"]),
            "untagged": len(view["untagged"]), "invalid": len(view["invalid"]),
            "declared_resources": len(view["resources"])}


def annotate(findings: list[dict], view: dict) -> list[dict]:
    """Each finding with `declared_criteria` (what its resource's control tag declares; none for an
    account-wide finding) and `fails_declared` (a FAIL's criteria its resource is declared for)."""
    by_key = {(r["resource_type"], r["account"], r["resource"]): r["criteria"] for r in view["resources"]}
    out = []
    for f in findings:
        declared = by_key.get((f["resource_type"], f["account"], f["resource"]), [])
        failing = [c for c in declared if c in f["controls"]] if f["status"] == "FAIL" else []
        out.append({**f, "declared_criteria": list(declared), "fails_declared": failing})
    return out
