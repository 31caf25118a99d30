"""One client per (service, region) serves every account: each call signs as the account bound
to the calling thread, never as another's."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import NoCredentialsError

from auditbook.collect.clients import ClientCache
from auditbook.collect.targets import assumed_target, current_target


def test_shared_client_signs_as_each_bound_account(aws):
    cache = ClientCache(pool=8)
    targets = [current_target(cache)] + [assumed_target(cache, acct, acct, "Auditor")
                                         for acct in ("222222222222", "333333333333")]
    assert all(t.error is None for t in targets)
    calls_before = cache.calls

    def whoami(target):
        bound = cache.client(target.credentials, "sts", "us-east-1")
        with bound.use() as client:
            return target.account, client.get_caller_identity()["Account"]

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(whoami, targets * 20))
    assert {a for a, _ in answers} == {t.account for t in targets}
    assert all(expected == got for expected, got in answers)
    assert len(cache._clients) == 1  # one shared client for all three accounts
    assert cache.calls - calls_before == 60


def test_unbound_call_has_no_credentials(aws):
    client = ClientCache().shared("sts", "us-east-1")
    with pytest.raises(NoCredentialsError):
        client.get_caller_identity()
