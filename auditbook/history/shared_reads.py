"""Reads shared by the notebooks of one packet build's kernel.

A packet build's kernel runs one criterion notebook after another over the same store and period, and
each reads the same things: the period's runs, the required manual items' states (judged over the
whole catalog), the types the last run attempted. In such a kernel (auditbook.report.packet.kernel
turns this on before anything runs) each of those is read once and the value shared — the kernel then
reads the store as of its first read, as the build's other parts do. The build's own thread writing
the packet's data files (report.packet.data) shares its reads the same way while it runs, and only
that thread. Everywhere else (the control room, the CLI, the build's other threads) every call reads
the store. Shared values are never modified by their readers."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from auditbook.history import handed_reads

T = TypeVar("T")
_SHARING = False
_VALUES: dict[tuple, object] = {}
_THREAD = threading.local()  # .values: the reads shared by this thread, while shared_in_this_thread() runs


def share_in_this_process() -> None:
    """From now on, this process (a packet build's kernel) shares the reads that go through once()."""
    global _SHARING
    _SHARING = True


@contextmanager
def shared_in_this_thread() -> Iterator[None]:
    """Within this block, the calling thread shares the reads that go through once(); they are
    forgotten when it ends."""
    outer = getattr(_THREAD, "values", None)
    _THREAD.values = {} if outer is None else outer
    try:
        yield
    finally:
        _THREAD.values = outer


def active() -> bool:
    """Whether reads are shared here (this process, or this thread within shared_in_this_thread)."""
    return _SHARING or getattr(_THREAD, "values", None) is not None


def once(key: tuple, read: Callable[[], T]) -> T:
    """read(), or when this process (or, within shared_in_this_thread, this thread) shares its reads,
    the value read for `key` the first time (`key` names the store, what is read and every argument of
    the read). A packet kernel takes the value its build read for all its kernels, if the build handed
    one for `key` (history.handed_reads)."""
    values = _VALUES if _SHARING else getattr(_THREAD, "values", None)
    if values is None:
        return read()
    if key not in values:
        found, value = handed_reads.handed(key) if _SHARING else (False, None)
        values[key] = value if found else read()
    return values[key]  # type: ignore[return-value]


def store_key(bind) -> str:
    """The store an engine or a session's connection reads, as part of a key (its URL, password included:
    two stores differing only by their credentials are two stores)."""
    url = bind.url if hasattr(bind, "url") else bind.get_bind().url
    return url.render_as_string(hide_password=False)
