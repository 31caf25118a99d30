"""Which AWS accounts a scan covers: the current credentials, an accounts file, or an organisation."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import botocore.session
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from auditbook.collect.clients import ClientCache
from auditbook.collect.inputs import AccountsFile, parse_regions
from auditbook.errors import (
    ScanAborted,
    UserError,
)


@dataclass
class Target:
    account: str
    name: str
    credentials: object = None  # botocore credentials (refreshable for an assumed role)
    identity: dict = field(default_factory=dict)  # sts:GetCallerIdentity (Account, Arn, UserId)
    role_arn: Optional[str] = None
    error: Optional[str] = None  # why the account could not be reached
    out_of_scope: Optional[dict] = None  # the scope entry that keeps the scan out of it (never reached, never read)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def _identity(clients: ClientCache, credentials) -> dict:
    with clients.client(credentials, "sts").use() as sts:
        ident = sts.get_caller_identity()
    return {k: ident[k] for k in ("Account", "Arn", "UserId")}


def current_target(clients: ClientCache, name: str = "current") -> Target:
    try:
        ident = _identity(clients, clients.base_credentials)
    except (ClientError, BotoCoreError) as exc:
        raise ScanAborted(f"cannot read the caller identity of the current credentials: {_error_text(exc)}")
    return Target(ident["Account"], name, clients.base_credentials, ident)


def role_arn_for(account: str, role: str, partition: str = "aws") -> str:
    return role if role.startswith("arn:") else f"arn:{partition}:iam::{account}:role/{role}"


def assumed_target(clients: ClientCache, account: str, name: str, role: str,
                   external_id: Optional[str] = None) -> Target:
    """A target reached by sts:AssumeRole, with credentials that refresh themselves."""
    arn = role_arn_for(account, role)
    sts = clients.client(clients.base_credentials, "sts")
    kwargs = {"RoleArn": arn, "RoleSessionName": "auditbook-scan"}
    if external_id:
        kwargs["ExternalId"] = external_id

    def refresh():
        with sts.use() as client:
            creds = client.assume_role(**kwargs)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    try:
        first = refresh()
    except (ClientError, BotoCoreError) as exc:
        return Target(account, name, None, {}, arn, f"cannot assume {arn}: {_error_text(exc)}")
    state = {"first": first}

    def refresh_after_first():
        if state["first"]:
            value, state["first"] = state["first"], None
            return value
        return refresh()

    creds = DeferredRefreshableCredentials(refresh_using=refresh_after_first, method="assume-role")
    try:
        ident = _identity(clients, creds)
    except (ClientError, BotoCoreError) as exc:
        return Target(account, name, None, {}, arn, f"assumed {arn} but cannot read identity: {_error_text(exc)}")
    return Target(account, name, creds, ident, arn)


@dataclass(frozen=True)
class TargetSpec:
    """An account a scan covers, as decided before anything is assumed: what a Dask worker is given
    (no credentials, ever). role_arn None: read it with the current credentials (theirs, on a worker)."""
    account: str
    name: str
    role_arn: Optional[str] = None
    external_id: Optional[str] = None
    out_of_scope: Optional[dict] = None


def specs_from_file(clients: ClientCache, spec: AccountsFile, path: Path, skip: Optional[dict[str, dict]] = None,
                    current: Optional[Target] = None) -> list[TargetSpec]:
    """The accounts of a validated accounts file (`load_accounts_file`), none assumed; an entry without
    a role must be the current credentials' account (`current`, else read now)."""
    skip = skip or {}
    if any(not e.role for e in spec.accounts if e.id not in skip):
        current = current or current_target(clients)
        for entry in (e for e in spec.accounts if e.id not in skip and not e.role):
            if current.account != entry.id:
                raise UserError(f"{path}: account {entry.id} has no role and the current credentials "
                                f"belong to {current.account}")
    return [TargetSpec(e.id, e.name or e.id, role_arn_for(e.id, e.role) if e.role else None, e.external_id,
                       skip.get(e.id)) for e in spec.accounts]


def specs_from_org(clients: ClientCache, role: str, skip: Optional[dict[str, dict]] = None,
                   me: Optional[Target] = None) -> list[TargetSpec]:
    """Every ACTIVE account of the organisation, listed with the current credentials (`me`, else read
    now; nothing assumed): the management account read with those credentials, the others through ROLE."""
    skip = skip or {}
    me = me or current_target(clients)
    try:
        with clients.client(me.credentials, "organizations").use() as org:
            accounts = [a for page in org.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
    except (ClientError, BotoCoreError) as exc:
        raise ScanAborted(f"cannot list the organisation's accounts: {_error_text(exc)}")
    active = [a for a in sorted(accounts, key=lambda a: a["Id"]) if a.get("Status", "ACTIVE") == "ACTIVE"]
    return [TargetSpec(a["Id"], a.get("Name") or a["Id"], None if a["Id"] == me.account else role_arn_for(a["Id"], role),
                       None, skip.get(a["Id"])) for a in active]


def reach(clients: ClientCache, spec: TargetSpec, current: Optional[Target] = None) -> Target:
    """The spec's account reached: out of scope (never reached), its role assumed, or the current
    credentials (`current`, else read now) — which must belong to it: another account is an error
    value (every scope of it a gap), never a scan of the wrong account."""
    if spec.out_of_scope is not None:
        return Target(spec.account, spec.name, out_of_scope=spec.out_of_scope)
    if spec.role_arn:
        return assumed_target(clients, spec.account, spec.name, spec.role_arn, spec.external_id)
    if current is None:
        try:
            current = current_target(clients)
        except ScanAborted as exc:
            return Target(spec.account, spec.name, error=str(exc))
    if current.account != spec.account:
        return Target(spec.account, spec.name, error=f"the current credentials belong to account "
                      f"{current.account}, not {spec.account}")
    return Target(spec.account, spec.name, current.credentials, current.identity)


def reach_all(clients: ClientCache, specs: list[TargetSpec], current: Optional[Target] = None) -> list[Target]:
    """Every spec reached (8 at a time), in the specs' order; `current`: the current credentials' target
    when already read."""
    if current is None and any(s.out_of_scope is None and not s.role_arn for s in specs):
        current = current_target(clients)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda s: reach(clients, s, current), specs))


def targets_from_file(clients: ClientCache, spec: AccountsFile, path: Path,
                      skip: Optional[dict[str, dict]] = None) -> list[Target]:
    """The accounts of a validated accounts file (`load_accounts_file`), each reached (or not);
    `skip` {account: scope entry}: out of scope, listed but never reached."""
    current = current_target(clients) if any(not e.role for e in spec.accounts if e.id not in (skip or {})) else None
    return reach_all(clients, specs_from_file(clients, spec, path, skip, current), current)


def targets_from_org(clients: ClientCache, role: str, skip: Optional[dict[str, dict]] = None) -> list[Target]:
    """Every ACTIVE account of the organisation: the management account with the current
    credentials, the others by assuming ROLE; `skip` {account: scope entry}: listed, never reached."""
    me = current_target(clients)
    return reach_all(clients, specs_from_org(clients, role, skip, me), me)


def resolve_regions(targets: list[Target], regions: Optional[str], clients: ClientCache) -> list[str]:
    """A comma-separated list, "all" (every region enabled for the first reachable account),
    or the session's default region (us-east-1 when none is configured)."""
    listed = parse_regions(regions)
    if listed is not None:
        return listed
    if regions:
        reachable = next((t for t in targets if t.credentials and not t.out_of_scope), None)
        if reachable is None:
            raise ScanAborted("no reachable account to list the enabled regions from")
        try:
            with clients.client(reachable.credentials, "ec2").use() as ec2:
                found = ec2.describe_regions()
        except (ClientError, BotoCoreError) as exc:
            raise ScanAborted(f"cannot list enabled regions: {_error_text(exc)}")
        return sorted(r["RegionName"] for r in found["Regions"])
    return [clients.default_region]


def known_regions(partition: str = "aws") -> list[str]:
    """The partition's regions as botocore's bundled endpoint data lists them (no call to AWS): the
    regions a scan could have read, enabled in an account or not."""
    return botocore.session.get_session().get_available_regions("ec2", partition_name=partition)
