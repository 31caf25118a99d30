"""`auditbook app` as a process: it refuses to listen beyond loopback without an identity provider, and
refuses a bad role or store in one line (the control room's pages are tested in tests/unit/test_app.py)."""
import os
import subprocess

from tests.conftest import EXE


def _cli(args, cwd, home):
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "HOME": str(home)}, timeout=60)


def test_app_command_refuses_to_listen_beyond_loopback_without_an_identity_provider(tmp_path, app_store):
    r = _cli(["app", "--host", "0.0.0.0", "--db", app_store["db"]], tmp_path, tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: --host: 0.0.0.0 is not 127.0.0.1; without an identity provider")
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli(["app", "--local-role", "root", "--db", app_store["db"]], tmp_path, tmp_path)
    assert r.returncode == 2 and "--local-role: 'root' is not one of" in r.stderr
    r = _cli(["app", "--db", "postgresql://nobody@127.0.0.1:1/none"], tmp_path, tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
