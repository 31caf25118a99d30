"""`scan --executor`: planning a distributed scan into (account, region) tasks and merging their
results (collect.fanout), the executor value, and what workers are given — no cluster, no sockets."""
from __future__ import annotations

import pickle
import random

import pytest

from auditbook.collect.fanout import (
    TaskResult,
    accounts_of,
    failed_result,
    merge,
    plan_tasks,
)
from auditbook.collect.records import GLOBAL, Collection, Gap, Record, Scope
from auditbook.collect.spec import Call, ResourceType
from auditbook.collect.targets import Target, TargetSpec, reach
from auditbook.errors import UserError

SG = ResourceType("aws.ec2.security_group", "ec2", Call("describe_security_groups", "ec2:DescribeSecurityGroups"))
VOL = ResourceType("aws.ec2.volume", "ec2", Call("describe_volumes", "ec2:DescribeVolumes"))
BUCKET = ResourceType("aws.s3.bucket", "s3", Call("list_buckets", "s3:ListAllMyBuckets"), scope="global")
USER = ResourceType("aws.iam.user", "iam", Call("list_users", "iam:ListUsers"), scope="global")
KEY = ResourceType("aws.kms.key", "kms", Call("list_keys", "kms:ListKeys"))
TYPES = [USER, SG, KEY, BUCKET, VOL]
A = TargetSpec("111111111111", "a", "arn:aws:iam::111111111111:role/Audit")
B = TargetSpec("222222222222", "b", "arn:aws:iam::222222222222:role/Audit", "ext-1")
OUT = TargetSpec("333333333333", "out", "arn:aws:iam::333333333333:role/Audit", out_of_scope={"entry": 1})


def test_one_task_per_account_and_region_global_types_only_at_home():
    tasks = plan_tasks([A, OUT, B], ["us-east-1", "eu-west-1"], TYPES, "us-east-1")
    shape = [(t.target.account, t.region, t.services, t.types) for t in tasks]
    for acct in (A.account, B.account):
        assert [s[1:] for s in shape if s[0] == acct] == [
            ("us-east-1", ("ec2", "iam", "kms", "s3"),
             ("aws.ec2.security_group", "aws.ec2.volume", "aws.iam.user", "aws.kms.key", "aws.s3.bucket")),
            ("eu-west-1", ("ec2", "kms"), ("aws.ec2.security_group", "aws.ec2.volume", "aws.kms.key"))]
    assert OUT.account not in {t.target.account for t in tasks}  # out of scope: never reached
    assert [t.index for t in tasks] == list(range(len(tasks)))
    scopes = [(t.target.account, t.scope_region(n), n) for t in tasks for n in t.types]
    assert len(scopes) == len(set(scopes)) == 2 * (3 * 2 + 2)  # every (account, region, type) once
    assert {s[1] for s in scopes if s[2] in (BUCKET.name, USER.name)} == {GLOBAL}
    # every (account, region, service) unit of work in exactly one task: a rate-limit key stays on one worker
    units = [(t.target.account, t.region, svc) for t in tasks for svc in t.services]
    assert len(units) == len(set(units))


def test_global_types_are_read_through_home_even_when_its_region_is_out_of_scope():
    tasks = plan_tasks([A], ["eu-west-1"], TYPES, "us-east-1")  # us-east-1 excluded, still the home endpoint
    at_home = [t for t in tasks if t.region == "us-east-1"]
    assert [t.types for t in at_home] == [("aws.iam.user", "aws.s3.bucket")]
    assert all(t.global_types == t.types for t in at_home)
    assert all(not t.global_types for t in tasks if t.region == "eu-west-1")


def _record(task_account: str, rtype: str, rid: str, region="us-east-1") -> Record:
    return Record(rtype, task_account, region, rid, f"arn:{rid}", {"id": rid}, [f"sha-{rid}"], scope_region=region)


def _result(index: int, account: str, rids: list[str], calls: int, **kw) -> TaskResult:
    col = Collection()
    col.records = [_record(account, "aws.ec2.volume", rid) for rid in rids]
    col.scopes = [Scope(account, "us-east-1", "aws.ec2.volume")]
    col.gaps = [Gap(account, "us-east-1", "aws.ec2.volume", "ec2:DescribeVolumeAttribute", "Denied", "no", rid)
                for rid in rids[::-1]]
    col.evidence = {f"sha-{rid}": rid.encode() for rid in rids}
    col.calls, col.calls_by_operation = calls, {"ec2:DescribeVolumes": calls}
    return TaskResult(index, account, collection=col, **kw)


def test_the_merge_is_the_same_whatever_order_tasks_finish_in():
    results = [_result(0, A.account, ["vol-b", "vol-a"], 3), _result(1, A.account, ["vol-c"], 2),
               _result(2, B.account, ["vol-z", "vol-y", "vol-x"], 4)]
    first = merge(results)
    for seed in range(5):
        shuffled = results[:]
        random.Random(seed).shuffle(shuffled)
        again = merge(shuffled)
        assert pickle.dumps(again) == pickle.dumps(first)
    assert [r.id for r in first.records] == ["vol-a", "vol-b", "vol-c", "vol-x", "vol-y", "vol-z"]
    assert [g.resource for g in first.gaps] == ["vol-a", "vol-b", "vol-c", "vol-x", "vol-y", "vol-z"]
    assert first.calls == 9 and first.calls_by_operation == {"ec2:DescribeVolumes": 9}
    assert set(first.evidence) == {f"sha-{r.id}" for r in first.records}


def test_the_accounts_say_who_was_read_and_who_refused():
    results = [_result(2, B.account, [], 0, error="cannot assume arn:…: AccessDenied: no"),
               _result(0, A.account, [], 0, identity={"Account": A.account, "Arn": "arn:a"}),
               _result(3, B.account, [], 0, identity={"Account": B.account})]  # a later worker got in
    rows = accounts_of([A, B, OUT], results)
    assert rows == [
        {"account": A.account, "name": "a", "role": A.role_arn, "identity": {"Account": A.account, "Arn": "arn:a"},
         "error": None},
        {"account": B.account, "name": "b", "role": B.role_arn, "identity": {},
         "error": "cannot assume arn:…: AccessDenied: no"},
        {"account": OUT.account, "name": "out", "role": None, "identity": {}, "error": None,
         "out_of_scope": {"entry": 1}}]


def test_a_task_that_did_not_come_back_is_a_gap_for_each_of_its_scopes():
    task = next(t for t in plan_tasks([A], ["eu-west-1"], TYPES, "us-east-1") if t.region == "us-east-1")
    result = failed_result(task, "KilledWorker", "worker lost")
    assert [(s.account, s.region, s.resource_type, s.gap.error) for s in result.collection.scopes] == [
        (A.account, GLOBAL, "aws.iam.user", "KilledWorker"), (A.account, GLOBAL, "aws.s3.bucket", "KilledWorker")]
    assert result.collection.gaps == [s.gap for s in result.collection.scopes] and not result.collection.records


def test_a_worker_without_the_collector_reports_gaps_and_calls_nothing(monkeypatch):
    from auditbook.collect import distributed
    from auditbook.collect.fanout import Task
    monkeypatch.setattr(distributed, "_worker_clients", lambda *a: pytest.fail("no client may be made"))
    task = Task(0, A, "us-east-1", ("ec2",), ("aws.ec2.security_group", "aws.ec2.not_a_type"))
    result = distributed.run_task(task, "scan-1", 2)
    assert {g.error for g in result.collection.gaps} == {"CollectorMissing"}
    assert len(result.collection.scopes) == 2 and "aws.ec2.not_a_type" in result.collection.gaps[0].message


def test_what_a_worker_is_given_holds_no_secret(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "coordinator-secret-value")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "coordinator-session-token")
    shipped = pickle.dumps(plan_tasks([A, B], ["us-east-1"], TYPES, "us-east-1"))
    assert b"coordinator-secret-value" not in shipped and b"coordinator-session-token" not in shipped
    assert set(TargetSpec.__dataclass_fields__) == {"account", "name", "role_arn", "external_id", "out_of_scope"}


def test_current_credentials_of_another_account_are_an_error_value_not_a_scan():
    spec = TargetSpec("111111111111", "current")
    worker = Target("999999999999", "current", object(), {"Account": "999999999999"})
    target = reach(None, spec, worker)
    assert target.credentials is None and target.error == ("the current credentials belong to account "
                                                           "999999999999, not 111111111111")
    same = reach(None, spec, Target("111111111111", "current", "creds", {"Account": "111111111111"}))
    assert same.credentials == "creds" and same.error is None


@pytest.mark.parametrize("value,address", [
    ("local", None), ("dask://10.0.0.5:8786", "tcp://10.0.0.5:8786"), ("dask://scheduler:8786/", "tcp://scheduler:8786"),
    ("tls://scheduler.internal:8786", "tls://scheduler.internal:8786"), ("dask://[::1]:8786", "tcp://[::1]:8786")])
def test_executor_values(value, address):
    from auditbook.collect.executors import dask_address
    assert dask_address(value) == address


@pytest.mark.parametrize("value", ["tcp://h:8786", "dask://h", "dask://h:0", "dask://h:99999", "dask://:8786",
                                   "dask://h:port", "dask://u:p@h:8786", "dask://h:8786/x", "dask://h:8786?a=1",
                                   "Local", "", "threads", "inproc://x:1", "dask://h:8786\nfake: line",
                                   # the attack pass: a traceback, or passed on to Dask / DNS as they were
                                   "dask://[x", "dask://[red]x[/red]:1", "dask://[fe80::1]x:1", "dask://h\u202e:8786",
                                   "dask://\uff48:8786", "dask://h :8786", "dask://h%00:8786", "dask://h;rm:8786",
                                   "dask://@h:1", "dask://[::1%25eth0]:1", "dask://-h:1", "dask://[10.0.0.1]:1"])
def test_bad_executor_values_are_one_line_naming_the_option_and_nothing_is_written(value, tmp_path):
    from auditbook.scan import run_scan
    db = tmp_path / "s.db"
    with pytest.raises(UserError) as raised:
        run_scan(regions="us-east-1", db=f"sqlite:///{db}", executor=value)
    message = str(raised.value)
    assert message.startswith("--executor: ") and "\n" not in message and "dask://HOST:PORT" in message
    assert not db.exists()


def test_tls_without_dasks_tls_configuration_is_refused_before_connecting(monkeypatch):
    from auditbook.collect import distributed
    monkeypatch.setattr("distributed.Client", lambda *a, **k: pytest.fail("no connection may be tried"))
    with pytest.raises(UserError, match=r"^--executor: 'tls://scheduler:8786': TLS needs dask's TLS configuration"):
        distributed.connect("tls://scheduler:8786")
