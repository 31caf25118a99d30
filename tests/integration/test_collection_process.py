"""`scan --executor local` (the default): the collection in a process of its own (collect.apart), against
a moto server on 127.0.0.1. It stores the same run as a scan on the command's own threads; the command's
process never imports botocore; a collection process that dies, fails or is interrupted fails the scan
in one line and stores nothing; a collection process whose command is gone does not outlive it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import boto3
import pytest

from auditbook.collect.apart import (
    CollectionFailed,
    CollectionProcess,
    CollectionRequest,
)
from auditbook.collect.plan import Boundary
from auditbook.demo.run import MotoServer, demo_environment

RUN = [sys.executable, "-c", "from auditbook.cli.entry import run; run()"]


@pytest.fixture(scope="module")
def estate():
    with MotoServer(0) as srv:
        env = demo_environment(srv.url)
        session = boto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        for region in ("us-east-1", "eu-west-1"):
            s3 = session.client("s3", region_name=region, endpoint_url=srv.url)
            kw = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=f"apart-{region}", **kw)
            session.client("kms", region_name=region, endpoint_url=srv.url).create_key(Description="apart")
            session.client("sns", region_name=region, endpoint_url=srv.url).create_topic(Name=f"apart-{region}")
        iam = session.client("iam", endpoint_url=srv.url)
        iam.create_user(UserName="apart-user")
        iam.create_access_key(UserName="apart-user")
        yield env


def _env(estate, **more) -> dict:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUDITBOOK_"))}
    return {**keep, **estate, **more}


def _scan(estate, tmp_path, *args, **env):
    return subprocess.run([*RUN, "scan", "--regions", "us-east-1,eu-west-1", *args], capture_output=True, text=True,
                          env=_env(estate, **env), cwd=tmp_path, timeout=180)


def _stored(db: str) -> tuple[dict, list[tuple]]:
    from auditbook.store import findings, runs
    from auditbook.store.db import open_engine
    from auditbook.store.session import reading
    with reading(open_engine(db, create=False)) as session:
        run = runs.latest(session)
        rows = sorted((f["check"], f["account"], f["region"], f["resource"], f["status"], f["message"])
                      for f in findings.at_run(session, run.id))
        return run.parameters, rows


def _runs(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    from auditbook.store import runs
    from auditbook.store.db import open_engine
    from auditbook.store.session import reading
    with reading(open_engine(f"sqlite:///{db_path}", create=False)) as session:
        return len(runs.all_runs(session))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _collection_process_of(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(proc.pid):
            if b"auditbook.collect.apart" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        time.sleep(0.01)
    raise AssertionError("the scan started no collection process")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":  # ended, not yet reaped by its parent
            return True
        time.sleep(0.02)
    return False


def test_a_local_scan_stores_the_same_run_as_an_inline_one(estate, tmp_path):
    results = {}
    for executor in ("local", "inline"):
        db = f"sqlite:///{tmp_path}/{executor}.db"
        done = _scan(estate, tmp_path, "--executor", executor, "--db", db)
        assert done.returncode == 0, done.stderr
        summary = next(line for line in done.stdout.splitlines() if line.startswith("run 1:"))
        results[executor] = (summary.split(", ")[1:3], *_stored(db))
    (local_counts, local_params, local_rows), (inline_counts, inline_params, inline_rows) = results.values()
    assert local_counts == inline_counts  # resources and API calls
    assert local_rows == inline_rows and len(local_rows) > 20
    assert {s for *_, s, _ in local_rows} >= {"PASS", "FAIL"}
    assert (local_params["executor"], inline_params["executor"]) == ("local", "inline")
    same = {k for k in local_params if k != "executor" and local_params[k] == inline_params.get(k)}
    assert same == set(local_params) - {"executor"}


def test_the_command_line_collects_apart_by_default_and_its_process_never_imports_botocore(estate, tmp_path):
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: open('modules.txt', 'w').write('\\n'.join(sorted(sys.modules))))\n"
             "from auditbook.cli.main import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", probe, "scan", "--regions", "us-east-1", "--db",
                           f"sqlite:///{tmp_path}/d.db"], capture_output=True, text=True, env=_env(estate),
                          cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    modules = (tmp_path / "modules.txt").read_text().split()
    assert "auditbook.collect.apart" in modules and "sqlalchemy" in modules
    assert not [m for m in modules if m.split(".")[0] in ("botocore", "boto3")]
    assert _stored(f"sqlite:///{tmp_path}/d.db")[0]["executor"] == "local"


def test_a_killed_collection_process_fails_the_scan_in_one_line_and_nothing_is_stored(estate, tmp_path):
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([*RUN, "scan", "--regions", "us-east-1,eu-west-1", "--db", f"sqlite:///{db}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(estate), cwd=tmp_path)
    os.kill(_collection_process_of(proc), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err.strip() == "error: the collection process ended without a result (killed by signal 9)"
    assert "Traceback" not in err and "run id" not in out
    assert _runs(db) == 0


def test_ctrl_c_stops_both_processes_and_nothing_is_stored(estate, tmp_path):
    db = tmp_path / "interrupted.db"
    proc = subprocess.Popen([*RUN, "scan", "--regions", "us-east-1,eu-west-1", "--db", f"sqlite:///{db}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(estate), cwd=tmp_path,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    collector = _collection_process_of(proc)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at a terminal does: the collection process has its own session
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: nothing was written" in err and "Traceback" not in err
    assert _gone(collector)
    assert _runs(db) == 0


def test_a_collection_process_whose_command_is_killed_ends_too(estate, tmp_path):
    proc = subprocess.Popen([*RUN, "scan", "--regions", "us-east-1,eu-west-1", "--db", f"sqlite:///{tmp_path}/k.db"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(estate), cwd=tmp_path)
    collector = _collection_process_of(proc)
    time.sleep(0.2)
    proc.kill()
    proc.wait(timeout=30)
    assert _gone(collector, timeout=20)


@pytest.mark.parametrize("args, env, status, message", [
    (["--profile", "no-such-profile"], {}, 2, "error: --profile: The config profile (no-such-profile) "
                                              "could not be found"),
    ([], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, 1, "error: cannot read the caller identity of the current "
                                                         "credentials: EndpointConnectionError"),
])
def test_errors_in_the_collection_process_are_the_same_lines_as_inline(estate, tmp_path, args, env, status, message):
    lines = {}
    for executor in ("local", "inline"):
        done = _scan(estate, tmp_path, "--executor", executor, "--db", f"sqlite:///{tmp_path}/{executor}.db", *args,
                     AUDITBOOK_MAX_ATTEMPTS="1", AUDITBOOK_CONNECT_TIMEOUT="1", **env)
        assert done.returncode == status, done.stderr
        assert "Traceback" not in done.stderr
        lines[executor] = done.stderr.strip()
    assert lines["local"] == lines["inline"] and lines["local"].startswith(message)


def _collection_process(code: str) -> CollectionProcess:
    """A collection process running `code` before serving (what CollectionProcess.start runs, plus `code`)."""
    ours, theirs = socket.socketpair()
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {root!r}); {code}; "
                             f"from auditbook.collect.apart_child import serve; serve({theirs.fileno()}, {os.getpid()})"],
                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    theirs.close()
    return CollectionProcess(proc, Connection(ours.detach()))


def test_an_unexpected_error_comes_back_as_a_value_with_its_traceback_on_stderr(estate):
    failing = ("import auditbook.collect.apart_work as work; "
               "work.collect = lambda *a: (_ for _ in ()).throw(RuntimeError('the collector broke'))")
    with _collection_process(failing) as collector:
        collector.send_request(CollectionRequest(None, None, "us-east-1", None, 4))
        with pytest.raises(CollectionFailed, match=r"^the collection process failed: RuntimeError: the collector broke$"):
            collector.collect(Boundary(), ["aws.sns.topic"])
        collector.proc.wait(10)
        assert b"Traceback" in collector.proc.stderr.read()
    assert collector.proc.returncode == 0


def test_a_collection_process_killed_while_waiting_is_reported_with_its_signal(estate, monkeypatch):
    for key, value in estate.items():
        monkeypatch.setenv(key, value)
    with CollectionProcess.start() as collector:
        collector.send_request(CollectionRequest(None, None, "us-east-1", None, 4))
        collector.proc.send_signal(signal.SIGKILL)
        with pytest.raises(CollectionFailed, match=r"ended without a result \(killed by signal 9\)"):
            collector.collect(Boundary(), ["aws.sns.topic"])


def test_a_collection_process_left_without_a_request_ends_by_itself(estate, monkeypatch):
    for key, value in estate.items():
        monkeypatch.setenv(key, value)
    collector = CollectionProcess.start()
    collector.conn.close()  # the command is gone before it asked for anything
    assert collector.proc.wait(30) == 3  # collect.apart.PARENT_GONE


def test_run_scan_called_from_python_on_the_local_executor_starts_and_stops_its_own_process(estate, tmp_path,
                                                                                          monkeypatch):
    from auditbook.scan import run_scan
    for key, value in estate.items():
        monkeypatch.setenv(key, value)
    before = set(_children(os.getpid()))
    planned, progress = [], []
    result = run_scan(regions="us-east-1", db=f"sqlite:///{tmp_path}/py.db", executor="local",
                      on_plan=planned.append, on_progress=progress.append)
    assert result.collection.calls > 0 and result.findings
    assert planned and len(progress) == planned[0]  # every job's progress came back through the pipe
    assert set(_children(os.getpid())) - before == set()  # the collection process was stopped and reaped
    assert _stored(f"sqlite:///{tmp_path}/py.db")[0]["executor"] == "local"


def test_an_mfa_code_is_asked_for_at_the_terminal_and_the_scan_goes_on(estate, tmp_path):
    """A profile that assumes a role with MFA: botocore asks for the code on the terminal, from the
    collection process (same terminal, same process group as the command)."""
    import fcntl
    import select
    import termios
    (tmp_path / "config").write_text(
        "[profile base]\nregion = us-east-1\n[profile mfa]\nregion = us-east-1\nsource_profile = base\n"
        "role_arn = arn:aws:iam::123456789012:role/auditor\nmfa_serial = arn:aws:iam::123456789012:mfa/op\n")
    (tmp_path / "credentials").write_text(f"[base]\naws_access_key_id = {estate['AWS_ACCESS_KEY_ID']}\n"
                                          f"aws_secret_access_key = {estate['AWS_SECRET_ACCESS_KEY']}\n")
    env = {k: v for k, v in _env(estate).items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                               "AWS_SESSION_TOKEN")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
               AWS_EC2_METADATA_DISABLED="true")
    primary, secondary = os.openpty()

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen([*RUN, "scan", "--profile", "mfa", "--regions", "us-east-1", "--db",
                             f"sqlite:///{tmp_path}/mfa.db"], stdin=secondary, stdout=secondary, stderr=secondary,
                            env=env, cwd=tmp_path, preexec_fn=own_terminal)
    os.close(secondary)
    said, answered, deadline = b"", 0, time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([primary], [], [], 0.5)[0]:
            try:
                said += os.read(primary, 4096)
            except OSError:
                break
            if said.count(b"MFA") > answered:
                answered += 1
                os.write(primary, b"123456\n")
    proc.wait(30)
    os.close(primary)
    assert proc.returncode == 0, said.decode(errors="replace")[-2000:]
    assert answered >= 1
    assert _stored(f"sqlite:///{tmp_path}/mfa.db")[0]["executor"] == "local"


def test_a_collection_process_waiting_on_aws_ends_soon_after_its_command_is_killed(estate, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # connections are taken, never answered: every call waits for its read timeout
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen([*RUN, "scan", "--regions", "us-east-1", "--db", f"sqlite:///{tmp_path}/w.db"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(estate, AWS_ENDPOINT_URL=url),
                                cwd=tmp_path)
        collector = _collection_process_of(proc)
        time.sleep(2.0)  # the boundary has gone across: it is waiting on the first call
        proc.kill()
        proc.wait(30)
        assert _gone(collector, timeout=3)
    finally:
        silent.close()


def test_the_accounts_file_is_read_once_by_the_command_even_from_its_standard_input(estate, tmp_path):
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("accounts:\n  - id: '123456789012'\n    name: management\n")
    with open(accounts) as stdin:
        done = subprocess.run([*RUN, "scan", "--accounts", "/dev/stdin", "--regions", "us-east-1", "--db",
                               f"sqlite:///{tmp_path}/in.db"], stdin=stdin, capture_output=True, text=True,
                              env=_env(estate), cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "run 1: 1 account(s)" in done.stdout


def test_the_program_exits_0_with_its_standard_output_closed():
    done = subprocess.run([*RUN, "version"], preexec_fn=lambda: os.close(1), capture_output=False,
                          stderr=subprocess.PIPE, timeout=60)
    assert done.returncode == 0 and b"Traceback" not in done.stderr
