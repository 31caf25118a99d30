"""How a scan collects, wherever it runs (this process's threads, a collection process, a Dask
cluster's workers): the AWS clients, the accounts it covers given the system boundary, and the
collection of those accounts' resource types in the regions read."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from botocore.exceptions import BotoCoreError

from auditbook.collect.apart import Collected, CollectionRequest
from auditbook.collect.clients import ClientCache
from auditbook.collect.distributed import collect_distributed
from auditbook.collect.plan import Boundary
from auditbook.collect.ratelimit import RateLimits
from auditbook.collect.records import Collection
from auditbook.collect.runner import Runner, planned_jobs
from auditbook.collect.spec import ResourceType
from auditbook.collect.targets import (
    TargetSpec,
    current_target,
    parse_regions,
    resolve_regions,
    specs_from_file,
    specs_from_org,
    targets_from_file,
    targets_from_org,
)
from auditbook.errors import UserError, one_line


def client_cache(pool: int, profile: Optional[str], rate_limits: Optional[RateLimits] = None) -> ClientCache:
    """The scan's AWS clients; a profile that does not exist (or a broken AWS config) is one line."""
    try:
        return ClientCache(pool=pool, profile=profile, rate_limits=rate_limits)
    except BotoCoreError as exc:
        raise UserError(f"{'--profile' if profile else 'AWS configuration'}: {one_line(str(exc))}")


def collect_here(request: CollectionRequest, accounts_spec, rtypes: list[ResourceType], boundary: Boundary,
                 cluster, on_plan, on_progress, clients: Optional[ClientCache] = None) -> Collected:
    """The collection itself, in this process's threads (an inline scan, or the collection process of a
    local one, with the `clients` it prepared) or on a Dask cluster (`cluster`)."""
    clients = clients or client_cache(request.workers * 2, request.profile, request.rate_limits)
    plan = ScanPlan(clients, boundary, request.accounts_file, accounts_spec, request.org_role, request.regions,
                    rtypes, request.workers, request.rate_limits)
    collection, accounts, regions, requested = plan.collect(cluster, on_plan, on_progress)
    return Collected(collection, accounts, regions, requested, [r.name for r in rtypes])


@dataclass
class ScanPlan:
    """What a scan reads (accounts, regions, resource types) and how: with this process's threads, or
    on a Dask cluster, where the accounts are decided without assuming any role (collect.distributed)."""
    clients: ClientCache
    boundary: Boundary
    accounts_file: Optional[Path]
    accounts_spec: object
    org_role: Optional[str]
    regions: Optional[str]
    rtypes: list
    workers: int
    rate_limits: Optional[RateLimits] = None

    def collect(self, cluster, on_plan, on_progress) -> tuple[Collection, list[dict], list[str], list[str]]:
        """(collection, accounts, regions read, regions requested); excluded regions are never read."""
        if cluster is None:
            targets = scan_targets(self.clients, self.boundary, self.accounts_file, self.accounts_spec, self.org_role)
            all_regions = resolve_regions(targets, self.regions, self.clients)
        else:
            specs = scan_specs(self.clients, self.boundary, self.accounts_file, self.accounts_spec, self.org_role)
            listed = self.regions and parse_regions(self.regions) is None  # "all": the coordinator's account's
            all_regions = resolve_regions([current_target(self.clients)] if listed else [], self.regions, self.clients)
        region_list = [r for r in all_regions if r not in self.boundary.regions_out()]
        if on_plan:
            on_plan(planned_jobs(targets if cluster is None else specs, region_list, self.rtypes))
        if cluster is not None:
            collection, accounts = collect_distributed(cluster, specs, region_list, self.rtypes, all_regions[0],
                                                       self.workers, on_progress, self.rate_limits)
            collection.calls += self.clients.calls  # and the coordinator's own (identity, accounts, regions)
            collection.calls_by_operation = dict(sorted((Counter(collection.calls_by_operation)
                                                         + self.clients.calls_by_operation).items()))
            return collection, accounts, region_list, all_regions
        collection = Runner(workers=self.workers, on_progress=on_progress, clients=self.clients).run(
            targets, region_list, self.rtypes, global_region=all_regions[0])
        accounts = [{"account": t.account, "name": t.name, "role": t.role_arn, "identity": t.identity,
                     "error": t.error, **({"out_of_scope": t.out_of_scope} if t.out_of_scope else {})}
                    for t in targets]
        return collection, accounts, region_list, all_regions


def scan_targets(clients: ClientCache, boundary: Boundary, accounts_file: Optional[Path], accounts_spec,
                 org_role: Optional[str]) -> list:
    """The accounts the scan covers; those out of scope are listed with their entry and never reached."""
    skip = boundary.accounts_out()
    if accounts_file:
        return targets_from_file(clients, accounts_spec, accounts_file, skip)
    if org_role:
        return targets_from_org(clients, org_role, skip)
    target = current_target(clients)
    target.out_of_scope = skip.get(target.account)
    return [target]


def scan_specs(clients: ClientCache, boundary: Boundary, accounts_file: Optional[Path], accounts_spec,
               org_role: Optional[str]) -> list[TargetSpec]:
    """The accounts a distributed scan covers, decided with the current credentials and no role assumed
    (the workers assume them): those out of scope carry their entry and get no task."""
    skip = boundary.accounts_out()
    if accounts_file:
        return specs_from_file(clients, accounts_spec, accounts_file, skip)
    if org_role:
        return specs_from_org(clients, org_role, skip)
    me = current_target(clients)
    return [TargetSpec(me.account, "current", out_of_scope=skip.get(me.account))]
