"""The control room's guard against DNS rebinding and cross-site use (issue: a page whose name rebinds to
127.0.0.1 drove the local admin), against a real `streamlit run app/launcher.py` on 127.0.0.1: raw HTTP
and WebSocket handshakes, Chromium with a host-resolver rule, the printed link, and SIGTERM."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import text

from auditbook.demo.run import free_port
from auditbook.errors import UserError
from auditbook.store.db import open_engine
from auditbook.web.server import (
    HEALTH_PATH,
    LISTEN_HOST_ENV,
    TOKEN_ENV,
    cookie_value,
    guard_middleware,
    prepare,
    serve,
    start,
    stop,
)
from tests.browser import launch

FOREIGN = "attacker.example"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An empty HOME and working folder: no secrets.toml anywhere, so the local single-user mode."""
    root = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root))
        mp.chdir(root)
        yield root


@pytest.fixture(scope="module")
def served(home):
    db = f"sqlite:///{home}/store.db"
    from auditbook.store.db import open_engine
    open_engine(db)
    server = start(db, port=free_port(), local_role="admin", cwd=home, log=open(home / "streamlit.log", "wb"))
    try:
        yield {"db": db, "server": server, "port": int(server.base.rsplit(":", 1)[1])}
    finally:
        stop(server)


def request(port: int, path: str = "/", *, host: str | None = None, headers: dict | None = None,
            websocket: bool = False) -> tuple[int, dict]:
    """One raw HTTP/1.1 request (or WebSocket handshake) with exactly these headers: status and headers."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}"]
    if websocket:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                  "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: streamlit"]
    else:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    found: dict = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        found.setdefault(name.strip().lower(), []).append(value.strip())
    return status, found


def cookie(served) -> str:
    return f"auditbook_token_{served['port']}={cookie_value(served['server'].token)}"


def test_a_foreign_host_is_refused_over_http_and_websocket(served):
    port = served["port"]
    foreign = f"{FOREIGN}:{port}"
    with_cookie = {"Cookie": cookie(served)}
    assert request(port, "/", host=foreign, headers=with_cookie)[0] == 400
    assert request(port, HEALTH_PATH, host=foreign)[0] == 400
    assert request(port, f"/?token={served['server'].token}", host=foreign)[0] == 400
    status, _ = request(port, "/_stcore/stream", host=foreign, websocket=True,
                        headers={"Origin": f"http://{foreign}", **with_cookie})
    assert status == 400  # refused before the upgrade, even with the token cookie
    status, _ = request(port, "/_stcore/stream", websocket=True, headers={"Origin": f"http://{foreign}", **with_cookie})
    assert status == 403  # our own Host, another site's page
    own = {"Origin": f"http://127.0.0.1:{port}"}
    assert request(port, "/_stcore/stream", websocket=True, headers=own)[0] == 403  # no token
    assert request(port, "/_stcore/stream", websocket=True,
                   headers={**own, "Cookie": f"auditbook_token_{port}=not-the-token"})[0] == 403
    assert request(port, "/_stcore/stream", websocket=True, headers={**own, **with_cookie})[0] == 101
    for name in ("localhost", "[::1]"):
        assert request(port, "/", host=f"{name}:{port}", headers=with_cookie)[0] == 200


def test_local_mode_needs_the_token_for_every_page_asset_and_stream(served):
    port, token = served["port"], served["server"].token
    for path in ("/", "/?view=wall", "/settings", "/static/favicon.png", "/_stcore/host-config"):
        status, headers = request(port, path)
        assert status == 403, path
        assert "set-cookie" not in headers or not any(c.startswith("auditbook_token") for c in headers["set-cookie"])
    assert request(port, HEALTH_PATH)[0] == 200  # readiness probes need no token
    assert request(port, "/", headers={"Cookie": cookie(served)})[0] == 200
    assert request(port, "/?token=wrong")[0] == 403
    assert request(port, f"/?token={token}&token=wrong")[0] == 403
    status, headers = request(port, f"/?view=wall&token={token}")
    assert status == 303 and headers["location"] == ["/?view=wall"]  # the token leaves the address bar
    set_cookie = next(c for c in headers["set-cookie"] if c.startswith("auditbook_token_"))
    assert set_cookie.startswith(f"auditbook_token_{port}={cookie_value(token)};")  # one cookie per port
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/" in set_cookie
    status, headers = request(port, f"//{FOREIGN}/?token={token}")
    assert status == 303 and headers["location"] == [f"/{FOREIGN}/"]  # never an open redirect


def test_the_cookie_gives_back_neither_the_token_nor_a_lasting_key(served):
    """Cookies are not port-scoped: another local user's listener on 127.0.0.1 that the browser visits
    receives this one (docs/security.md). What it gets is an HMAC of the token, not the printed link,
    and a session cookie that the next start of the server makes worthless."""
    port, token = served["port"], served["server"].token
    status, headers = request(port, f"/?token={token}")
    set_cookie = next(c for c in headers["set-cookie"] if c.startswith("auditbook_token_"))
    value = set_cookie.split(";")[0].split("=", 1)[1]
    assert status == 303 and value == cookie_value(token) and token not in set_cookie and len(value) == 64
    assert "max-age" not in set_cookie.lower() and "expires" not in set_cookie.lower()  # ends with the session
    assert request(port, "/", headers={"Cookie": f"auditbook_token_{port}={token}"})[0] == 403  # the token itself
    assert request(port, "/", headers={"Cookie": f"auditbook_token_{port}={value}"})[0] == 200
    assert cookie_value(prepare("sqlite:////tmp/x.db").token) != value  # another start, another cookie


def _asgi_get(app, host: str, path: str = "/", query: bytes = b"") -> int:
    """One HTTP request through an ASGI app in this process (no socket): the response status."""
    import asyncio
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query,
             "server": ("127.0.0.2", 8555), "scheme": "http", "http_version": "1.1", "root_path": "",
             "headers": [(b"host", host.encode())]}
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def _guarded_page():
    """A page behind the guard built as app/launcher.py builds it (from this process's environment)."""
    async def page(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    app = page
    for middleware in reversed(guard_middleware()):
        app = middleware.cls(app, *middleware.args, **middleware.kwargs)
    return app


def test_the_printed_link_of_another_loopback_address_works(home, monkeypatch):
    """`auditbook app --host 127.0.0.2` (a loopback address, accepted) printed a link the guard
    refused with 400: the address listened on is an allowed host. Checked in-process (the tests use
    no address but 127.0.0.1)."""
    launch_ = prepare("sqlite:////tmp/x.db", "127.0.0.2", 8555)
    assert launch_.url.startswith("http://127.0.0.2:8555/?token=") and launch_.env[LISTEN_HOST_ENV] == "127.0.0.2"
    query = f"token={launch_.token}".encode()
    monkeypatch.setenv(TOKEN_ENV, launch_.token)
    monkeypatch.setenv(LISTEN_HOST_ENV, launch_.env[LISTEN_HOST_ENV])
    app = _guarded_page()
    assert _asgi_get(app, "127.0.0.2:8555", query=query) == 303  # the printed link: cookie and redirect
    assert _asgi_get(app, "127.0.0.3:8555", query=query) == 400  # not every loopback address: this one
    assert _asgi_get(app, f"{FOREIGN}:8555", query=query) == 400


def test_the_token_reaches_the_server_through_its_environment_only(home, monkeypatch):
    launch_ = prepare("sqlite:////tmp/x.db", "127.0.0.1", 8555)
    assert launch_.url == f"http://127.0.0.1:8555/?token={launch_.token}" and len(launch_.token) >= 40
    assert launch_.env[TOKEN_ENV] == launch_.token and not any(launch_.token in a for a in launch_.argv)
    assert prepare("sqlite:////tmp/x.db").token != launch_.token  # a new one each start
    monkeypatch.setenv(TOKEN_ENV, "t0ken")
    guard_middleware()
    assert TOKEN_ENV not in os.environ  # the page script and anything it starts do not inherit it


@pytest.mark.parametrize("query, cookie_header", [(b"", b""), (b"token=", b""), (b"", b"auditbook_token_1="),
                                                   (b"token=", b"auditbook_token_1=")])
def test_started_without_a_token_the_local_mode_refuses_everything(query, cookie_header):
    """`streamlit run app/launcher.py` by hand (no token in the environment) fails closed."""
    import asyncio

    from auditbook.web.server import AccessGuard
    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query, "server": ("127.0.0.1", 1),
             "headers": [(b"host", b"127.0.0.1:1"), (b"cookie", cookie_header)]}
    asyncio.run(AccessGuard(app, token=None, require_token=True)(scope, receive, send))
    assert reached == [] and sent[0]["status"] == 403


@pytest.mark.parametrize("value", ["http://auditbook.example.com", "*.example.com", "auditbook.example.com:443",
                                   "two words", "a/b"])
def test_public_host_must_be_a_bare_host_name(home, value):
    with pytest.raises(UserError, match=r"^--public-host: .* is not a host name"):
        prepare("sqlite:////tmp/x.db", public_host=value)


def test_with_an_identity_provider_the_redirect_uri_and_public_host_are_the_allowed_names(home, tmp_path):
    from auditbook.web.server import allowed_hosts, read_secrets
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        '[auth]\nredirect_uri = "https://Auditbook.Example.com/oauth2callback"\n'
        '[auditbook]\npublic_host = "soc.example.com"\n')
    settings = read_secrets(tmp_path)
    assert allowed_hosts(settings, "wall.example.com") == ["localhost", "127.0.0.1", "[::1]", "auditbook.example.com",
                                                          "soc.example.com", "wall.example.com"]
    launch_ = prepare("sqlite:////tmp/x.db", "0.0.0.0", 8600, cwd=tmp_path, public_host="wall.example.com")
    assert launch_.token is None and TOKEN_ENV not in launch_.env  # sign-in guards it instead
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[auth\n")
    with pytest.raises(UserError, match="secrets.toml: not valid TOML"):
        prepare("sqlite:////tmp/x.db", cwd=tmp_path)  # a broken file never means "no identity provider"


def test_serve_prints_the_link_with_the_token_then_becomes_the_server(home, monkeypatch, capsys):
    seen = {}

    def fake_exec(path, argv, env):
        seen.update(path=path, argv=argv, env=env)
        raise SystemExit(0)
    monkeypatch.setattr(os, "execve", fake_exec)
    open_engine(f"sqlite:///{home}/serve.db")  # the control room opens an existing store, never creates one
    with pytest.raises(SystemExit):
        serve(f"sqlite:///{home}/serve.db", port=free_port(), local_role="viewer")
    printed = capsys.readouterr().out
    token = seen["env"][TOKEN_ENV]
    assert f"/?token={token}\n" in printed and f"/?token={token}&view=wall" in printed
    assert seen["argv"][:4] == [sys.executable, "-m", "streamlit", "run"] and seen["argv"][4].endswith("launcher.py")
    assert seen["env"]["AUDITBOOK_LOCAL_ROLE"] == "viewer"


def test_make_demo_prints_the_link_with_the_token(home, monkeypatch, capsys):
    from auditbook.demo.run import serve_control_room
    seen = {}

    def fake_exec(path, argv, env):
        seen.update(env=env)
        raise SystemExit(0)
    monkeypatch.setattr(os, "execve", fake_exec)
    port = free_port()
    open_engine(f"sqlite:///{home}/demo.db")
    with pytest.raises(SystemExit):
        serve_control_room(f"sqlite:///{home}/demo.db", port)
    printed = capsys.readouterr().out
    assert f"  http://127.0.0.1:{port}/?token={seen['env'][TOKEN_ENV]}\n" in printed
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(UserError, match=f"^--app-port: 127.0.0.1:{port} is already in use"):
            serve_control_room(f"sqlite:///{home}/demo.db", port)


def test_a_rebinding_page_cannot_load_or_drive_the_app_and_the_printed_link_works_in_one_click(served):
    from auditbook.store.db import open_engine
    engine = open_engine(served["db"])

    def changes() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM incidents)"
                                     " + (SELECT count(*) FROM settings)")).scalar()
    before = changes()
    port, server = served["port"], served["server"]
    with sync_playwright() as p:
        browser = launch(p, f"--host-resolver-rules=MAP {FOREIGN} 127.0.0.1")
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url)  # the user opened the app first: the token cookie is in this profile
        expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=30000)
        assert page.url == server.base + "/"

        evil = context.new_page()
        response = evil.goto(f"http://{FOREIGN}:{port}/?token={server.token}")
        assert response.status == 400 and "Invalid host header" in evil.content()
        tried = evil.evaluate("""async (port) => {
            const attempt = (url) => new Promise((resolve) => {
                const ws = new WebSocket(url);
                ws.onopen = () => { ws.close(); resolve("opened"); };
                ws.onerror = () => resolve("refused");
            });
            const page = await fetch("/", {credentials: "include"}).then(r => r.status, () => "failed");
            return {page,
                    rebound: await attempt(`ws://attacker.example:${port}/_stcore/stream`),
                    direct: await attempt(`ws://127.0.0.1:${port}/_stcore/stream`)};
        }""", port)
        assert tried == {"page": 400, "rebound": "refused", "direct": "refused"}
        browser.close()
    assert changes() == before


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("entry", ["auditbook app", "serve()"])
def test_sigterm_stops_the_control_room_and_leaves_no_process(home, entry):
    """SIGTERM (a service manager, a container runtime, a script) to `auditbook app` must stop the
    server too: nothing left listening, no child left running."""
    port = free_port()
    db = f"sqlite:///{home}/sigterm.db"
    open_engine(db)
    if entry == "auditbook app":
        argv = [str(Path(sys.executable).with_name("auditbook")), "app", "--db", db, "--port", str(port)]
    else:
        argv = [sys.executable, "-c", f"from auditbook.web.server import serve; serve({db!r}, port={port})"]
    proc = subprocess.Popen(argv, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the control room did not start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=1) as resp:
                    if resp.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.2)
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        time.sleep(0.5)
        assert not _listening(port), "the server still answers after SIGTERM"
        assert [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of this test's own process group
        except ProcessLookupError:
            pass
        proc.wait()
