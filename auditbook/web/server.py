"""Starting the Streamlit control room (`auditbook app`, `make demo`, the browser tests) and the guard
every HTTP and WebSocket request to it passes first.

The guard (ASGI middleware of the st.App in app/launcher.py) refuses:
- a `Host` that is neither a loopback name nor a configured public host (DNS rebinding: a page whose
  name now resolves to 127.0.0.1 still sends its own name);
- an `Origin` that is not the request's own host (another site's page opening our WebSocket);
- in local single-user mode (no identity provider), any request without the per-start token: the URL
  `auditbook app` prints carries it once (`/?token=…`), the guard sets an HttpOnly, SameSite=Strict
  session cookie and redirects to the URL without it. The token reaches the server through its
  environment only (never argv or a file).

The cookie holds an HMAC of the token, not the token (the printed link cannot be recovered from it),
and has no Max-Age: it ends with the browser session, and is worthless once the server stops (the
next start draws a new token). Browsers send a cookie for 127.0.0.1 to every port of 127.0.0.1, so a
process of another local user listening there, that the operator's browser visits, receives it and
can use the control room until it stops: on a shared machine use an identity provider, or run the
control room in its own network namespace or container (docs/security.md).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Optional
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from auditbook.errors import UserError, shown

APP_DIR = Path(__file__).resolve().parents[2] / "app"
LAUNCHER = APP_DIR / "launcher.py"
ROLES = ("viewer", "analyst", "approver", "admin", "auditor")  # --local-role
TOKEN_ENV = "AUDITBOOK_APP_TOKEN"
PUBLIC_HOST_ENV = "AUDITBOOK_PUBLIC_HOST"
LISTEN_HOST_ENV = "AUDITBOOK_LISTEN_HOST"
WILDCARDS = ("0.0.0.0", "::", "[::]")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
HEALTH_PATH = "/_stcore/health"  # answers "ok" without the token (readiness probes)
MAX_UPLOAD_MB = 20  # uploads: a public key (packets page, capped at 16 KiB there), incident attachments (monitor/incident_attachments.MAX_BYTES)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


# -- configuration -------------------------------------------------------------------------------

def secrets_files(cwd: Optional[Path] = None) -> list[Path]:
    """Where Streamlit reads secrets.toml, lowest precedence first (home, project, script folder)."""
    return [Path.home() / ".streamlit" / "secrets.toml", (cwd or Path.cwd()) / ".streamlit" / "secrets.toml",
            APP_DIR / ".streamlit" / "secrets.toml"]


def read_secrets(cwd: Optional[Path] = None) -> dict:
    """The top-level sections of every secrets.toml Streamlit will read (a later file wins)."""
    merged: dict = {}
    for path in secrets_files(cwd):
        try:
            merged.update(tomllib.loads(path.read_text()))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UserError(f"{path}: cannot read: {exc.strerror}")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not valid TOML: {exc}")
    return merged


def identity_provider_configured(cwd: Optional[Path] = None) -> bool:
    """Whether Streamlit will find an [auth] section (st.login) in its secrets files."""
    return "auth" in read_secrets(cwd)


def checked_host(value, where: str) -> str:
    """A host name or IP address as the browser sends it in `Host` (no scheme, port or wildcard)."""
    text = str(value).strip().lower()
    try:
        address = ipaddress.ip_address(text.strip("[]"))
        return f"[{address}]" if address.version == 6 else str(address)
    except ValueError:
        pass
    if not _HOSTNAME.match(text):
        raise UserError(f"{where}: {shown(value)} is not a host name (e.g. auditbook.example.com, no scheme or port)")
    return text


def allowed_hosts(secrets_: dict, public_host: Optional[str] = None, listen_host: Optional[str] = None) -> list[str]:
    """Loopback names, the --host address listened on (unless a wildcard: its link names 127.0.0.1 or
    the public host), the host of [auth] redirect_uri, [auditbook] public_host and --public-host."""
    hosts = list(LOOPBACK_NAMES)
    if listen_host and listen_host not in WILDCARDS:
        hosts.append(checked_host(listen_host, "--host"))
    redirect = (secrets_.get("auth") or {}).get("redirect_uri")
    if redirect:
        hosts.append(checked_host(urlsplit(str(redirect)).hostname or "", "[auth] redirect_uri"))
    configured = (secrets_.get("auditbook") or {}).get("public_host")
    if configured:
        hosts.append(checked_host(configured, "[auditbook] public_host"))
    if public_host:
        hosts.append(checked_host(public_host, "--public-host"))
    return list(dict.fromkeys(hosts))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- starting the server ---------------------------------------------------------------------------

@dataclass
class Launch:
    argv: list[str]
    env: dict
    url: str  # what to open in a browser (with the token in local mode)
    token: Optional[str]


def prepare(db: str, host: str = "127.0.0.1", port: int = 8501, *, local_role: str = "admin",
            catalog: Optional[str] = None, exceptions: Optional[str] = None,
            public_host: Optional[str] = None, cwd: Optional[Path] = None) -> Launch:
    """Check the options and build the `streamlit run app/launcher.py` command and its environment."""
    if local_role not in ROLES:
        raise UserError(f"--local-role: {local_role!r} is not one of {', '.join(ROLES)}")
    if not 1 <= port <= 65535:
        raise UserError(f"--port: {port} is not a port number")
    settings = read_secrets(cwd)
    local = "auth" not in settings
    if local and not _loopback(host):
        raise UserError(f"--host: {host} is not 127.0.0.1; without an identity provider ([auth] in "
                        ".streamlit/secrets.toml) the control room only listens on 127.0.0.1")
    public = checked_host(public_host, "--public-host") if public_host else None
    allowed_hosts(settings, listen_host=host)  # a bad --host, redirect_uri or public_host is reported before the start
    token = secrets.token_urlsafe(32) if local else None
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, PUBLIC_HOST_ENV)}
    env.update({"AUDITBOOK_DB": db, "AUDITBOOK_LOCAL_ROLE": local_role, LISTEN_HOST_ENV: host})
    if token:
        env[TOKEN_ENV] = token
    if public:
        env[PUBLIC_HOST_ENV] = public
    if catalog:
        env["AUDITBOOK_CATALOG"] = str(Path(catalog).resolve())
    if exceptions:
        env["AUDITBOOK_EXCEPTIONS"] = str(Path(exceptions).resolve())
    argv = [sys.executable, "-m", "streamlit", "run", str(LAUNCHER), "--server.headless", "true",
            "--server.address", host, "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none",
            # no full gc.collect() after every page run: it was ~80% of the server's CPU per view on a
            # large store (docs/benchmarks.md); Python's generational collector still runs
            "--runner.postScriptGC", "false",
            "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--logger.hideWelcomeMessage", "true"]
    shown_host = host if host not in WILDCARDS else public or "127.0.0.1"
    if ":" in shown_host and not shown_host.startswith("["):
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
    return Launch(argv, env, url, token)


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def serve(db: Optional[str] = None, host: str = "127.0.0.1", port: int = 8501, *, local_role: str = "admin",
          catalog: Optional[str] = None, exceptions: Optional[str] = None,
          public_host: Optional[str] = None, option: str = "--port") -> NoReturn:
    """`auditbook app`: check everything, print the URL to open, then become the server (exec), so a
    SIGTERM or Ctrl-C reaches the server itself and nothing outlives the command."""
    from auditbook.store.db import open_engine, redacted, resolve_url
    from auditbook.store.sqlite_urls import absolute_url
    url = absolute_url(resolve_url(db))
    open_engine(url, create=False)  # a bad or missing store is reported here, in one line, before anything starts
    launch = prepare(url, host, port, local_role=local_role, catalog=catalog, exceptions=exceptions,
                     public_host=public_host)
    if not _port_free(host, port):
        raise UserError(f"{option}: {host}:{port} is already in use (is another control room running?)")
    print(f"control room (store {redacted(url)}), Ctrl-C stops it:\n  {launch.url}", flush=True)
    if launch.token:
        print(f"  wall screen: {launch.url}&view=wall", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(launch.argv[0], launch.argv, launch.env)


@dataclass
class Running:
    proc: subprocess.Popen
    url: str  # to open in a browser (token included in local mode)
    base: str  # http://host:port
    token: Optional[str]


def start(db: str, host: str = "127.0.0.1", port: int = 8501, *, wait: float = 60.0, log=None,
          cwd: Optional[Path] = None, extra_env: Optional[dict] = None, **kw) -> Running:
    """The control room in its own process group (tests, screenshots); returns once it answers."""
    launch = prepare(db, host, port, cwd=cwd, **kw)
    proc = subprocess.Popen(launch.argv, env={**launch.env, **(extra_env or {})}, cwd=cwd,
                            stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://{host}:{port}"
    running = Running(proc, launch.url, base, launch.token)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the control room exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + HEALTH_PATH, timeout=1) as resp:
                if resp.read().strip() == b"ok":
                    return running
        except OSError:
            time.sleep(0.2)
    stop(running)
    raise RuntimeError(f"the control room did not answer on {base} within {wait:.0f} s")


def stop(running: Running) -> None:
    stop_group(running.proc)


def stop_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM to a process group started with start_new_session (its children with it), SIGKILL after
    `grace` seconds; nothing when it has already ended."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the guard (runs inside the server, see app/launcher.py) ---------------------------------------

def guard_middleware() -> list:
    """Host check, then origin and token check, ahead of Streamlit's own middleware."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    settings = read_secrets()
    token = os.environ.pop(TOKEN_ENV, None)  # not inherited by anything the app starts
    hosts = allowed_hosts(settings, os.environ.get(PUBLIC_HOST_ENV), os.environ.get(LISTEN_HOST_ENV))
    return [Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
            Middleware(AccessGuard, token=token, require_token="auth" not in settings)]


class AccessGuard:
    """Pure ASGI: same-origin `Origin` only; in local mode the token cookie (or `?token=`)."""

    def __init__(self, app, *, token: Optional[str], require_token: bool):
        self.app, self.token, self.require_token = app, token, require_token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers
        from starlette.requests import cookie_parser
        from starlette.responses import PlainTextResponse
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, headers.get("host")):
            await PlainTextResponse("auditbook: cross-origin request refused", 403)(scope, receive, send)
            return
        if not self.require_token or (scope["type"] == "http" and scope["path"] == HEALTH_PATH):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if scope["type"] == "http" and any(k == "token" for k, _ in query):
            await self._exchange(scope, query)(scope, receive, send)
            return
        if self._cookie_matches(cookie_parser(headers.get("cookie", "")).get(self.cookie_name(scope))):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse("auditbook control room: open it with the link `auditbook app` printed "
                                "(http://127.0.0.1:PORT/?token=...).", 403)(scope, receive, send)

    def _matches(self, given: Optional[str]) -> bool:
        return bool(self.token and given) and hmac.compare_digest(given.encode(), self.token.encode())

    def _cookie_matches(self, given: Optional[str]) -> bool:
        return bool(self.token and given) and hmac.compare_digest(given.encode(), cookie_value(self.token).encode())

    @staticmethod
    def cookie_name(scope) -> str:
        server = scope.get("server") or ("", "")
        return f"auditbook_token_{server[1]}"  # cookies are not port-scoped: one per control room

    def _exchange(self, scope, query):
        """`?token=T`: the cookie, and a redirect to the same page without the token."""
        from starlette.responses import PlainTextResponse, RedirectResponse
        given = [v for k, v in query if k == "token"]
        if len(given) != 1 or not self._matches(given[0]):
            return PlainTextResponse("auditbook control room: wrong token (it changes each time "
                                     "`auditbook app` starts).", 403)
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        path = "/" + scope["path"].lstrip("/\\")  # never "//host": no open redirect
        response = RedirectResponse(quote(path) + (f"?{rest}" if rest else ""), status_code=303)
        response.set_cookie(self.cookie_name(scope), cookie_value(self.token), httponly=True, samesite="strict",
                            path="/")  # no max_age or expires: a session cookie
        response.headers["Cache-Control"] = "no-store"
        return response


def cookie_value(token: str) -> str:
    """What the token cookie holds: HMAC-SHA256 of a fixed label under the token. It opens the control
    room while this server runs, but does not give back the token (the printed link)."""
    return hmac.new(token.encode(), b"auditbook control-room cookie", hashlib.sha256).hexdigest()


def _same_origin(origin: str, host: Optional[str]) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()
            and not parts.path and not parts.query)
