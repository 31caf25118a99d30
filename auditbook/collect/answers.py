"""A list or shared call that several resource types of one scan make alike in the same account and
region, made once there.

ec2:DescribeVpcs lists the VPCs and also tells each security group its VPC's ranges; DescribeSubnets and
DescribeNatGateways list their own types and feed the subnets' routing; s3:ListBuckets lists the buckets
and tells the trails which buckets are the account's own. Each type reading them on its own made the
same request twice per (account, region): 7 of a small scan's 159 calls. The plan says which calls
repeat (the same service, pinned region, method, parameters and result); their answers are kept per
(account, region) until every job there has finished, and each user gets its own copy (a normaliser
may change what it is given). A failed call is not kept: the next user asks again and has its own gap."""
from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from typing import Callable, Iterable

from auditbook.collect.spec import Call, ResourceType

Signature = tuple


def signature(call: Call, default_service: str) -> Signature:
    return (call.service or default_service, call.region, call.method,
            json.dumps(call.params, sort_keys=True, default=repr), call.result)


def repeated_calls(rtypes: Iterable[ResourceType]) -> set[Signature]:
    """The list and shared calls (not static ones: those are read once per region anyway) that more
    than one place of these resource types makes."""
    uses = Counter(signature(call, rtype.service) for rtype in rtypes
                   for call in [rtype.list, *rtype.shared.values()] if call is not None and not call.static)
    return {sig for sig, n in uses.items() if n > 1}


class SharedAnswers:
    """The answers of repeated calls, per (account, region), dropped when its last job is done."""

    def __init__(self, rtypes: Iterable[ResourceType], scopes: Iterable[tuple[str, str]]):
        self.repeated = repeated_calls(rtypes)
        self.pending = Counter(scopes)  # (account, region) -> jobs not yet done
        self._answers: dict[tuple, dict] = {}  # (account, region) -> {signature: answer}
        self._locks: dict[tuple, dict] = {}  # (account, region) -> {signature: lock}
        self._lock = threading.Lock()

    def answer(self, account: str, region: str, call: Call, service: str, ask: Callable[[], tuple]):
        """`ask()`'s answer — made once per (account, region) if the call repeats — as a copy of its own."""
        sig = signature(call, service)
        if sig not in self.repeated:
            return ask()
        scope = (account, region)
        with self._lock:
            if scope not in self.pending:  # not planned, or its jobs are over: nothing to share with
                lock = None
            else:
                lock = self._locks.setdefault(scope, {}).setdefault(sig, threading.Lock())
        if lock is None:
            return ask()
        with lock:
            kept = self._answers.get(scope, {}).get(sig)
            if kept is None:
                found = ask()  # a failure raises: nothing is kept
                with self._lock:
                    if scope in self.pending:  # still: its last job may have ended meanwhile
                        self._answers.setdefault(scope, {})[sig] = copy.deepcopy(found)
                return found
        return copy.deepcopy(kept)

    def done(self, account: str, region: str) -> None:
        """One job of (account, region) has ended; after the last one its answers are dropped."""
        scope = (account, region)
        with self._lock:
            self.pending[scope] -= 1
            if self.pending[scope] <= 0:
                del self.pending[scope]
                self._answers.pop(scope, None)
                self._locks.pop(scope, None)
