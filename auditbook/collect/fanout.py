"""A scan cut into tasks of one (account, region) each — every (account, region, service) unit of work in
exactly one task, so a rate-limit key's calls stay in one worker process, and the per-task cost (shipping,
scheduling, a Runner) is paid once per ~60 calls, not per 2 — and their results merged back into one
Collection — what `scan --executor dask://…` ships to workers and gets back (collect.distributed).
Pure: no cluster, no AWS; the order of everything merged is fixed, whatever order the tasks end in."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from auditbook.collect.records import GLOBAL, Collection, Gap, Scope
from auditbook.collect.spec import ResourceType
from auditbook.collect.targets import TargetSpec


@dataclass(frozen=True)
class Task:
    """One account's resource types in one region, all its services (the global types only in the home
    region's task). Everything a worker needs, and no secret: the role to assume, not credentials."""
    index: int  # the task's place in the plan: results are merged in this order
    target: TargetSpec
    region: str
    services: tuple[str, ...]  # the boto3 services of `types`
    types: tuple[str, ...]  # resource type names (the worker reads them from its own collectors)
    global_types: tuple[str, ...] = ()  # those of `types` collected once per account, here

    def scope_region(self, rtype: str) -> str:
        return GLOBAL if rtype in self.global_types else self.region


@dataclass
class TaskResult:
    """What a worker sends back: the account's identity (or why it could not be reached), what the task
    read (records, scopes, gaps, evidence, calls)."""
    index: int
    account: str
    identity: dict = field(default_factory=dict)
    error: Optional[str] = None
    collection: Collection = field(default_factory=Collection)


def plan_tasks(specs: list[TargetSpec], regions: list[str], rtypes: list[ResourceType], home: str) -> list[Task]:
    """The tasks of a scan, in a fixed order: per account in scope (specs' order), region (`regions`'
    order, then `home` if it is not among them: global types are read through it whatever the region
    list); types by service and name. A region is read for the regional types, `home` for the global ones."""
    ordered = sorted(rtypes, key=lambda r: (r.service, r.name))
    order = list(regions) + ([home] if home not in regions else [])
    tasks: list[Task] = []
    for spec in (s for s in specs if s.out_of_scope is None):
        for region in order:
            mine = [r for r in ordered if (r.scope == "global" and region == home)
                    or (r.scope != "global" and region in regions)]
            if mine:
                tasks.append(Task(len(tasks), spec, region, tuple(sorted({r.service for r in mine})),
                                  tuple(r.name for r in mine), tuple(r.name for r in mine if r.scope == "global")))
    return tasks


def failed_result(task: Task, code: str, message: str) -> TaskResult:
    """A task that did not come back (the worker raised, died, or lacks a collector): every scope of it
    an evidence gap naming why, so the affected checks are ERROR — never absent, never PASS."""
    collection = Collection()
    for name in task.types:
        gap = Gap(task.target.account, task.scope_region(name), name, "dask:task", code, message)
        collection.scopes.append(Scope(task.target.account, gap.region, name, gap))
        collection.gaps.append(gap)
    return TaskResult(task.index, task.target.account, collection=collection)


def _gap_key(gap: Gap) -> tuple:
    return (gap.account, gap.region, gap.resource_type, gap.resource or "", gap.call, gap.error, gap.message)


def merge(results: list[TaskResult]) -> Collection:
    """One Collection from the tasks' results: in plan order, and within a task records, scopes and
    gaps sorted, so the merged collection is the same whatever order the tasks finished in."""
    merged, by_operation = Collection(), Counter()
    for result in sorted(results, key=lambda r: r.index):
        part = result.collection
        merged.scopes.extend(sorted(part.scopes, key=lambda s: (s.account, s.region, s.resource_type)))
        merged.records.extend(sorted(part.records, key=lambda r: (r.type, r.account, r.scope_region, r.region,
                                                                  r.id, r.arn)))
        merged.gaps.extend(sorted(part.gaps, key=_gap_key))
        for sha, blob in part.evidence.items():
            merged.evidence.setdefault(sha, blob)
        merged.calls += part.calls
        by_operation.update(part.calls_by_operation)
        for key, stats in part.throttled.items():
            total = merged.throttled.setdefault(key, {"calls": 0, "throttled": 0, "waited_seconds": 0.0})
            for name, value in stats.items():
                total[name] = round(total[name] + value, 6)
    merged.calls_by_operation = dict(sorted(by_operation.items()))
    merged.throttled = dict(sorted(merged.throttled.items()))
    return merged


def accounts_of(specs: list[TargetSpec], results: list[TaskResult]) -> list[dict]:
    """The run's accounts as local scans record them (account, name, role, identity, error, and the
    scope entry of one out of scope), in the specs' order: the identity each account's first task
    read, and the first refusal if any task was refused (that account's other scopes say so too)."""
    identity: dict[str, dict] = {}
    error: dict[str, str] = {}
    for result in sorted(results, key=lambda r: r.index):
        if result.error and result.account not in error:
            error[result.account] = result.error
        if result.identity and result.account not in identity:
            identity[result.account] = result.identity
    return [{"account": s.account, "name": s.name, "role": None if s.out_of_scope is not None else s.role_arn,
             "identity": {} if s.account in error else identity.get(s.account, {}), "error": error.get(s.account),
             **({"out_of_scope": s.out_of_scope} if s.out_of_scope is not None else {})} for s in specs]
