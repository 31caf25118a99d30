"""Reads shared by the notebooks of one packet build's kernel.

A packet build's kernel runs one criterion notebook after another over the same store and period, and
each reads the same things: the period's runs, the required manual items' states (judged over the
whole catalog), the types the last run attempted. In such a kernel (auditbook.report.packet.kernel
turns this on before anything runs) each of those is read once and the value shared — the kernel then
reads the store as of its first read, as the build's other parts do; everywhere else (the control
room, the CLI, the build process) every call reads the store. Shared values are never modified by
their readers."""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")
_SHARING = False
_VALUES: dict[tuple, object] = {}


def share_in_this_process() -> None:
    """From now on, this process (a packet build's kernel) shares the reads that go through once()."""
    global _SHARING
    _SHARING = True


def once(key: tuple, read: Callable[[], T]) -> T:
    """read(), or when this process shares its reads, the value read for `key` the first time (`key`
    names the store, what is read and every argument of the read)."""
    if not _SHARING:
        return read()
    if key not in _VALUES:
        _VALUES[key] = read()
    return _VALUES[key]  # type: ignore[return-value]


def store_key(bind) -> str:
    """The store an engine or a session's connection reads, as part of a key (its URL, password included:
    two stores differing only by their credentials are two stores)."""
    url = bind.url if hasattr(bind, "url") else bind.get_bind().url
    return url.render_as_string(hide_password=False)
