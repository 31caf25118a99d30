"""`scan --executor dask://…` (collect.distributed) on the demo organisation (moto_server on 127.0.0.1):
the same findings, records, gaps and accounts as a local scan; an account whose role a worker is refused
is reported unreachable while the rest completes; a scheduler that does not answer is refused before the
store is touched. Workers are `distributed.LocalCluster` processes on 127.0.0.1 with the moto endpoint in
their environment, as a real cluster's workers have their own credentials."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from distributed import LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from tests.conftest import FAKE_ENV, Fault

# the scheduler's HTTP server falls back from 8787 (busy on a shared machine) to a free port on 127.0.0.1
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning",
                                        "ignore:Port 8787 is already in use")


def _cluster() -> LocalCluster:
    return LocalCluster(n_workers=2, threads_per_worker=4, host="127.0.0.1", dashboard_address=None,
                        processes=True)


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    """The demo organisation on a moto server, the AWS environment set for this process and for the
    workers it starts (restored afterwards)."""
    import boto3

    from auditbook.demo.estate import build
    from auditbook.demo.run import MotoServer, demo_environment
    env = {**FAKE_ENV, "AWS_SESSION_TOKEN": None}
    with MotoServer() as server:
        env.update(demo_environment(server.url))
        old = {k: os.environ.get(k) for k in (*env, "AWS_PROFILE", "AUDITBOOK_DB")}
        for key in ("AWS_PROFILE", "AUDITBOOK_DB"):
            os.environ.pop(key, None)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            ids = build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
            # moto keeps some times to the second (an access key's LastUsedDate): a margin, so that a time
            # written while scanning is never taken for one of the organisation's own
            built = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)
            yield {"ids": ids, "dir": tmp_path_factory.mktemp("dask"), "built": built, "env": env}
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def in_org(org, monkeypatch):
    """The module's AWS environment inside a test (the suite's autouse fixture clears AWS_ENDPOINT_URL)."""
    for key, value in org["env"].items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return org


def _scan(org, name: str, executor: str = "local", **kwargs):
    from auditbook.demo.estate import REGIONS, ROLE
    from auditbook.scan import run_scan
    t0 = time.perf_counter()
    result = run_scan(org_role=ROLE, regions=",".join(REGIONS), db=f"sqlite:///{org['dir']}/{name}.db",
                      executor=executor, **kwargs)
    return result, time.perf_counter() - t0


def _findings(result) -> list[tuple]:
    return sorted((f.check, f.account, f.region, f.resource, f.status, f.message) for f in result.findings)


def _as_read(value, built: dt.datetime):
    """A record's data with the times moto makes up when it is read (a trail's LatestDeliveryTime, an RDS
    instance's LatestRestorableTime: "now") replaced: two scans a few seconds apart differ only there."""
    if isinstance(value, dict):
        return {k: _as_read(v, built) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_read(v, built) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        try:
            at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return "(the time it was read)" if at.tzinfo and at >= built else value
    return value


def _records(collection, built: dt.datetime, skip_account=None) -> list[tuple]:
    return sorted((r.type, r.account, r.region, r.scope_region, r.id, r.arn, r.name, json.dumps(r.tags),
                   json.dumps(_as_read(r.data, built), sort_keys=True), tuple(sorted(r.gaps)))
                  for r in collection.records if r.account != skip_account)


def _gaps(collection) -> list[tuple]:
    return sorted((g.account, g.region, g.resource_type, g.call, g.error, g.message, g.resource or "")
                  for g in collection.gaps)


def _accounts(result) -> list[tuple]:
    return [(a["account"], a["name"], a["role"], a["error"], a["identity"].get("Account")) for a in result.accounts]


@pytest.fixture(scope="module")
def both(org):
    local, local_seconds = _scan(org, "local")
    with _cluster() as cluster:
        t0 = time.perf_counter()
        distributed, dask_seconds = _scan(org, "dask", executor="dask://" + cluster.scheduler_address.split("://")[1])
        again, again_seconds = _scan(org, "dask-again", executor="dask://" + cluster.scheduler_address.split("://")[1])
        print(f"\nlocal {local_seconds:.2f} s ({local.collection.calls} calls); LocalCluster(2x4) first scan "
              f"{dask_seconds:.2f} s, second {again_seconds:.2f} s ({distributed.collection.calls} calls); "
              f"cluster up and both scans {time.perf_counter() - t0:.2f} s")
    return local, distributed, again


def test_a_dask_scan_reads_and_finds_what_a_local_scan_does(org, both):
    local, distributed, again = both
    assert local.findings and {f.status for f in local.findings} >= {"PASS", "FAIL"}
    assert _findings(distributed) == _findings(local)
    mine, theirs = _records(distributed.collection, org["built"]), _records(local.collection, org["built"])
    assert mine == theirs, (sorted(set(mine) - set(theirs))[:3], sorted(set(theirs) - set(mine))[:3])
    assert len(distributed.collection.records) == len(local.collection.records) > 100
    assert _gaps(distributed.collection) == _gaps(local.collection)
    assert _accounts(distributed) == _accounts(local)
    assert len(distributed.accounts) >= 4 and not any(a["error"] for a in distributed.accounts)
    assert _findings(again) == _findings(local)  # a second scan on the same workers: nothing stale
    assert distributed.run_id == 1 and distributed.regions == local.regions


def test_the_dask_run_stores_the_same_findings_and_evidence(both):
    from auditbook.history.findings import findings_for_run
    from auditbook.store.db import open_engine
    local, distributed, _ = both
    rows = {}
    for name, result in (("local", local), ("dask", distributed)):
        rows[name] = sorted((f["check"], f["account"], f["region"], f["resource"], f["status"], f["message"])
                            for f in findings_for_run(open_engine(result.db_url, create=False), result.run_id))
    assert rows["dask"] == rows["local"] and len(rows["local"]) == len(local.findings)
    referenced = {sha for r in distributed.collection.records for sha in r.evidence}
    assert referenced and referenced <= set(distributed.collection.evidence)


def test_workers_assume_each_account_once_per_process_and_the_coordinator_never(both):
    local, distributed, _ = both
    members = sum(1 for a in distributed.accounts if a["role"])
    assumed = distributed.collection.calls_by_operation.get("sts:AssumeRole", 0)
    assert local.collection.calls_by_operation["sts:AssumeRole"] == members
    assert members <= assumed <= 2 * members  # one per account per worker process (2), not one per task
    coordinator = distributed.collection.calls_by_operation
    assert coordinator["organizations:ListAccounts"] == 1 and coordinator["sts:GetCallerIdentity"] >= 1


class DenyAssumeRole(WorkerPlugin):
    """On each worker: sts:AssumeRole into `account` answers AccessDenied (botocore's real error path)."""

    def __init__(self, account: str):
        self.account = account

    def setup(self, worker):
        from auditbook.collect.clients import ClientCache
        account, original = self.account, ClientCache.shared
        fault = Fault("AssumeRole", "AccessDenied", 403, match=lambda p: f"::{account}:" in str(p["body"].get("RoleArn")))

        def shared(cache, service, region):
            client = original(cache, service, region)
            if service == "sts":
                client.meta.events.register("before-call", fault, unique_id="test-deny-assume-role")
            return client
        ClientCache.shared = shared


def test_an_account_whose_role_the_workers_are_refused_is_unreachable_and_the_rest_completes(in_org, both):
    org = in_org
    local = both[0]
    denied = org["ids"]["staging"]
    with _cluster() as cluster:
        with cluster.get_client() as client:
            client.register_plugin(DenyAssumeRole(denied))
        result, _ = _scan(org, "denied", executor="dask://" + cluster.scheduler_address.split("://")[1])
    account = next(a for a in result.accounts if a["account"] == denied)
    assert "AccessDenied" in account["error"] and account["error"].startswith("cannot assume arn:aws:iam::")
    assert [a["account"] for a in result.accounts if a["error"]] == [denied]
    mine = [s for s in result.collection.scopes if s.account == denied]
    assert mine and all(s.gap and s.gap.error == "AccountUnreachable" for s in mine)
    assert not [r for r in result.collection.records if r.account == denied]
    assert {f.status for f in result.findings if f.account == denied} == {"ERROR"}
    assert _records(result.collection, org["built"]) == _records(local.collection, org["built"], skip_account=denied)


def test_a_scheduler_that_does_not_answer_is_refused_before_the_store(in_org):
    """The real command: one line naming --executor and the value, exit 2, no store created."""
    import subprocess
    import sys

    from auditbook.demo.run import free_port
    db = Path(in_org["dir"]) / "never.db"
    value = f"dask://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run([str(Path(sys.executable).with_name("auditbook")), "scan", "--regions", "us-east-1",
                           "--db", f"sqlite:///{db}", "--executor", value], capture_output=True, text=True,
                          timeout=120, env={**os.environ})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: --executor: '{value}': no Dask scheduler answered"), lines
    assert not db.exists() and "Traceback" not in done.stderr + done.stdout
