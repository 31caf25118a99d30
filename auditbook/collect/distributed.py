"""`scan --executor dask://HOST:PORT`: the collection fanned out over a Dask distributed cluster.

The coordinator (the `auditbook scan` process) decides the accounts without assuming any role, cuts the
scan into tasks of one (account, region) (collect.fanout), and merges what comes back; the
workers assume each account's role with their own credentials — nothing secret is shipped either way
(docs/distributed.md). Evaluation and storing stay with the coordinator, as in a local scan.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Callable, Optional

from auditbook.collect.call_counter import CallCounter, count_calls_of
from auditbook.collect.clients import ClientCache
from auditbook.collect.executors import dask_address
from auditbook.collect.fanout import (
    Task,
    TaskResult,
    accounts_of,
    failed_result,
    merge,
    plan_tasks,
)
from auditbook.collect.ratelimit import RateLimits, throttled_keys
from auditbook.collect.records import Collection
from auditbook.collect.runner import Runner, StaticCache
from auditbook.collect.spec import ResourceType
from auditbook.collect.targets import Target, TargetSpec, reach
from auditbook.errors import UserError, one_line, shown

CONNECT_SECONDS = 10.0  # how long the scheduler has to answer before the scan is refused


# -- the coordinator ---------------------------------------------------------------------------------------

def connect(executor: str, timeout: Optional[float] = None):
    """A Dask client of the scheduler at --executor, or a one-line UserError when none answers in
    `timeout` seconds (default CONNECT_SECONDS; or TLS is asked for without dask's TLS configuration)."""
    address, timeout = dask_address(executor), timeout or CONNECT_SECONDS
    from distributed import Client  # only dask scans pay for importing it
    from distributed.security import Security
    if address.startswith("tls://") and Security().get_connection_args("client").get("ssl_context") is None:
        raise UserError(f"--executor: {shown(executor)}: TLS needs dask's TLS configuration (distributed.comm.tls: "
                        "ca-file, client cert and key; docs/distributed.md)")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, TypeError, ValueError) as exc:
        raise UserError(f"--executor: {shown(executor)}: no Dask scheduler answered within {timeout:g} s "
                        f"({one_line(str(exc))[:200]})") from None


def collect_distributed(client, specs: list[TargetSpec], regions: list[str], rtypes: list[ResourceType],
                        home: str, workers: int, on_progress: Optional[Callable[[str], None]] = None,
                        rate_limits: Optional[RateLimits] = None) -> tuple[Collection, list[dict]]:
    """Collect on the cluster: (the merged Collection, the accounts as a local scan records them). A
    task that fails on the cluster (raised, worker lost) comes back as gaps for its scopes. All the calls
    of one (account, region, service) are in one task, so `rate_limits` hold on one worker process."""
    from distributed import as_completed
    tasks = plan_tasks(specs, regions, rtypes, home)
    scan_id = uuid.uuid4().hex
    keys = [f"auditbook-{scan_id}-{t.index}" for t in tasks]
    futures = client.map(run_task, tasks, scan_id=scan_id, threads=workers, rate_limits=rate_limits, key=keys,
                         pure=False)
    by_key = {key: task for key, task in zip(keys, tasks)}
    results: list[TaskResult] = []
    for future in as_completed(futures, loop=client.loop):
        task = by_key[future.key]
        try:
            result = future.result()
        except Exception as exc:  # the worker raised or was lost: an error value (gaps), never dropped
            result = failed_result(task, type(exc).__name__, one_line(str(exc))[:300])
        future.release()
        results.append(result)
        for scope in result.collection.scopes if on_progress else ():
            on_progress(f"{scope.account} {scope.region} {scope.resource_type}")
    return merge(results), accounts_of(specs, results)


# -- a worker process --------------------------------------------------------------------------------------

KEPT_SCANS = 4  # scans whose assumed accounts and static answers a worker process keeps


class _ScanState:
    """One scan's state in one worker process: each account reached once (its role assumed, or the
    refusal), shared by all the scan's tasks on that process; static calls' answers."""

    def __init__(self):
        self.static = StaticCache()
        self._targets: dict[tuple, Target] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def target(self, clients: ClientCache, spec: TargetSpec) -> Target:
        key = (spec.account, spec.role_arn, spec.external_id)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._targets:
                self._targets[key] = reach(clients, spec)  # the worker's own credentials assume the role
            return self._targets[key]


_process_lock = threading.Lock()
_process: dict = {"clients": {}, "scans": OrderedDict()}


def _worker_clients(threads: int, rate_limits: Optional[RateLimits]) -> ClientCache:
    """This process's clients (shared by every task it runs with the same rate limits), from the
    worker's own credentials."""
    key = rate_limits.model_dump_json() if rate_limits else None
    with _process_lock:
        if key not in _process["clients"]:
            _process["clients"][key] = ClientCache(pool=threads * 2 * _worker_threads(), rate_limits=rate_limits)
        return _process["clients"][key]


def _worker_threads() -> int:
    try:
        from distributed import get_worker
        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):  # not on a Dask worker (called directly)
        return 1


def _scan_state(scan_id: str) -> _ScanState:
    with _process_lock:
        scans = _process["scans"]
        if scan_id not in scans:
            scans[scan_id] = _ScanState()
            while len(scans) > KEPT_SCANS:  # a later scan assumes again: a revoked role is seen
                scans.popitem(last=False)
        return scans[scan_id]


def _known_types() -> dict[str, ResourceType]:
    """The collectors of this process. Loaded under a lock: plugins.manager() is not safe to load from
    several threads at once (the first calls can each build a manager, one left without built-ins)."""
    from auditbook.plugins import resource_types
    with _process_lock:
        return resource_types()


def run_task(task: Task, scan_id: str, threads: int, rate_limits: Optional[RateLimits] = None) -> TaskResult:
    """One task on a worker: the account reached (once per scan and process), the task's resource types
    collected with a Runner of `threads` threads; the calls counted are this task's own."""
    known = _known_types()
    missing = [name for name in task.types if name not in known]
    if missing:
        return failed_result(task, "CollectorMissing", f"the worker has no collector for {missing[0]}: "
                             "workers need the coordinator's auditbook and collectors")
    clients = _worker_clients(threads, rate_limits)
    account = task.target.account
    before = clients.limiter_stats(account)  # the process's limiters serve every task: this task's share is the change
    counter = CallCounter()
    count_calls_of(clients.shared("sts", clients.default_region))
    with counter.counting():
        target = _scan_state(scan_id).target(clients, task.target)
    runner = Runner(workers=threads, clients=clients, static=_scan_state(scan_id).static)
    collection = runner.run([target], [task.region], [known[name] for name in task.types],
                            global_region=task.region)
    collection.calls = runner.counter.calls + counter.calls
    collection.calls_by_operation = dict(runner.counter.by_operation + counter.by_operation)
    services = set().union(*(known[name].services() for name in task.types))
    collection.throttled = {key: stats for key, stats in throttled_keys(clients.limiter_stats(account), before).items()
                            if key.rsplit("/", 1)[1] in services}
    return TaskResult(task.index, task.target.account, target.identity, target.error, collection)
