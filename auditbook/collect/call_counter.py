"""API calls counted per run when clients are shared: a Runner's (or a Dask task's) own calls."""
from __future__ import annotations

import threading
import weakref
from collections import Counter
from contextlib import contextmanager


class CallCounter:
    """The API calls made while `counting()` is in force in the threads that enter it: one Runner's
    (or one Dask task's) own calls, when clients are shared by several runs at once. A client counts
    into it once `count_calls_of(client)` has been registered (idempotent)."""

    def __init__(self):
        self.calls = 0
        self.by_operation: Counter = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def counting(self):
        previous = getattr(_counting, "counter", None)
        _counting.counter = self
        try:
            yield self
        finally:
            _counting.counter = previous

    def add(self, operation: str) -> None:
        with self._lock:
            self.calls += 1
            self.by_operation[operation] += 1


_counting = threading.local()


def _count_call(model=None, **_):
    counter = getattr(_counting, "counter", None)
    if counter is not None and model is not None:
        counter.add(f"{model.service_model.service_name}:{model.name}")


_counted_clients: "weakref.WeakSet" = weakref.WeakSet()
_counted_lock = threading.Lock()


def count_calls_of(client) -> None:
    """Count this (shared) client's calls into the CallCounter in force in the calling thread (once)."""
    if client in _counted_clients:
        return
    with _counted_lock:
        if client not in _counted_clients:
            client.meta.events.register("before-call", _count_call, unique_id="auditbook-call-counter")
            _counted_clients.add(client)
