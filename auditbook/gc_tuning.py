"""How auditbook's own processes run CPython's cyclic garbage collector: the command (cli.main), and a
packet build's notebook workers and kernels (report.packet). Their objects are mostly long-lived —
modules, the catalog, service models, a run's findings, a notebook's frames — and CPython's default
(a young collection every 700 allocations, an older one every 10 of those) re-walks them over and over:
~5 % of a small scan's time, and ~15 % of the CPU of a 1,000-account packet (perf: gc_collect_main and
its visits). Cycles are still collected, less often."""
from __future__ import annotations

import gc
from contextlib import contextmanager

YOUNG_GENERATION_THRESHOLD = 50_000


def collect_less() -> None:
    """Collect the young generation every YOUNG_GENERATION_THRESHOLD allocations (the older generations'
    thresholds unchanged)."""
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


@contextmanager
def collector_paused():
    """No collection while a command imports the modules it runs on (never inside a library function: a
    long-lived process would freeze the garbage of each call that failed), then all of it frozen (gc.freeze: no collection walks it until a scan's collection ends and unfreezes,
    collect.runner). Imports make ~150,000 long-lived objects for each young collection, and such a
    collection took 25–30 ms: three of them, ~5 % of a small scan's CPU, found no garbage worth it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
