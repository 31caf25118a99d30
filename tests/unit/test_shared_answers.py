"""A list or shared call that several resource types make alike is made once per (account, region)
(collect/answers.py): each user gets its own copy, a failure is nobody's answer, and the answers go
when the (account, region)'s last job is done."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from auditbook.collect.answers import SharedAnswers, repeated_calls
from auditbook.collect.runner import CallFailed
from auditbook.collect.spec import Call, ResourceType
from auditbook.plugins import resource_types

VPCS = Call("describe_vpcs", "ec2:DescribeVpcs", result="Vpcs")
VPC = ResourceType(name="t.vpc", service="ec2", list=VPCS, id="VpcId")
GROUP = ResourceType(name="t.group", service="ec2", list=Call("describe_security_groups", "ec2:DescribeSecurityGroups"),
                     shared={"vpcs": Call("describe_vpcs", "ec2:DescribeVpcs", result="Vpcs")}, id="GroupId")


class Asker:
    def __init__(self, answer=None, fail_first=False):
        self.calls, self.answer, self.fail_first = 0, answer, fail_first
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first and self.fail_first:
            raise CallFailed("Throttling", "slow down")
        return ([{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}], ["sha"]) if self.answer is None else self.answer


def test_the_bundled_collectors_repeat_these_calls():
    signatures = {(sig[0], sig[2]) for sig in repeated_calls(resource_types().values())}
    assert {("ec2", "describe_vpcs"), ("ec2", "describe_subnets"), ("ec2", "describe_nat_gateways"),
            ("s3", "list_buckets")} <= signatures


def test_calls_differing_in_anything_are_not_the_same_call():
    other_params = ResourceType(name="t.b", service="ec2", list=Call("describe_vpcs", "ec2:DescribeVpcs",
                                                                      params={"Filters": []}, result="Vpcs"))
    other_result = ResourceType(name="t.c", service="ec2", list=Call("describe_vpcs", "ec2:DescribeVpcs",
                                                                      result="Vpcs[0]"))
    pinned = ResourceType(name="t.d", service="ec2", list=Call("describe_vpcs", "ec2:DescribeVpcs", result="Vpcs",
                                                                region="us-east-1"))
    other_service = ResourceType(name="t.e", service="ec2", list=Call("describe_vpcs", "ec2:DescribeVpcs",
                                                                       result="Vpcs", service="ec2-other"))
    assert repeated_calls([VPC, other_params, other_result, pinned, other_service]) == set()
    assert len(repeated_calls([VPC, GROUP])) == 1


def test_one_call_per_account_and_region_each_user_its_own_copy():
    answers = SharedAnswers([VPC, GROUP], [("111", "r1"), ("111", "r1"), ("222", "r1"), ("111", "r2")])
    ask = Asker()
    first = answers.answer("111", "r1", VPC.list, "ec2", ask)
    first[0][0]["CidrBlock"] = "changed by a normaliser"
    second = answers.answer("111", "r1", GROUP.shared["vpcs"], "ec2", ask)
    assert ask.calls == 1
    assert second == ([{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}], ["sha"])
    second[0].clear()
    assert answers.answer("111", "r1", VPC.list, "ec2", ask)[0] == [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}]
    answers.answer("222", "r1", VPC.list, "ec2", ask)
    answers.answer("111", "r2", VPC.list, "ec2", ask)
    assert ask.calls == 3  # another account, another region: their own calls


def test_a_call_made_in_one_place_only_is_always_made():
    answers = SharedAnswers([VPC], [("111", "r1")] * 2)
    ask = Asker()
    answers.answer("111", "r1", VPC.list, "ec2", ask)
    answers.answer("111", "r1", VPC.list, "ec2", ask)
    assert ask.calls == 2


def test_a_failure_is_not_kept():
    answers = SharedAnswers([VPC, GROUP], [("111", "r1")] * 2)
    ask = Asker(fail_first=True)
    with pytest.raises(CallFailed):
        answers.answer("111", "r1", VPC.list, "ec2", ask)
    assert answers.answer("111", "r1", GROUP.shared["vpcs"], "ec2", ask)[0][0]["VpcId"] == "vpc-1"
    assert ask.calls == 2


def test_concurrent_users_wait_for_the_one_call():
    answers = SharedAnswers([VPC, GROUP], [("111", "r1")] * 16)
    started = threading.Event()

    class Slow(Asker):
        def __call__(self):
            started.wait(5)
            return super().__call__()

    ask = Slow()
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(answers.answer, "111", "r1", (VPC.list, GROUP.shared["vpcs"])[i % 2], "ec2", ask)
                   for i in range(16)]
        started.set()
        results = [f.result() for f in futures]
    assert ask.calls == 1
    assert all(r == results[0] for r in results)
    assert len({id(r[0]) for r in results}) == 16  # sixteen copies


def test_the_answers_go_with_the_last_job_of_their_account_and_region():
    answers = SharedAnswers([VPC, GROUP], [("111", "r1"), ("111", "r1"), ("222", "r1")])
    ask = Asker()
    answers.answer("111", "r1", VPC.list, "ec2", ask)
    answers.answer("222", "r1", VPC.list, "ec2", ask)
    answers.done("111", "r1")
    assert ("111", "r1") in answers._answers
    answers.done("111", "r1")
    assert ("111", "r1") not in answers._answers and ("111", "r1") not in answers._locks
    assert ("222", "r1") in answers._answers
    answers.answer("111", "r1", GROUP.shared["vpcs"], "ec2", ask)  # a straggler after the end asks again
    assert ask.calls == 3 and ("111", "r1") not in answers._answers


def test_a_scan_lists_vpcs_subnets_and_nat_gateways_once_per_region(aws):
    from tests.conftest import collect_current
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")
    types = resource_types()
    wanted = [types[n] for n in ("aws.ec2.vpc", "aws.ec2.security_group", "aws.ec2.subnet", "aws.ec2.nat_gateway")]
    collection, _ = collect_current(("us-east-1", "eu-west-1"), types=wanted)
    for operation in ("ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeNatGateways"):
        assert collection.calls_by_operation[operation] == 2, operation
    groups = [r for r in collection.records if r.type == "aws.ec2.security_group"]
    vpcs = [r for r in collection.records if r.type == "aws.ec2.vpc"]
    assert {r.id for r in vpcs} >= {vpc} and any(g.data.get("GroupName") == "web" for g in groups)
    assert not collection.gaps
