"""boto3 clients for a scan: adaptive retries, shared service models, one client per
(account, region, service), and a local-endpoint fix for S3 Control."""
from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config

_ACCOUNT_PREFIX = re.compile(r"^\d{12}\.")


def retry_config(pool: int) -> Config:
    attempts = int(os.environ.get("AUDITBOOK_MAX_ATTEMPTS", "5"))
    return Config(
        retries={"mode": "adaptive", "total_max_attempts": attempts},  # including the first
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


def new_session(**kwargs) -> boto3.Session:
    """A boto3 session that shares one service-model loader with every other (memory, speed)."""
    global _shared_loader
    core = botocore.session.get_session()
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
        core.register_component("data_loader", _shared_loader)
    profile = kwargs.pop("profile_name", None)
    if profile:
        core.set_config_variable("profile", profile)
    return boto3.Session(botocore_session=core, **kwargs)


class ClientCache:
    """Thread-safe cache of clients; counts every API call made through them."""

    def __init__(self, pool: int = 16):
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        self._config = retry_config(pool)
        self.calls = 0
        self._count_lock = threading.Lock()

    def _count(self, **_):
        with self._count_lock:
            self.calls += 1

    def client(self, session: boto3.Session, account: str, service: str, region: str):
        """A cached client; clients of one account are created one at a time (sessions are not
        thread-safe), different accounts in parallel."""
        key = (account, service, region)
        found = self._clients.get(key)
        if found is not None:
            return found
        with self._lock:
            account_lock = self._account_locks.setdefault(account, threading.Lock())
        with account_lock:
            found = self._clients.get(key)
            if found is None:
                found = session.client(service, region_name=region, config=self._config)
                found.meta.events.register("before-call", self._count)
                if service == "s3control":
                    found.meta.events.register("before-send.s3-control", strip_account_prefix)
                self._clients[key] = found
            return found
