"""What the collection process of `scan --executor local` does (collect.apart: the protocol): read the
inputs that decide where it collects, build the AWS clients while the command loads the catalog and
opens the store, then collect the resource types the command sends, within the system boundary it sends."""
from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Optional

from auditbook.collect.apart import Collected, CollectionRequest, received
from auditbook.collect.clients import ClientCache
from auditbook.collect.inputs import parse_regions
from auditbook.collect.memory import limit_malloc_arenas
from auditbook.collect.runner import in_job_order
from auditbook.collect.scan_plan import client_cache, collect_here
from auditbook.collect.spec import ResourceType
from auditbook.errors import UserError
from auditbook.plugins import resource_types


def collect(request: CollectionRequest, conn: Connection, outbox) -> Collected:
    """The collection `request` asks for, of the resource types that come with the boundary, in the accounts
    the command read from the accounts file (never read here: a file read twice could differ, and one
    given as the command's standard input can be read once)."""
    limit_malloc_arenas()
    clients = client_cache(request.workers * 2, request.profile, request.rate_limits)
    declared = resource_types()
    regions = parse_regions(request.regions) if request.regions else [clients.default_region]
    boundary, names, accounts_spec = boundary_after_preparing(conn, clients, list(declared.values()), regions)
    unknown = sorted(set(names) - set(declared))
    if unknown:  # the command's plugins declared a type this process's do not
        raise UserError(f"resource type {unknown[0]!r} is not declared in the collection process")
    rtypes = [declared[name] for name in names]
    return collect_here(request, accounts_spec, rtypes, boundary, None, outbox.plan, outbox.progress, clients)


def boundary_after_preparing(conn: Connection, clients: ClientCache, rtypes: list[ResourceType],
                             regions: Optional[list[str]]):
    """(the boundary, the resource types to read, the accounts file as the command read it) as the command
    sends them; until they come, the clients a collection of `rtypes` (every type declared: the command has
    not said which yet) would use are built in the order it uses them (service models loaded, clients
    created: no call to AWS is made). `regions` None ("all": known only from a call) prepares the identity
    client alone."""
    for service, region in clients_in_order(rtypes, regions or [], clients.default_region):
        if conn.poll():
            break
        try:
            clients.shared(service, region)
        except Exception:  # noqa: BLE001 -- not swallowed: the collection meets it again where it would inline
            break
    return received(conn, "boundary")


def clients_in_order(rtypes: list[ResourceType], regions: list[str], default_region: str) -> list[tuple[str, str]]:
    """The (service, region) clients a collection of `rtypes` in `regions` uses, in the order its jobs
    start (collect.runner.in_job_order; global types in the first region), after
    the identity client; each once."""
    wanted = {("sts", default_region): None}
    for rtype in in_job_order(rtypes):
        for region in (regions[:1] if rtype.scope == "global" else regions):
            for call in rtype.calls():
                wanted.setdefault((call.service or rtype.service, call.region or region), None)
    return list(wanted)
