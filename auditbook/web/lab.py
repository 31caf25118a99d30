"""The analyst's workbook: JupyterLab on 127.0.0.1 over notebooks/ (`auditbook lab`, `make lab`).

- Listens on 127.0.0.1 only, with a random token drawn at each start; the token reaches the server
  through a private config file (mode 0600 in a fresh 0700 folder, given with --config) that deletes
  itself as the server reads it: never argv, never the environment (which every kernel inherits),
  and is printed once in the link to open.
- The lab and its kernels run with the caller's environment less its credentials (lab_environment):
  every AWS_* variable and every name that looks like a secret (TOKEN, SECRET, PASSWORD, …).
- The store URL reaches the kernels through their environment (AUDITBOOK_DB): the notebooks' `db`
  parameter stays None, so no URL (nor its password) is ever written into a notebook.
- The store is opened read-only by default: a SQLite store as a `mode=ro` URI, a PostgreSQL store
  with default_transaction_read_only. This guards the analyst against a write by mistake; it is no
  boundary against the analyst, whose kernel runs any code with the operating-system user's rights
  (give the lab a read-only database role for that).
- Nothing reaches out: no update check, no news feed, no extension catalogue, no terminals.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Optional
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from auditbook.errors import UserError, shown
from auditbook.web.server import stop_group

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FIRST_NOTEBOOK = "explore.ipynb"
HIDDEN_ENV = ("AUDITBOOK_APP_TOKEN", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE")  # never inherited by the lab or its kernels
# Credentials the lab never needs (it reads the store only): AWS_*, and names that look like a secret
# (notify.yml's *_env secrets, CI tokens, API keys). PGPASSWORD stays: libpq may need it for the store.
SECRET_ENV = re.compile(r"^AWS_|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|WEBHOOK|PRIVATE|"
                        r"(^|_)(API_?)?KEYS?(_|$)", re.IGNORECASE)
KEPT_ENV = ("PGPASSWORD",)
TOKEN_CONFIG = """\
# Written by `auditbook lab` for one start: the server's token. It deletes itself as it is read.
import os
c.IdentityProvider.token = {token!r}
os.unlink(__file__)
os.rmdir(os.path.dirname(__file__))
"""
READ_ONLY_OPTION = "-c default_transaction_read_only=on"


def read_only_url(url: str) -> str:
    """The store URL opened read-only: SQLite as a `file:` URI with mode=ro (the file must exist; it
    is never created), PostgreSQL with default_transaction_read_only. Another database is refused."""
    from auditbook.store.db import redacted
    from auditbook.store.sqlite_urls import read_only_sqlite_url
    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith("sqlite"):
        read_only = read_only_sqlite_url(url, shown(redacted(url), limit=1024))
        if read_only is None:
            raise UserError("--db: an in-memory store cannot be shared with the lab's kernels")
        return read_only
    if scheme.startswith("postgres"):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = " ".join([v for k, v in query if k == "options"] + [READ_ONLY_OPTION])
        query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
        # by hand, not urlunsplit, which drops the empty host of a local socket's URL (postgresql:///db?host=/run/…)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query, quote_via=quote)}"
    raise UserError(f"--db: the lab opens SQLite and PostgreSQL stores read-only; {shown(scheme)} is neither "
                    "(--writable hands it over as it is)")


@dataclass
class LabLaunch:
    argv: list[str]  # without the token's config file (with_token_config adds it)
    env: dict
    url: str  # to open in a browser, token included
    token: str
    root: Path


def lab_environment(environ) -> dict:
    """The environment of the lab and so of every kernel: `environ` less the other servers' tokens and
    every credential (SECRET_ENV) but the store's (KEPT_ENV)."""
    return {k: v for k, v in environ.items()
            if k not in HIDDEN_ENV and (k in KEPT_ENV or not SECRET_ENV.search(k))}


def with_token_config(launch: LabLaunch) -> tuple[list[str], Path]:
    """The lab's argv with `--config` naming a fresh private file (0600, in a 0700 folder) that sets
    the token and deletes itself (and its folder) when the server reads it; and that file, for
    discard_token_config when the server never started."""
    folder = Path(tempfile.mkdtemp(prefix="auditbook-lab-"))
    path = folder / "jupyter_lab_token.py"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(TOKEN_CONFIG.format(token=launch.token))
    return [*launch.argv, f"--config={path}"], path


def discard_token_config(path: Path) -> None:
    """Remove the token's config file (and its folder) left by a server that did not start."""
    with suppress(FileNotFoundError):
        path.unlink()
    with suppress(FileNotFoundError):
        path.parent.rmdir()


def lab_argv(root: Path, port: int) -> list[str]:
    """`jupyter lab` on 127.0.0.1:port over root. As root (containers, CI) Jupyter refuses to start
    unless told: the lab then runs with root's rights, like any process root starts."""
    return [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
            "--ServerApp.terminals_enabled=False", "--ServerApp.allow_remote_access=False",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--ServerApp.log_level=WARN",
            *(["--allow-root"] if os.geteuid() == 0 else [])]


def prepare_lab(db: str, port: int = 8888, *, notebooks: Optional[Path] = None, writable: bool = False,
                catalog: Optional[str] = None) -> LabLaunch:
    """Check the options and build the `jupyter lab` command and its environment. `db`: the store's
    URL, absolute (store.sqlite_urls.absolute_url), already opened once."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port: {port} is not a port number")
    root = Path(notebooks or NOTEBOOKS).resolve()
    if not root.is_dir():
        raise UserError(f"--notebooks: {shown(str(root), limit=1024)} is not a folder")
    token = secrets.token_urlsafe(32)
    env = lab_environment(os.environ)
    env["AUDITBOOK_DB"] = db if writable else read_only_url(db)
    if catalog:
        env["AUDITBOOK_CATALOG"] = str(Path(catalog).resolve())
    first = f"lab/tree/{FIRST_NOTEBOOK}" if (root / FIRST_NOTEBOOK).is_file() else "lab"
    return LabLaunch(lab_argv(root, port), env, f"http://127.0.0.1:{port}/{first}?token={token}", token, root)


def serve_lab(db: Optional[str] = None, port: int = 8888, *, notebooks: Optional[Path] = None,
              writable: bool = False, catalog: Optional[str] = None) -> NoReturn:
    """`auditbook lab`: open the store once (a bad or missing one is one line, before anything
    starts), print the link, then become the JupyterLab server (exec: Ctrl-C and SIGTERM reach it)."""
    from auditbook.store.db import open_engine, redacted, resolve_url
    from auditbook.store.sqlite_urls import absolute_url
    url = absolute_url(resolve_url(db))
    open_engine(url, create=False)
    launch = prepare_lab(url, port, notebooks=notebooks, writable=writable, catalog=catalog)
    check_port(port)
    mode = "read-write" if writable else "read-only"
    print(f"JupyterLab on {launch.root} (store {redacted(url)}, {mode}), Ctrl-C stops it:\n  {launch.url}",
          flush=True)
    sys.stderr.flush()
    argv, config = with_token_config(launch)
    try:
        os.execve(argv[0], argv, launch.env)
    finally:  # reached only when exec failed
        discard_token_config(config)


def check_port(port: int) -> None:
    """The port is free on 127.0.0.1 (Jupyter would otherwise exit after the link was printed)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise UserError(f"--port: 127.0.0.1:{port} is already in use (is another lab running?)") from None


@dataclass
class RunningLab:
    proc: subprocess.Popen
    url: str  # the link `auditbook lab` prints
    base: str
    token: str


def start_lab(db: str, port: int, *, notebooks: Optional[Path] = None, writable: bool = False, wait: float = 90.0,
              log=None) -> RunningLab:
    """JupyterLab in its own process group (tests); returns once its API answers with the token."""
    launch = prepare_lab(db, port, notebooks=notebooks, writable=writable)
    argv, config = with_token_config(launch)
    try:
        proc = subprocess.Popen(argv, env=launch.env, stdout=log or subprocess.DEVNULL,
                                stderr=log or subprocess.DEVNULL, start_new_session=True)
    except OSError:
        discard_token_config(config)
        raise
    running = RunningLab(proc, launch.url, f"http://127.0.0.1:{port}", launch.token)
    deadline = time.monotonic() + wait
    request = urllib.request.Request(running.base + "/api/status", headers={"Authorization": f"token {launch.token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            discard_token_config(config)  # exited before it read its token, perhaps
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status == 200:
                    return running
        except OSError:
            time.sleep(0.3)
    stop_lab(running)
    discard_token_config(config)
    raise RuntimeError(f"JupyterLab did not answer on {running.base} within {wait:.0f} s")


def stop_lab(running: RunningLab) -> None:
    """SIGTERM to the lab's process group (its kernels with it), SIGKILL after 10 s."""
    stop_group(running.proc)
