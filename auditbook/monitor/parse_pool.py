"""The CloudTrail parse workers: a process pool whose children never re-run the parent's `__main__`.

multiprocessing's spawn start method makes each child import the parent's main script again (as
`__mp_main__`). When the parent's `__main__` is not an importable script — a Streamlit page, a
notebook, an embedding application — every child dies at start and the pool breaks. The parse
function lives in an importable module (auditbook.monitor.cloudtrail), so the children need nothing
from `__main__`: each is launched while a bare `__main__` stands in for the real one."""
from __future__ import annotations

import sys
import threading
import types
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import context

_launching = threading.Lock()


class _ChildWithoutMain(context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj):
        with _launching:
            real = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__: nothing to re-run
            try:
                return context.SpawnProcess._Popen(process_obj)
            finally:
                sys.modules["__main__"] = real


class _SpawnWithoutMain(context.SpawnContext):
    Process = _ChildWithoutMain


def parse_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes (started as they are needed) that import only what they run."""
    return ProcessPoolExecutor(workers, mp_context=_SpawnWithoutMain())
