"""botocore clients for a scan: standard retries, shared service models, one client per
(service, region) shared by every account, rate limits and throttling retries per (account, region,
service) (collect/ratelimit.py), and a local-endpoint fix for S3 Control."""
from __future__ import annotations

import gc
import os
import re
import threading
import weakref
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, Credentials
from botocore.exceptions import NoCredentialsError

from auditbook.collect.ratelimit import Limiters, RateLimits
from auditbook.collect.service_models import lean_loader

_ACCOUNT_PREFIX = re.compile(r"^\d{12}\.")


def max_attempts() -> int:
    """Attempts of a call that fails other than by throttling, the first included."""
    return int(os.environ.get("AUDITBOOK_MAX_ATTEMPTS", "5"))


def retry_config(pool: int) -> Config:
    """Standard mode: exponential backoff with jitter. Not adaptive: botocore's adaptive limiter is
    per client, and a scan's client serves every account (ClientCache adds one per account instead)."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts()},  # including the first
        connect_timeout=int(os.environ.get("AUDITBOOK_CONNECT_TIMEOUT", "5")),
        read_timeout=int(os.environ.get("AUDITBOOK_READ_TIMEOUT", "60")),
        max_pool_connections=pool,
        user_agent_extra="auditbook",
    )


def strip_account_prefix(request, **_):
    """S3 Control puts the account id before the host; a local endpoint (moto) has no such name."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    if _ACCOUNT_PREFIX.match(host):
        bare = _ACCOUNT_PREFIX.sub("", parts.netloc, count=1)
        bare_host = bare.split(":")[0]
        if bare_host in ("localhost", "127.0.0.1", "::1") or bare_host.replace(".", "").isdigit():
            request.url = urlunsplit(parts._replace(netloc=bare))


_loader_lock = threading.Lock()
_shared_loader = None


def new_session(profile: Optional[str] = None, credentials: Optional[dict] = None) -> botocore.session.Session:
    """A botocore session that shares one lean service-model loader (collect.service_models) with every
    other (memory, speed); `credentials`: an sts:AssumeRole answer's Credentials, else the standard chain
    (of `profile`). botocore's, not boto3's: auditbook uses no boto3 resource or S3 transfer, and
    importing boto3 costs a small scan ~45 ms."""
    global _shared_loader
    core = botocore.session.get_session()
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = lean_loader(core.get_component("data_loader").search_paths)
        core.register_component("data_loader", _shared_loader)
    if profile:
        core.set_config_variable("profile", profile)
    if credentials:
        core.set_credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials.get("SessionToken"))
    return core


_bound = threading.local()


class RoutedCredentials(Credentials):
    """The credentials of whichever account the current thread is collecting for (see
    `BoundClient.use`). One client per (service, region) then serves every account: building a
    botocore client costs ~15 ms of CPU and several MB, so per-account clients dominated small scans
    and the memory of large ones. Endpoint rules that read the account id see the bound account."""

    method = "auditbook-routed"

    def __init__(self):  # no static values: everything is read from the bound account
        pass

    @staticmethod
    def _current():
        creds = getattr(_bound, "credentials", None)
        if creds is None:
            raise NoCredentialsError()
        return creds

    access_key = property(lambda self: self._current().access_key)
    secret_key = property(lambda self: self._current().secret_key)
    token = property(lambda self: self._current().token)
    account_id = property(lambda self: getattr(self._current(), "account_id", None))

    def get_frozen_credentials(self):
        return self._current().get_frozen_credentials()


class _RoutedProvider(CredentialProvider):
    METHOD = RoutedCredentials.method
    CANONICAL_NAME = "auditbook-routed"

    def load(self):
        return RoutedCredentials()


def bound_account() -> Optional[str]:
    """The account the calling thread is collecting for (see `BoundClient.use`), if it was named."""
    return getattr(_bound, "account", None)


@dataclass(frozen=True)
class BoundClient:
    """A shared client and the credentials (and account id) of the account it is being used for."""
    client: Any
    credentials: Any
    account: Optional[str] = None  # keys the rate limiter; None: "unattributed"

    @contextmanager
    def use(self):
        """Within this block, calls made by this thread sign with this account's credentials (and
        count against this account's rate limits)."""
        previous = getattr(_bound, "credentials", None), getattr(_bound, "account", None)
        _bound.credentials, _bound.account = self.credentials, self.account
        try:
            yield self.client
        finally:
            _bound.credentials, _bound.account = previous


class ClientCache:
    """One client per (service, region), shared by every account through RoutedCredentials;
    counts every API call made through them; rate-limits and retries throttling per (account,
    region, service) (`rate_limits`: the ceilings; None: the adaptive limiter alone)."""

    def __init__(self, pool: int = 16, profile: Optional[str] = None, rate_limits: Optional[RateLimits] = None):
        self._session = new_session(profile)
        self.default_region = self._session.get_config_variable("region") or "us-east-1"
        resolver = self._session.get_component("credential_provider")
        # the standard chain (env, profile, SSO, instance role…): the credentials the scan starts from
        self.base_credentials = resolver.load_credentials()
        resolver.insert_before(resolver.providers[0].METHOD, _RoutedProvider())
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._config = retry_config(pool)
        self.limiters = Limiters(rate_limits, max_attempts(), bound_account)
        # credentials -> the account sts:GetCallerIdentity named for them (every Target's identity is read)
        self._accounts: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
        self.calls = 0
        self.calls_by_operation: Counter = Counter()  # "service:Operation" -> calls
        self._count_lock = threading.Lock()

    def _count(self, model=None, **_):
        with self._count_lock:
            self.calls += 1
            if model is not None:
                self.calls_by_operation[f"{model.service_model.service_name}:{model.name}"] += 1

    def client(self, credentials, service: str, region: Optional[str] = None,
               account: Optional[str] = None) -> BoundClient:
        """The shared client for (service, region), bound to these credentials and to their account
        (the key of its rate limits): `account`, else the one sts:GetCallerIdentity named for these
        credentials, else "unattributed"."""
        if account is None and credentials is not None:
            account = self._accounts.get(credentials)
        return BoundClient(self.shared(service, region or self.default_region), credentials, account)

    def _learn_account(self, parsed=None, **_) -> None:
        """after-call of sts:GetCallerIdentity: remember which account the bound credentials belong to."""
        credentials = getattr(_bound, "credentials", None)
        account = parsed.get("Account") if isinstance(parsed, dict) else None
        if credentials is not None and isinstance(account, str) and re.fullmatch(r"[0-9]{12}", account):
            with self._count_lock:
                self._accounts[credentials] = account

    def limiter_stats(self, account: Optional[str] = None) -> dict[str, dict]:
        """Per "account/region/service" (of `account` only, if given): {"calls": requests sent (retries
        included), "throttled": throttling responses, "waited_seconds": time spent waiting for the rate
        limiter}."""
        return self.limiters.stats(account)

    def shared(self, service: str, region: str):
        key = (service, region)
        found = self._clients.get(key)
        if found is not None:
            return found
        with self._lock:  # a botocore session is not thread-safe; creating clients is CPU-bound anyway
            found = self._clients.get(key)
            if found is None:
                found = self._session.create_client(service, region_name=region, config=self._config)
                found.meta.events.register("before-call", self._count)
                self.limiters.attach(found)
                if service == "sts":
                    found.meta.events.register("after-call.sts.GetCallerIdentity", self._learn_account)
                if service == "s3control":
                    found.meta.events.register("before-send.s3-control", strip_account_prefix)
                self._clients[key] = found
                # A client and its service model live for the whole scan: move them (and
                # everything older) out of the collector's sight, or every full collection
                # re-traverses megabytes of model dicts (~1/3 of a small scan's CPU).
                # Runner.run calls gc.unfreeze() at the end.
                gc.freeze()
            return found


ONE_OFF_POOL = 4  # connections of a one-off client: its calls come one at a time


def aws_error(exc: Exception) -> str:
    """A botocore error as one line: the code and message AWS gave (ClientError), or botocore's own
    text (no credentials, no region, endpoint unreachable …)."""
    from botocore.exceptions import ClientError

    from auditbook.errors import one_line
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return one_line(f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}".rstrip(": "))[:300]
    return one_line(f"{type(exc).__name__}: {exc}")[:300]


def aws_client(service: str, region: Optional[str] = None, profile: Optional[str] = None,
               default_region: Optional[str] = "us-east-1"):
    """One client outside a scan (watch, runbooks, Security Hub, KMS signing) made like the scan's:
    the shared lean model loader, the same retries and timeouts, AWS_ENDPOINT_URL honoured; region
    default: the configured one, else us-east-1. A bad region, profile or AWS configuration is a
    one-line UserError."""
    from botocore.exceptions import BotoCoreError

    from auditbook.errors import UserError, shown
    try:
        session = new_session(profile)
        return session.create_client(service, region_name=region or session.get_config_variable("region") or default_region,
                                     config=retry_config(ONE_OFF_POOL))
    except (BotoCoreError, ValueError) as exc:  # botocore refuses a malformed region name with ValueError
        where = f"--region: {shown(region)}" if region else f"--profile: {shown(profile)}" if profile else "AWS configuration"
        raise UserError(f"{where}: {aws_error(exc)}") from None
