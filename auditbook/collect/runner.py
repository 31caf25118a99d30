"""Runs resource-type specs against AWS: every response kept as evidence, every failure a gap."""
from __future__ import annotations

import gc
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jmespath
from botocore.exceptions import BotoCoreError, ClientError

from auditbook.collect.answers import SharedAnswers
from auditbook.collect.call_counter import CallCounter, count_calls_of
from auditbook.collect.clients import BoundClient, ClientCache
from auditbook.collect.evidence import canonical, clean_response, digest
from auditbook.collect.ratelimit import UNATTRIBUTED, throttled_keys
from auditbook.collect.records import GLOBAL, Collection, Gap, Record, Scope, tag_dict
from auditbook.collect.spec import Call, ResourceType
from auditbook.collect.targets import Target

WAIT_TRIES, WAIT_SECONDS = 10, 1.0  # Call.wait_on: e.g. an IAM credential report being generated


@dataclass
class StaticCache:
    """Answers of static calls (Call.static: AWS-defined, the same in every account), once per region:
    for one Runner, or shared by the runs of one scan in a Dask worker process."""
    values: dict = field(default_factory=dict)
    locks: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CallFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _fill(params: dict, record: dict, context: dict) -> dict:
    """Request parameters with every "{path}" string (at any depth) replaced by its value."""
    def value_of(value):
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            path = value[1:-1]
            resolved = context[path] if path in context else jmespath.search(path, record)
            if resolved is None:
                raise CallFailed("MissingParameter", f"{path} is not set on the record")
            return resolved
        if isinstance(value, list):
            return [value_of(v) for v in value]
        if isinstance(value, dict):
            return {k: value_of(v) for k, v in value.items()}
        return value
    return value_of(params)


class _ListFailed(Exception):
    def __init__(self, call: Call, error: CallFailed):
        self.call, self.error = call, error


@dataclass
class _Job:
    """One resource type in one account and region, as its calls see it."""
    target: Target
    region: str
    scope_region: str
    rtype: ResourceType
    context: dict
    client: Callable[..., Any]  # (boto3 service, pinned region or None) -> client
    shared: dict = field(default_factory=dict)
    list_hashes: list = field(default_factory=list)

    def gap(self, call: Call, exc: CallFailed, resource: Optional[str] = None) -> Gap:
        return Gap(self.target.account, self.scope_region, self.rtype.name, call.action, exc.code, exc.message,
                   resource)


class Runner:
    """Collects resource types for targets and regions with a bounded pool of threads."""

    def __init__(self, workers: int = 12, on_progress: Optional[Callable[[str], None]] = None,
                 clients: Optional[ClientCache] = None, static: Optional[StaticCache] = None):
        self.clients = clients or ClientCache(pool=workers * 2)
        self.workers = workers
        self.on_progress = on_progress
        self._lock = threading.Lock()
        self.result = Collection()
        self._detail_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detail")
        self._static = static or StaticCache()
        self._answers: Optional[SharedAnswers] = None  # set by run
        self.counter = CallCounter()  # this runner's own calls (result.calls counts the whole ClientCache's)

    # -- evidence -------------------------------------------------------------------------
    def _keep(self, response: dict) -> tuple[Any, str]:
        body = clean_response(response)
        data = canonical(body)
        sha = digest(data)
        with self._lock:
            if sha not in self.result.evidence:
                self.result.evidence[sha] = zlib.compress(data, 6)
        return body, sha

    def _api(self, bound: BoundClient, call: Call, params: dict, paginate: bool) -> tuple[Any, list[str]]:
        """One call (all pages) as the bound account: the value at call.result and the evidence hashes."""
        count_calls_of(bound.client)
        with bound.use() as client, self.counter.counting():
            for attempt in range(WAIT_TRIES):
                try:
                    return self._call(client, call, params, paginate)
                except CallFailed as exc:
                    if exc.code not in call.wait_on or attempt == WAIT_TRIES - 1:
                        raise
                    time.sleep(WAIT_SECONDS)

    def _call(self, client, call: Call, params: dict, paginate: bool) -> tuple[Any, list[str]]:
        try:
            if paginate and client.can_paginate(call.method):
                values: list = []
                hashes = []
                for page in client.get_paginator(call.method).paginate(**params):
                    body, sha = self._keep(page)
                    hashes.append(sha)
                    found = jmespath.search(call.result, body) if call.result else body
                    values.extend(found or [])
                return values, hashes
            body, sha = self._keep(getattr(client, call.method)(**params))
            return (jmespath.search(call.result, body) if call.result else body), [sha]
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise CallFailed(err.get("Code") or "ClientError", err.get("Message") or str(exc)) from None
        except BotoCoreError as exc:
            raise CallFailed(type(exc).__name__, str(exc)) from None
        except NotImplementedError as exc:
            raise CallFailed("NotImplemented", str(exc) or call.method) from None
        except CallFailed:
            raise
        except Exception as exc:  # any other failure is still a gap, reported with its type
            raise CallFailed(type(exc).__name__, str(exc)) from None

    def _shared(self, job: "_Job", call: Call):
        """A once-per-scope call; static (account-independent) ones once per region for the run."""
        client, region = job.client(call.service or job.rtype.service, call.region), call.region or job.region
        if not call.static:
            return self._answer(job, call, lambda: self._api(client, call, _fill(call.params, {}, job.context), True))[0]
        key, static = (region, call.service, call.method), self._static
        with static.lock:
            lock = static.locks.setdefault(key, threading.Lock())
        with lock:
            if key not in static.values:
                static.values[key] = self._api(client, call, _fill(call.params, {}, job.context), True)[0]
            return static.values[key]

    def _answer(self, job: "_Job", call: Call, ask: Callable[[], tuple]) -> tuple:
        """A list or shared call's (values, hashes); one that several types make alike, once per
        (account, region) of a run (collect.answers)."""
        if self._answers is None:
            return ask()
        return self._answers.answer(job.target.account, job.region, call, job.rtype.service, ask)

    # -- one resource type in one scope ----------------------------------------------------
    def collect(self, target: Target, region: str, rtype: ResourceType) -> None:
        scope_region = GLOBAL if rtype.scope == "global" else region
        context = {"account": target.account, "region": region, "partition": partition_of(region)}
        scope = Scope(target.account, scope_region, rtype.name)
        if target.error:
            scope.gap = Gap(target.account, scope_region, rtype.name, "sts:AssumeRole",
                            "AccountUnreachable", target.error)
            self._finish(scope, [])
            return
        job = _Job(target, region, scope_region, rtype, context,
                   lambda svc, pinned=None: self.clients.client(target.credentials, svc, pinned or region,
                                                                target.account))  # the rate limits' key
        try:
            items = self._list(job)
        except _ListFailed as failed:
            scope.gap = job.gap(failed.call, failed.error)
            self._finish(scope, [])
            return
        if len(items) > 1 and rtype.details:
            records = list(self._detail_pool.map(lambda item: self._record(job, item), items))
        else:
            records = [self._record(job, item) for item in items]
        self._finish(scope, records)

    def _list(self, job: "_Job") -> list[dict]:
        """The scope's items (one empty item for a one-per-scope type), and the shared calls joined
        to them; a failed call is _ListFailed (the whole scope is a gap)."""
        rtype, current = job.rtype, job.rtype.list
        try:
            if rtype.list is None:
                items = [{}]
            else:
                client = job.client(rtype.list.service or rtype.service, rtype.list.region)
                items, job.list_hashes = self._answer(job, rtype.list, lambda: self._api(
                    client, rtype.list, _fill(rtype.list.params, {}, job.context), True))
            for key, call in (rtype.shared.items() if items else ()):  # nothing listed: nothing to join
                current = call
                job.shared[key] = self._shared(job, call)
        except CallFailed as exc:
            raise _ListFailed(current, exc)
        return items

    def _details(self, job: "_Job", data: dict, rid: str) -> tuple[list[str], dict[str, Gap]]:
        """Each detail call of one resource, its answer put into `data`: (evidence hashes, gaps)."""
        hashes, gaps = list(job.list_hashes), {}
        for key, call in job.rtype.details.items():
            if call.when and not jmespath.search(call.when, data):
                data[key] = None
                continue
            try:
                data[key], shas = self._api(job.client(call.service or job.rtype.service, call.region), call,
                                            _fill(call.params, data, job.context), call.paginate)
                hashes.extend(shas)
            except CallFailed as exc:
                data[key] = None
                if exc.code not in call.absent:
                    gaps[key] = job.gap(call, exc, rid)
        return hashes, gaps

    def _record(self, job: "_Job", item: dict) -> Record:
        rtype, scope_region = job.rtype, job.scope_region
        data = dict(item)
        rid = self._id(rtype, data, job.target.account, scope_region)
        hashes, gaps = self._details(job, data, rid)
        if rtype.list is None:  # a one-per-scope record says which scope it describes
            data["account_id"], data["scope_region"] = job.target.account, scope_region
        if rtype.normalise:
            data = rtype.normalise(data, job.shared)
        rec_region = (jmespath.search(rtype.region_of, data) if rtype.region_of else None) or scope_region
        ctx = {**{k: v for k, v in data.items() if isinstance(v, (str, int))}, **job.context, "region": rec_region}
        arn = rtype.arn.format(**ctx) if rtype.arn else rid
        tags = tag_dict(jmespath.search(rtype.tags, data)) if rtype.tags else {}
        return Record(rtype.name, job.target.account, rec_region, rid, arn, data, hashes, gaps, scope_region,
                      self._display(rtype, data, rid, scope_region), tags)

    @staticmethod
    def _id(rtype: ResourceType, data: dict, account: str, region: str) -> str:
        if not rtype.id:
            return f"{account}/{region}"
        found = jmespath.search(rtype.id, data)
        return str(found)

    @staticmethod
    def _display(rtype: ResourceType, data: dict, rid: str, scope_region: str) -> str:
        if not rtype.id:  # one record per scope
            return "account" if scope_region == GLOBAL else scope_region
        found = jmespath.search(rtype.display, data) if rtype.display else None
        found = found or jmespath.search("Tags[?Key=='Name'].Value | [0]", data)
        return str(found or rid)

    def _finish(self, scope: Scope, records: list[Record]) -> None:
        with self._lock:
            self.result.scopes.append(scope)
            if scope.gap:
                self.result.gaps.append(scope.gap)
            self.result.records.extend(records)
            for rec in records:
                self.result.gaps.extend(rec.gaps.values())
        if self.on_progress:
            self.on_progress(f"{scope.account} {scope.region} {scope.resource_type}")

    def _collect_job(self, target: Target, region: str, rtype: ResourceType) -> None:
        try:
            self.collect(target, region, rtype)
        finally:
            self._answers.done(target.account, region)

    # -- everything ------------------------------------------------------------------------
    def run(self, targets: list[Target], regions: list[str], rtypes: list[ResourceType],
            global_region: Optional[str] = None) -> Collection:
        """Collect every type in every target in scope (a target out of scope is never read) and
        region; global types once per account, through `global_region` (default: the first region)."""
        jobs = []
        rtypes = in_job_order(rtypes)
        home = global_region or (regions[0] if regions else None)
        for target in (t for t in targets if not t.out_of_scope):
            for rtype in rtypes:
                for region in (([home] if home else []) if rtype.scope == "global" else regions):
                    jobs.append((target, region, rtype))
        self._answers = SharedAnswers(rtypes, [(target.account, region) for target, region, _ in jobs])
        try:
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="collect") as pool:
                futures = [pool.submit(self._collect_job, *job) for job in jobs]
                for fut in as_completed(futures):
                    fut.result()
        finally:
            self._detail_pool.shutdown(wait=True)
            gc.unfreeze()  # see ClientCache.shared
        self.result.calls = self.clients.calls
        self.result.calls_by_operation = dict(self.clients.calls_by_operation)
        self.result.throttled = throttled_keys(self._limiter_stats(targets))
        return self.result

    def _limiter_stats(self, targets: list[Target]) -> dict[str, dict]:
        """The rate-limit statistics of these targets' accounts (and of calls made without one) only: a
        Dask worker's clients hold the keys of every account it has served, and reading them all at the
        end of every task grew with the accounts seen."""
        stats: dict[str, dict] = {}
        for account in sorted({t.account for t in targets} | {UNATTRIBUTED}):
            stats.update(self.clients.limiter_stats(account))
        return stats


def in_job_order(rtypes: list[ResourceType]) -> list[ResourceType]:
    """The order Runner.run starts its jobs in: detail-heavy types first, so their per-resource calls
    overlap with the cheap list calls."""
    return sorted(rtypes, key=lambda r: (-len(r.details), r.name))


def planned_jobs(targets: list, regions: list[str], rtypes: list[ResourceType]) -> int:
    """How many (account, region, type) scopes Runner.run (or a distributed scan) will read, for Targets
    or TargetSpecs (those out of scope: none)."""
    return sum(1 if r.scope == "global" else len(regions) for r in rtypes) * sum(1 for t in targets if not t.out_of_scope)
