"""Shared by the three tiers: tests/unit (no process, no socket: tests/unit/conftest.py holds it to
that), tests/integration (moto server, PostgreSQL, notebooks, HTTP receivers, fresh interpreters) and
tests/e2e (Chromium, the whole CLI as a process). The folder decides a test's tier and its marker.

Fixtures used by tests of more than one tier live here: the fake AWS environment, in-process moto,
fault injection, the PostgreSQL server, the control room's store, the packet tests' store, keys and
signed packet, and the CloudTrail bucket."""
import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import boto3
import pytest

pytest_plugins = ("pytester",)  # tests/unit/test_guard.py runs a pytest session of its own

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e")
EXE = str(Path(sys.executable).with_name("auditbook"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark each test with its tier, read from its folder (before `-m` selects on the markers)."""
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in tests/unit, tests/integration or "
                                    "tests/e2e (its folder is its tier)")
        item.add_marker(getattr(pytest.mark, tier))


FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "AUDITBOOK_MAX_ATTEMPTS": "2",
}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AUDITBOOK_DB"):
        monkeypatch.delenv(key, raising=False)
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(autouse=True)
def main_module_kept(monkeypatch):
    """Streamlit's AppTest runs a page as `__main__` and leaves it there; a later test on the same worker
    whose code starts spawned processes would have them re-run that page. Each test gets it back."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


@pytest.fixture
def aws(monkeypatch):
    """In-process moto: only this process sees it, so a scan command run in-process collects on its own
    threads (AUDITBOOK_EXECUTOR=inline), not in a collection process of its own (collect.apart)."""
    from moto import mock_aws
    monkeypatch.setenv("AUDITBOOK_EXECUTOR", "inline")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def collect_current(regions=("us-east-1",), types=None, rate_limits=None):
    """Collect with the current credentials (in-process moto) and evaluate the bundled catalog."""
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.clients import ClientCache
    from auditbook.collect.plan import needed_types
    from auditbook.collect.runner import Runner
    from auditbook.collect.targets import current_target
    from auditbook.evaluate.evaluator import evaluate

    catalog = load_catalog()
    rtypes = needed_types(catalog) if types is None else types
    clients = ClientCache(pool=8, rate_limits=rate_limits)
    collection = Runner(workers=4, clients=clients).run([current_target(clients)], list(regions), rtypes)
    return collection, evaluate(catalog, collection)


def by_check(findings, check, name=None):
    out = [f for f in findings if f.check == check and (name is None or f.resource_name == name)]
    return out


def status_of(findings, check, name):
    found = by_check(findings, check, name)
    assert len(found) == 1, f"{check} {name}: {[(f.resource_name, f.status) for f in by_check(findings, check)]}"
    return found[0].status


class Fault:
    """Make one API operation answer with an error through botocore's real path (before-call
    returns an HTTP error response, which botocore parses, retries and raises)."""

    def __init__(self, operation: str, code: str, status: int = 400, match=None):
        self.operation, self.code, self.status, self.match = operation, code, status, match
        self.calls = 0

    def __call__(self, params=None, model=None, **kwargs):
        if model is None or model.name != self.operation:
            return None
        if self.match and not self.match(params):
            return None
        self.calls += 1
        from botocore.awsrequest import AWSResponse
        http = AWSResponse("http://127.0.0.1/", self.status, {}, None)
        parsed = {"Error": {"Code": self.code, "Message": f"injected {self.code}"},
                  "ResponseMetadata": {"HTTPStatusCode": self.status}}
        return http, parsed


@pytest.fixture
def inject(monkeypatch):
    """inject(Fault(...)) registers the fault on every client the scan creates."""
    from auditbook.collect import clients as awsclients

    faults = []
    original = awsclients.ClientCache.client

    def client(self, *args, **kwargs):
        bound = original(self, *args, **kwargs)
        made = bound.client
        if not getattr(made, "_faults_registered", False):
            for fault in faults:
                if getattr(fault, "first", False):
                    made.meta.events.register_first("before-send", fault)
                else:
                    made.meta.events.register("before-call", fault)
            made._faults_registered = True
        return bound

    monkeypatch.setattr(awsclients.ClientCache, "client", client)
    return faults.append


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 for the whole session (tests/pgserver.py)."""
    from tests.pgserver import PostgresServer
    server = PostgresServer().start()
    yield server
    server.stop()


def cli(*args, env=None):
    """Run the installed `auditbook` command as a process."""
    return subprocess.run([EXE, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


# -- stores built by real scans under in-process moto (tests/packet_store.py) ---------------------------

@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_main(capsys, monkeypatch, *args, width: Optional[int] = 240) -> tuple[int, str, str]:
    """`auditbook ARGS` in-process through cli.main.main (its error mapping: exit 2 and one line for
    bad input): (exit code, stdout, stderr). `width`: the output console's (240: a row on one line;
    None: as the console finds it)."""
    from auditbook.cli.common import out
    from auditbook.cli.main import main
    monkeypatch.setattr(sys, "argv", ["auditbook", *args])
    if width is not None:
        monkeypatch.setattr(out, "width", width)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def app_store(tmp_path_factory):
    """The control room's store: the packet store's history plus an incident and a note in hostile text."""
    from auditbook.auth import Actor
    from auditbook.monitor import incidents
    from auditbook.store.db import open_engine
    from tests.packet_store import EVIL, build_store
    root = tmp_path_factory.mktemp("app")
    db = f"sqlite:///{root}/store.db"
    build_store(db)
    engine, analyst = open_engine(db), Actor("ana@soc.example", "analyst")
    incident = incidents.create(engine, analyst, title=f"Group {EVIL} open to the world", severity="high",
                                description=f"Tag {EVIL}")
    incidents.add_note(engine, analyst, incident["id"], f"note with {EVIL} and **markdown**")
    return {"db": db, "engine": engine, "incident": incident["id"]}


@pytest.fixture(scope="module")
def history_store(tmp_path_factory):
    """The packet tests' store: the history, the small catalog, and an incident's timeline in the period."""
    from freezegun import freeze_time

    from auditbook.auth import Actor
    from auditbook.monitor import incidents
    from auditbook.store.db import open_engine
    from tests.packet_store import build_store, small_catalog
    root = tmp_path_factory.mktemp("packet")
    db = f"sqlite:///{root}/store.db"
    runs = build_store(db)
    catalog = small_catalog(root / "catalog.yaml")
    engine, ana = open_engine(db), Actor("ana", "analyst")
    with freeze_time("2026-07-03 09:00:00"):
        inc = incidents.create(engine, ana, title="open-data bucket was public", severity="high",
                               links=[{"kind": "criterion", "ref": "CC6.6"}])
    with freeze_time("2026-07-03 11:00:00"):
        incidents.update(engine, ana, inc["id"], 1, status="investigating")
        incidents.add_note(engine, ana, inc["id"], "public access block put back")
    with freeze_time("2026-07-04 09:00:00"):
        incidents.update(engine, ana, inc["id"], 2, status="resolved")
    return {"root": root, "db": db, "runs": runs, "catalog": catalog}


@pytest.fixture(scope="module")
def packet_keys(history_store):
    """An Ed25519 signing key pair, and the public key of another pair."""
    from auditbook.report.packet.signing import keygen
    keygen(str(history_store["root"] / "signer"))
    keygen(str(history_store["root"] / "other"))
    return {"key": history_store["root"] / "signer.key", "pub": history_store["root"] / "signer.pub",
            "other_pub": history_store["root"] / "other.pub"}


@pytest.fixture(scope="module")
def signed_packet(history_store, packet_keys):
    """The period's packet, built and signed by `auditbook packet` (its notebooks executed)."""
    from tests.packet_store import PERIOD
    out = history_store["root"] / "packet"
    r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out),
            "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"],
            "--catalog", history_store["catalog"])
    assert r.returncode == 0, r.stderr
    assert "3 criteria, 5 runs" in r.stdout
    return out


@pytest.fixture
def trail(aws, tmp_path):
    """The CloudTrail bucket `org-trail` under in-process moto, a store, and the hour CloudTrail files
    start at (tests/cloudtrail_files.py writes the files)."""
    from auditbook.store.db import open_engine
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="org-trail")
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
    return {"s3": s3, "start": start, "engine": open_engine(f"sqlite:///{tmp_path}/s.db"), "tmp": tmp_path}
