"""Starting the Streamlit control room (`auditbook app`, `make demo`, the browser tests)."""
from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Optional

from auditbook.errors import UserError

APP = Path(__file__).resolve().parent.parent / "app" / "control_room.py"
ROLES = ("viewer", "analyst", "admin", "auditor")


def identity_provider_configured(cwd: Optional[Path] = None) -> bool:
    """Whether Streamlit will find an [auth] section (st.login) in its secrets files."""
    for path in ((cwd or Path.cwd()) / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"):
        try:
            if "auth" in tomllib.loads(path.read_text()):
                return True
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return False


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def command(db: str, host: str = "127.0.0.1", port: int = 8501, *, local_role: str = "admin",
            catalog: Optional[str] = None, exceptions: Optional[str] = None) -> tuple[list[str], dict]:
    if local_role not in ROLES:
        raise UserError(f"--local-role: {local_role!r} is not one of {', '.join(ROLES)}")
    if not _loopback(host) and not identity_provider_configured():
        raise UserError(f"--host: {host} is not 127.0.0.1; without an identity provider ([auth] in "
                        ".streamlit/secrets.toml) the control room only listens on 127.0.0.1")
    if not 1 <= port <= 65535:
        raise UserError(f"--port: {port} is not a port number")
    env = {**os.environ, "AUDITBOOK_DB": db, "AUDITBOOK_LOCAL_ROLE": local_role}
    if catalog:
        env["AUDITBOOK_CATALOG"] = str(Path(catalog).resolve())
    if exceptions:
        env["AUDITBOOK_EXCEPTIONS"] = str(Path(exceptions).resolve())
    argv = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--server.address", host, "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none"]
    return argv, env


def start(db: str, host: str = "127.0.0.1", port: int = 8501, *, wait: float = 60.0, log=None, **kw) -> subprocess.Popen:
    """The control room in its own process group; returns once /_stcore/health answers ok."""
    argv, env = command(db, host, port, **kw)
    proc = subprocess.Popen(argv, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + wait
    url = f"http://{host}:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the control room exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.read().strip() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"the control room did not answer on {url} within {wait:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
