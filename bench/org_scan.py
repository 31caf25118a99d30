"""bench/org.py's scans: `auditbook scan` in a subprocess (its peak RSS sampled with psutil and read from
/proc/PID/status VmHWM), locally or with `--executor dask://ADDR` on a distributed.LocalCluster, and what
the store says about it afterwards."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from org_estate import REGIONS, ROLE  # noqa: E402

from auditbook.store import runs  # noqa: E402
from auditbook.store.db import open_engine  # noqa: E402
from auditbook.store.run_reach import run_reach  # noqa: E402
from auditbook.store.session import reading  # noqa: E402

AUDITBOOK = str(Path(sys.executable).with_name("auditbook"))
PROGRESS_EVERY_S = 15.0


def has_executor_option() -> bool:
    """Whether this auditbook's scan takes --executor (issue 16 §1, helper B)."""
    out = subprocess.run([AUDITBOOK, "scan", "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return "--executor" in out.stdout


def vm_mb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split(f"{field}:")[1].split()[0]) // 1024


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listed:
            return [int(p) for p in listed.read().split()]
    except OSError:
        return []


class Sampler(threading.Thread):
    """The scan process's peak RSS (VmHWM, read every 0.2 s until it exits), its collection process's
    (collect.apart: a local scan's child), and a progress line every PROGRESS_EVERY_S seconds from the
    middleware's request count."""

    def __init__(self, proc: subprocess.Popen, control, label: str):
        super().__init__(daemon=True)
        self.proc, self.control, self.label = proc, control, label
        self.peak_mb = self.collection_peak_mb = 0
        self.base = control.stats()["requests"]

    def run(self) -> None:
        t0 = last = time.perf_counter()
        while self.proc.poll() is None:
            try:
                self.peak_mb = max(self.peak_mb, vm_mb(self.proc.pid, "VmHWM"))
            except (OSError, IndexError):  # the process ended between poll() and the read
                break
            for child in children_of(self.proc.pid):
                try:
                    self.collection_peak_mb = max(self.collection_peak_mb, vm_mb(child, "VmHWM"))
                except (OSError, IndexError):  # it ended
                    pass
            if time.perf_counter() - last >= PROGRESS_EVERY_S:
                last = time.perf_counter()
                done = self.control.stats()["requests"] - self.base
                print(f"    {self.label}: {last - t0:5.0f} s, {done:,} calls", flush=True)
            time.sleep(0.2)


def run_scan_command(url: str, control, db: str, workers: int, label: str, log_dir: Path,
                     executor: Optional[str] = None, accounts_file: Optional[Path] = None) -> dict:
    """One `auditbook scan` of the organisation (or of accounts_file) in both regions into a fresh store."""
    if db.startswith("sqlite:///"):
        Path(db[len("sqlite:///"):]).unlink(missing_ok=True)
    cmd = [AUDITBOOK, "scan", *(["--accounts", str(accounts_file)] if accounts_file else ["--org", ROLE]),
           "--regions", ",".join(REGIONS), "--db", db, "--workers", str(workers),
           *(["--executor", executor] if executor else [])]
    control.reset()
    log = log_dir / f"org-scan-{label}.log"
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        sampler = Sampler(proc, control, label)
        sampler.start()
        code = proc.wait()
        sampler.join()
    wall = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}: see {log}")
    said = re.search(r"API calls, ([0-9.]+) s", log.read_text())
    return {"label": label, "command": " ".join(cmd), "wall_s": round(wall, 2),
            "scan_reported_s": float(said.group(1)) if said else None,
            "coordinator_peak_rss_mb": sampler.peak_mb, "collection_process_peak_rss_mb": sampler.collection_peak_mb,
            "server": control.stats(), **read_store(db)}


def read_store(db: str) -> dict:
    """What the latest run stored (auditbook.store.run_reach): its own call count, collection time, the
    accounts it could not reach, and the accounts with records."""
    engine = open_engine(db, create=False)
    with reading(engine) as session:
        return run_reach(session, runs.latest(session).id)


@contextmanager
def local_cluster(n_workers: int, threads: int) -> Iterator[tuple[str, object]]:
    """A distributed.LocalCluster on 127.0.0.1 (worker processes inherit this process's environment:
    the moto endpoint and its credentials); yields ("dask://HOST:PORT", client)."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield "dask://" + cluster.scheduler_address.split("://", 1)[1], client


def workers_memory(client) -> dict:
    """Each worker process's RSS and peak RSS (MB)."""
    def mine():
        import psutil as ps
        me = ps.Process()
        with open("/proc/self/status") as status:
            hwm = int(status.read().split("VmHWM:")[1].split()[0]) // 1024
        return {"rss_mb": me.memory_info().rss // 2**20, "peak_rss_mb": hwm}
    return client.run(mine)


def cluster_scan(url: str, control, db: str, n_workers: int, threads: int, label: str, log_dir: Path,
                 accounts_file: Optional[Path] = None) -> dict:
    with local_cluster(n_workers, threads) as (address, client):
        result = run_scan_command(url, control, db, n_workers * threads, label, log_dir, executor=address,
                                  accounts_file=accounts_file)
        result["workers"] = workers_memory(client)
    result.update(n_workers=n_workers, threads_per_worker=threads)
    return result


def judge_reach(result: dict, denied: list[str]) -> dict:
    """The denied accounts are exactly those reported unreachable, and every other account has records."""
    ok = result["unreachable"] == sorted(denied) and not result["reached_without_records"]
    return {"denied_reported_unreachable": result["unreachable"] == sorted(denied),
            "every_other_account_has_records": not result["reached_without_records"], "pass": ok}
