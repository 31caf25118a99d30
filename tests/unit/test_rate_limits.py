"""Rate limits per (account, region, service): one throttled account is slowed and retried until its
evidence is complete, and no other account is slowed; the configuration file is validated like every
other input (one line naming the file, the field and the value)."""
from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from auditbook.collect.clients import ClientCache
from auditbook.collect.ratelimit import (
    DEFAULT_THROTTLE_ATTEMPTS,
    RateLimits,
    load_rate_limits,
)
from auditbook.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
MANAGEMENT, MEMBERS = "123456789012", ("222222222222", "333333333333")
THROTTLED = MEMBERS[0]
TYPES = ("aws.s3.bucket", "aws.iam.user", "aws.ec2.security_group", "aws.kms.key", "aws.guardduty.region")

# A throttling answer as each protocol spells it (what AWS sends), so botocore parses it for real.
_THROTTLE = {
    "query": (400, {"Content-Type": "text/xml"},
              b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
              b"</Error><RequestId>r</RequestId></ErrorResponse>"),
    "ec2": (503, {"Content-Type": "text/xml"},
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
            b"</Message></Error></Errors><RequestID>r</RequestID></Response>"),
    "json": (400, {"Content-Type": "application/x-amz-json-1.1"},
             b'{"__type":"ThrottlingException","message":"Rate exceeded"}'),
    "rest-json": (429, {"Content-Type": "application/json", "x-amzn-ErrorType": "ThrottlingException"},
                  b'{"message":"Rate exceeded"}'),
    "rest-xml": (503, {"Content-Type": "application/xml"},
                 b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"),
}
_ACCESS_KEY = re.compile(rb"Credential=([^/]+)/")


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, *_, **__):
        yield self.body


class Throttle:
    """Answers a share of one account's requests (told by the access key that signed them) with a
    throttling error at the HTTP layer, seeded; registered on `before-send` ahead of moto."""

    def __init__(self, access_keys: set[str], share: float, seed: int = 16, answers: dict = _THROTTLE):
        self.access_keys, self.share, self.answers = access_keys, share, answers
        self.random, self.lock = random.Random(seed), threading.Lock()
        self.on = False
        self.injected: dict[str, int] = {}  # service -> throttling answers given

    def attach(self, client) -> None:
        protocol = client.meta.service_model.protocol
        service = client.meta.service_model.service_name
        client.meta.events.register_first("before-send", lambda request, **_: self(request, protocol, service),
                                          unique_id="test-throttle")  # once, even if two threads attach it

    def __call__(self, request, protocol: str, service: str):
        found = _ACCESS_KEY.search(_header(request, "Authorization"))
        if not self.on or not found or found.group(1).decode() not in self.access_keys:
            return None
        with self.lock:
            if self.random.random() >= self.share:
                return None
            self.injected[service] = self.injected.get(service, 0) + 1
        status, headers, body = self.answers[protocol]
        return AWSResponse(request.url, status, dict(headers), _Raw(body))


def _header(request, name: str) -> bytes:
    value = request.headers.get(name, b"")
    return value.encode() if isinstance(value, str) else value


class ThrottlingCache(ClientCache):
    """A ClientCache whose clients carry the Throttle (the test's stand-in for AWS throttling)."""

    def __init__(self, throttle: Throttle, **kwargs):
        super().__init__(**kwargs)
        self.throttle = throttle

    def shared(self, service: str, region: str):
        known = (service, region) in self._clients
        client = super().shared(service, region)
        if not known:
            self.throttle.attach(client)
        return client


# -- the organisation ------------------------------------------------------------------------------
def _session(account: str) -> boto3.Session:
    if account == MANAGEMENT:
        return boto3.Session(region_name="us-east-1")
    creds = boto3.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/Setup",
                                            RoleSessionName="setup")["Credentials"]
    return boto3.Session(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                         region_name="us-east-1")


def _organisation() -> None:
    """Three accounts, each with a few resources of the scanned types (some compliant, some not)."""
    for account in (MANAGEMENT, *MEMBERS):
        session = _session(account)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=f"evidence-{account}-0")
        s3.put_bucket_versioning(Bucket=f"evidence-{account}-0", VersioningConfiguration={"Status": "Enabled"})
        iam = session.client("iam")
        for n in range(2):
            iam.create_user(UserName=f"person-{n}")
        iam.create_login_profile(UserName="person-0", Password="Secret-password-1")
        ec2 = session.client("ec2")
        group = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        kms = session.client("kms")
        kms.enable_key_rotation(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        if account != MANAGEMENT:
            session.client("guardduty").create_detector(Enable=True)


def _scan(clients: ClientCache, before_run=lambda targets: None):
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.plan import needed_types
    from auditbook.collect.runner import Runner
    from auditbook.collect.targets import assumed_target, current_target
    from auditbook.evaluate.evaluator import evaluate

    catalog = load_catalog()
    rtypes = [t for t in needed_types(catalog) if t.name in TYPES]
    assert sorted(t.name for t in rtypes) == sorted(TYPES)
    targets = [current_target(clients)] + [assumed_target(clients, a, a, "Auditor") for a in MEMBERS]
    assert [t.error for t in targets] == [None] * 3
    before_run(targets)
    started = time.monotonic()
    collection = Runner(workers=6, clients=clients).run(targets, ["us-east-1"], rtypes)
    return collection, evaluate(catalog, collection), time.monotonic() - started


def _records(collection) -> list:
    return sorted((r.type, r.account, r.region, r.id, repr(r.data), tuple(sorted(r.evidence)))
                  for r in collection.records)


def _findings(findings) -> list:
    return sorted((f.check, f.resource_name, getattr(f, "account", ""), f.status) for f in findings)


def _by_account(stats: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, values in stats.items():
        total = out.setdefault(key.split("/")[0], {"calls": 0, "throttled": 0, "waited_seconds": 0.0})
        for name in total:
            total[name] += values[name]
    return out


def test_one_account_throttled_30_percent_completes_and_slows_no_other_account(aws):
    _organisation()
    _scan(ClientCache(pool=12))  # the first scan generates the IAM credential reports: later scans see them done
    baseline, baseline_findings, _ = _scan(ClientCache(pool=12))
    assert not baseline.gaps and len(baseline.records) >= 3 * 6

    throttle = Throttle(set(), share=0.3)
    clients = ThrottlingCache(throttle, pool=12)

    def throttle_one_account(targets):
        member = next(t for t in targets if t.account == THROTTLED)
        throttle.access_keys = {member.credentials.get_frozen_credentials().access_key}
        throttle.on = True

    collection, findings, _ = _scan(clients, throttle_one_account)
    throttle.on = False
    injected = sum(throttle.injected.values())
    assert injected >= 10 and len(throttle.injected) >= 2

    # the scan completed: the same records, evidence and findings, no gap
    assert collection.gaps == []
    assert _records(collection) == _records(baseline)
    assert collection.evidence.keys() == baseline.evidence.keys()
    assert _findings(findings) == _findings(baseline_findings)

    stats = clients.limiter_stats()
    for account in {key.split("/", 1)[0] for key in stats} | {"999999999999"}:  # one account's keys, read alone
        assert clients.limiter_stats(account) == {k: v for k, v in stats.items() if k.startswith(account + "/")}
    assert clients.limiter_stats(THROTTLED) and clients.limiter_stats("999999999999") == {}
    from auditbook.collect.ratelimit import throttled_keys
    assert collection.throttled == throttled_keys(stats) != {}  # the run read its accounts' keys: all of them
    accounts = _by_account(stats)
    # every throttling answer reached the throttled account's limiters, and only theirs
    assert accounts[THROTTLED]["throttled"] == injected
    assert accounts[THROTTLED]["waited_seconds"] > 0  # its limiter engaged: it was slowed down
    rates = clients.limiters.send_rates()
    engaged = {k: r for k, r in rates.items() if k.startswith(THROTTLED) and r is not None}
    assert engaged and all(stats[k]["throttled"] > 0 for k in engaged)
    # the other accounts were never throttled, never waited, and their limiters never engaged
    for account in (MANAGEMENT, MEMBERS[1]):
        assert accounts[account]["calls"] > 10
        assert accounts[account]["throttled"] == 0
        assert accounts[account]["waited_seconds"] < 0.05, accounts[account]
        assert all(r is None for k, r in rates.items() if k.startswith(account))


def test_limits_are_independent_per_key(aws):
    """Two accounts call the same service at once; AWS throttles one of them: only its limiter slows it."""
    from auditbook.collect.targets import assumed_target
    throttle = Throttle(set(), share=0.3, seed=3)
    clients = ThrottlingCache(throttle, pool=4)
    a, b = (assumed_target(clients, acct, acct, "Auditor") for acct in MEMBERS)
    throttle.access_keys = {a.credentials.get_frozen_credentials().access_key}
    throttle.on = True
    elapsed = {}

    def list_users(target, calls):
        started = time.monotonic()
        for _ in range(calls):
            with clients.client(target.credentials, "iam").use() as iam:
                iam.list_users()
        elapsed[target.account] = time.monotonic() - started

    threads = [threading.Thread(target=list_users, args=(a, 12)), threading.Thread(target=list_users, args=(b, 40))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats, rates = clients.limiter_stats(), clients.limiters.send_rates()
    key_a, key_b = f"{MEMBERS[0]}/aws-global/iam", f"{MEMBERS[1]}/aws-global/iam"  # IAM: one endpoint
    assert stats[key_a]["throttled"] == throttle.injected["iam"] > 0
    assert stats[key_a]["calls"] == 12 + stats[key_a]["throttled"]
    # A's send rate was cut below what B achieved at the same time; B never throttled, waited or limited
    b_rate = 40 / elapsed[MEMBERS[1]]
    assert rates[key_a] is not None and rates[key_a] < b_rate
    assert elapsed[MEMBERS[1]] < elapsed[MEMBERS[0]]
    assert (stats[key_b]["calls"], stats[key_b]["throttled"]) == (40, 0)
    assert stats[key_b]["waited_seconds"] < 0.01 and rates[key_b] is None
    # the same account's other services are other keys, with limiters of their own
    throttle.on = False
    with clients.client(a.credentials, "sts").use() as sts:
        sts.get_caller_identity()
    assert clients.limiters.send_rates()[f"{MEMBERS[0]}/us-east-1/sts"] is None
    assert clients.limiter_stats()[f"{MEMBERS[0]}/us-east-1/sts"]["waited_seconds"] < 0.01


def test_the_key_is_the_named_account_else_the_identity_of_the_credentials(aws):
    from auditbook.collect.targets import current_target
    clients = ClientCache(pool=4)
    me = current_target(clients)  # reads the identity: the credentials are known to be MANAGEMENT's
    with clients.client(me.credentials, "sts").use() as sts:
        with clients.client(me.credentials, "sts", account="444444444444").use():  # named: that key
            sts.get_caller_identity()
        sts.get_caller_identity()  # the outer binding is back
    with clients.client(None, "sts").use() as sts:
        with pytest.raises(Exception, match="credentials"):
            sts.get_caller_identity()
    stats = clients.limiter_stats()
    assert stats["444444444444/us-east-1/sts"]["calls"] == 1
    assert stats[f"{MANAGEMENT}/us-east-1/sts"]["calls"] == 1
    assert stats["unattributed/us-east-1/sts"]["calls"] == 1  # the identity call itself, before it was known


def test_configured_max_rate_is_honoured_per_key(aws):
    limits = RateLimits(max_rate=50, services={"iam": 20}, accounts={MEMBERS[1]: 10})
    clients = ClientCache(pool=4, rate_limits=limits)
    from auditbook.collect.targets import assumed_target
    a, b = (assumed_target(clients, acct, acct, "Auditor") for acct in MEMBERS)

    def timed(target, calls: int) -> float:
        started = time.monotonic()
        with clients.client(target.credentials, "iam").use() as iam:
            for _ in range(calls):
                iam.list_users()
        return time.monotonic() - started

    assert timed(a, 11) >= (11 - 1) / 20  # the iam override: 20/s
    assert timed(b, 6) >= (6 - 1) / 10  # the account's own, lower: 10/s
    stats = clients.limiter_stats()
    # the wait is the limiter's (the calls themselves take some of the time: tokens refill meanwhile)
    assert stats[f"{MEMBERS[0]}/aws-global/iam"]["waited_seconds"] >= 0.5 * (11 - 1) / 20
    assert stats[f"{MEMBERS[1]}/aws-global/iam"]["waited_seconds"] >= 0.5 * (6 - 1) / 10
    assert all(s["throttled"] == 0 for s in stats.values())


@pytest.mark.parametrize("service, call", [
    ("iam", "list_users"), ("ec2", "describe_vpcs"), ("kms", "list_keys"), ("guardduty", "list_detectors"),
    ("s3", "list_buckets")])  # query, ec2, json, rest-json, rest-xml
def test_throttling_has_its_own_attempt_budget(aws, service, call):
    """AUDITBOOK_MAX_ATTEMPTS (2 in tests) bounds other errors; throttling (as each protocol spells it)
    is retried up to throttle_attempts, then it is an error the scan reports."""
    from botocore.exceptions import ClientError

    from auditbook.collect.targets import current_target
    throttle = Throttle(set(), share=1.0)
    clients = ThrottlingCache(throttle, pool=4, rate_limits=RateLimits(throttle_attempts=3))
    me = current_target(clients)
    throttle.access_keys, throttle.on = {me.credentials.get_frozen_credentials().access_key}, True
    with pytest.raises(ClientError, match="Throttling|RequestLimitExceeded|SlowDown"):
        with clients.client(me.credentials, service).use() as client:
            getattr(client, call)()
    assert throttle.injected == {service: 3}
    key = next(k for k in clients.limiter_stats() if k.startswith(MANAGEMENT) and k.endswith("/" + service))
    assert clients.limiter_stats()[key] == {"calls": 3, "throttled": 3,
                                            "waited_seconds": clients.limiter_stats()[key]["waited_seconds"]}


def test_other_errors_keep_the_standard_attempts(aws):
    """A server error is not throttling: retried AUDITBOOK_MAX_ATTEMPTS (2 in tests) times in all, with
    standard mode's retry quota, and the key's limiter is not engaged."""
    from botocore.exceptions import ClientError

    from auditbook.collect.targets import current_target
    broken = {"query": (500, {"Content-Type": "text/xml"}, b"<ErrorResponse><Error><Type>Receiver</Type>"
                        b"<Code>ServiceFailure</Code><Message>internal</Message></Error></ErrorResponse>")}
    fault = Throttle(set(), share=1.0, answers=broken)
    clients = ThrottlingCache(fault, pool=4)
    me = current_target(clients)
    fault.access_keys, fault.on = {me.credentials.get_frozen_credentials().access_key}, True
    with pytest.raises(ClientError, match="ServiceFailure"):
        with clients.client(me.credentials, "iam").use() as iam:
            iam.list_users()
    assert fault.injected == {"iam": 2}
    key = f"{MANAGEMENT}/aws-global/iam"
    assert (clients.limiter_stats()[key]["calls"], clients.limiter_stats()[key]["throttled"]) == (2, 0)
    assert clients.limiters.send_rates()[key] is None


def test_default_throttle_budget_makes_a_30_percent_gap_negligible():
    assert RateLimits().throttle_attempts == DEFAULT_THROTTLE_ATTEMPTS
    assert 0.3 ** DEFAULT_THROTTLE_ATTEMPTS * 1_000_000 < 0.1  # < 0.1 lost calls in a million


# -- configuration ---------------------------------------------------------------------------------
def test_defaults_and_a_valid_file(tmp_path):
    assert load_rate_limits(None) == RateLimits()
    assert RateLimits().ceiling(MANAGEMENT, "ec2") is None  # adaptive only
    path = tmp_path / "rate-limits.yaml"
    path.write_text('max_rate: 25\nservices:\n  ec2: 40\n  iam: 5.5\naccounts:\n  "222222222222": 10\n'
                    "throttle_attempts: 8\n")
    limits = load_rate_limits(path)
    assert limits.throttle_attempts == 8
    assert limits.ceiling(MANAGEMENT, "s3") == 25
    assert limits.ceiling(MANAGEMENT, "ec2") == 40  # a service override replaces the default
    assert limits.ceiling("222222222222", "ec2") == 10  # both apply: the lower
    assert limits.ceiling("222222222222", "iam") == 5.5


def test_example_file_is_valid():
    limits = load_rate_limits(ROOT / "rate-limits.example.yaml")
    assert limits.services and limits.throttle_attempts >= 10


@pytest.mark.parametrize("text, field, value", [
    ("max_rate: -1\n", "max_rate", "-1"),
    ("max_rate: 0\n", "max_rate", "0"),
    ("max_rate: 1.0e+12\n", "max_rate", "1000000000000.0"),
    ("max_rate: 1e12\n", "max_rate", "'1e12'"),  # YAML 1.1 reads a mantissa without a dot as text
    ("max_rate: '10'\n", "max_rate", "'10'"),
    ("max_rate: true\n", "max_rate", "True"),
    ("max_rate: .nan\n", "max_rate", "nan"),
    ("throttle_attempts: 0\n", "throttle_attempts", "0"),
    ("throttle_attempts: 100000\n", "throttle_attempts", "100000"),
    ("throttle_attempts: 2.5\n", "throttle_attempts", "2.5"),
    ("services:\n  ec2: -5\n", "services.ec2", "-5"),
    ("services:\n  ec3: 5\n", "services", "ec3"),
    ("services: [ec2]\n", "services", None),
    ("accounts:\n  '12345': 5\n", "accounts.12345.'[key]'", "'12345'"),
    ("accounts:\n  123456789012: 5\n", "accounts.123456789012.'[key]'", "123456789012"),  # unquoted: a number
    ("accounts:\n  '123456789012': 1.0e+9\n", "accounts.123456789012", "1000000000.0"),
    ("max_rte: 5\n", "max_rte", "5"),
    ("- max_rate: 5\n", "(document)", None),
])
def test_hostile_values_are_refused_in_one_line(tmp_path, text, field, value):
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_rate_limits(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: ") and "\n" not in message
    if value is not None:
        assert value in message


def test_unreadable_or_malformed_file_is_one_line(tmp_path):
    for path, text in ((tmp_path / "missing.yaml", None), (tmp_path / "bad.yaml", "max_rate: [1\n")):
        if text is not None:
            path.write_text(text)
        with pytest.raises(UserError, match=re.escape(str(path))):
            load_rate_limits(path)


def test_an_unquoted_account_id_says_to_quote_it(tmp_path):
    from auditbook.collect.ratelimit import load_rate_limits
    from auditbook.errors import UserError
    path = tmp_path / "limits.yaml"
    path.write_text("accounts:\n  123456789012: 5\n")
    with pytest.raises(UserError, match="write account ids in quotes"):
        load_rate_limits(path)
