"""The parts of `scan --executor local` (collect.apart) that need no process: which clients the collection
process builds while it waits and in which order, which command lines start it before anything else,
how the program turns SystemExit into its exit status, and the executor names. The process itself:
tests/integration/test_collection_process.py."""
from __future__ import annotations

import pytest

from auditbook.cli.command_line import starts_collection
from auditbook.cli.entry import exit_status
from auditbook.collect.apart import Collected, _assembled, for_command
from auditbook.collect.apart_work import clients_in_order
from auditbook.collect.executors import INLINE, LOCAL, dask_address
from auditbook.collect.records import Collection, Gap, Record, Scope
from auditbook.collect.runner import in_job_order
from auditbook.collect.spec import Call, ResourceType
from auditbook.errors import UserError


def _type(name, service, scope="regional", details=(), pinned=None, other=None):
    calls = {f"d{i}": Call(method=f"get_{i}", action=f"{service}:Get{i}", service=other if i == 0 else None)
             for i in range(len(details))}
    listing = Call(method="list", action=f"{service}:List", region=pinned)
    return ResourceType(name=name, service=service, list=listing, scope=scope, details=calls)


def test_clients_come_in_the_order_the_jobs_start_each_once_after_the_identity_client():
    heavy = _type("aws.ec2.instance", "ec2", details=("a", "b"), other="ssm")
    light = _type("aws.sns.topic", "sns")
    account = _type("aws.iam.user", "iam", scope="global")
    pinned = _type("aws.wafv2.acl", "wafv2", pinned="us-east-1")
    order = clients_in_order([light, account, pinned, heavy], ["eu-west-1", "eu-central-1"], "us-east-1")
    assert order[0] == ("sts", "us-east-1")
    assert len(order) == len(set(order))
    # the detail-heavy type first (collect.runner.in_job_order), its detail calls' own service too
    assert order[1:4] == [("ec2", "eu-west-1"), ("ssm", "eu-west-1"), ("ec2", "eu-central-1")]
    # a global type's client is made in the first region only; a pinned call's in its own region
    assert ("iam", "eu-west-1") in order and ("iam", "eu-central-1") not in order
    assert ("wafv2", "us-east-1") in order and ("wafv2", "eu-west-1") not in order
    assert [t.name for t in in_job_order([light, account, pinned, heavy])][0] == "aws.ec2.instance"


def test_with_no_listed_region_only_the_identity_client_is_prepared():
    assert clients_in_order([_type("aws.sns.topic", "sns")], [], "eu-west-1") == [("sts", "eu-west-1")]


@pytest.mark.parametrize("argv, env, starts", [
    (["auditbook", "scan"], None, True),
    (["auditbook", "scan", "--regions", "all"], "local", True),
    (["auditbook", "scan", "--executor", "local"], None, False),  # it names its executor: it starts its own
    (["auditbook", "scan", "--executor=inline"], None, False),
    (["auditbook", "scan", "--help"], None, False),
    (["auditbook", "scan"], "inline", False),
    (["auditbook", "scan"], "dask://scheduler:8786", False),
    (["auditbook", "findings"], None, False),
    (["auditbook", "--help"], None, False),
    (["auditbook"], None, False),
])
def test_only_a_scan_on_the_local_executor_starts_its_collection_process_first(argv, env, starts, monkeypatch):
    if env is None:
        monkeypatch.delenv("AUDITBOOK_EXECUTOR", raising=False)
    else:
        monkeypatch.setenv("AUDITBOOK_EXECUTOR", env)
    assert starts_collection(argv) is starts


@pytest.mark.parametrize("code, status", [(None, 0), (0, 0), (2, 2), (130, 130), ("a message", 1)])
def test_the_program_exits_with_the_status_the_interpreter_would_give(code, status, capsys):
    assert exit_status(code) == status
    assert capsys.readouterr().err == ("a message\n" if isinstance(code, str) else "")


def test_inline_and_local_are_executors_and_neither_is_a_scheduler():
    assert dask_address(LOCAL) is None and dask_address(INLINE) is None
    assert dask_address("dask://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(UserError, match="--executor: 'threads' is not local, inline, dask"):
        dask_address("threads")


def test_an_executor_other_than_local_gets_no_collection_process():
    with for_command(False) as collector:
        assert collector is None


def test_a_collection_in_parts_is_put_back_together_whole():
    gap = Gap("111111111111", "eu-west-1", "aws.sns.topic", "sns:ListTopics", "AccessDenied", "no")
    records = [Record("aws.sns.topic", "111111111111", "eu-west-1", f"t{i}", f"arn:t{i}", {"i": i}) for i in range(5)]
    bare = Collection(calls=7, calls_by_operation={"sns:ListTopics": 7}, throttled={"k": {"throttled": 1}})
    parts = {"records": records, "scopes": [Scope("111111111111", "eu-west-1", "aws.sns.topic")], "gaps": [gap],
             "evidence": [("a" * 64, b"x"), ("b" * 64, b"y")]}
    whole = _assembled(Collected(bare, [{"account": "111111111111"}], ["eu-west-1"], ["eu-west-1"], ["aws.sns.topic"]),
                       parts)
    assert whole.collection.records == records and whole.collection.gaps == [gap]
    assert whole.collection.evidence == {"a" * 64: b"x", "b" * 64: b"y"}
    assert (whole.collection.calls, whole.collection.throttled) == (7, {"k": {"throttled": 1}})
    assert whole.resource_types == ["aws.sns.topic"] and whole.accounts == [{"account": "111111111111"}]
