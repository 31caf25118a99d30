"""Where a scan's collection runs (`scan --executor`): a collection process on this machine (local, the
command line's default: collect.apart), this process's own threads (inline), or a Dask cluster's workers
(dask://HOST:PORT, tls://HOST:PORT: collect.distributed). Only names here: nothing heavy is imported."""
from __future__ import annotations

import ipaddress
import re
from typing import Optional

from auditbook.errors import UserError, shown

LOCAL = "local"  # a collection process on this machine (collect.apart); the command line's default
INLINE = "inline"  # this process's own threads: for callers in Python (the demo, the control room, tests)
EXECUTOR_FORMS = "local, inline, dask://HOST:PORT (plain TCP) or tls://HOST:PORT (TLS, with dask's security configuration)"
SCHEMES = {"dask": "tcp", "tls": "tls"}  # --executor scheme -> Dask comm protocol

_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_ADDRESS = re.compile(r"^(?P<scheme>[a-z]+)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[\]@?#]+):(?P<port>[0-9]{1,5})/?$")


def dask_address(executor: str) -> Optional[str]:
    """The scheduler address of --executor (None for local and inline): a scheme of SCHEMES, a DNS name, an IPv4
    address or a bracketed IPv6 address (no zone), a port 1-65535, nothing else; anything else is a
    one-line UserError naming the value."""
    if executor in (LOCAL, INLINE):
        return None
    found = _ADDRESS.match(executor) if isinstance(executor, str) and executor.isascii() else None
    host = found["host"] if found else ""
    if not found or found["scheme"] not in SCHEMES or not 0 < int(found["port"]) < 65536 or not _host_ok(host):
        raise UserError(f"--executor: {shown(executor)} is not {EXECUTOR_FORMS}")
    return f"{SCHEMES[found['scheme']]}://{host}:{int(found['port'])}"


def _host_ok(host: str) -> bool:
    if host.startswith("["):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    return bool(_DNS_NAME.match(host))
