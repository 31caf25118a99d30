"""`auditbook demo`: a local moto server on 127.0.0.1, the simulated organisation, and a full scan."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

from auditbook.errors import UserError
from auditbook.report.terminal import posture_summary

TODAY_LABEL = "demo: simulated organisation, scanned today"  # the `simulated` parameter of the demo's own run
DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo-access-key",
    "AWS_SECRET_ACCESS_KEY": "demo-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


class MotoServer:
    """moto_server as a child process in its own process group, bound to 127.0.0.1."""

    def __init__(self, port: int = 0, log_path: Optional[Path] = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 20.0) -> "MotoServer":
        if port_in_use(self.port):
            raise UserError(f"--port: 127.0.0.1:{self.port} is already in use (is another demo running?)")
        beside = Path(sys.executable).with_name("moto_server")  # the moto pinned in this environment
        exe = str(beside) if beside.exists() else shutil.which("moto_server")
        if not exe:
            raise RuntimeError("moto_server is not installed (pip install 'moto[server]')")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, **DEMO_ENV}
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log,
                                     env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc:
            from auditbook.web.server import stop_group
            stop_group(self.proc, grace=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def demo_environment(url: str) -> dict:
    return {**DEMO_ENV, "AWS_ENDPOINT_URL": url}


def run_demo(port: int, db: Optional[str], keep_running: bool, console, packet: bool = True,
             app_port: Optional[int] = 8501) -> int:
    """`app_port` None: do not start the control room at the end."""
    import datetime as dt

    import boto3

    from auditbook.demo.estate import build
    from auditbook.history.period import previous_quarter

    demo_dir = Path("var/demo")
    demo_dir.mkdir(parents=True, exist_ok=True)
    if db and db.startswith("sqlite:///"):
        Path(db[len("sqlite:///"):]).unlink(missing_ok=True)  # each demo starts from a fresh store
    server = MotoServer(port, demo_dir / "moto_server.log").start()
    try:
        os.environ.update(demo_environment(server.url))
        console.print(f"moto server (simulated AWS) on {server.url}")
        t0 = time.perf_counter()
        ids = build(boto3.Session(region_name="us-east-1"), log=lambda m: console.print(f"  {m}"))
        console.print(f"simulated organisation built in {time.perf_counter() - t0:.1f} s")
        quarter = previous_quarter(dt.datetime.now(dt.timezone.utc).date())
        if packet:
            t0 = time.perf_counter()
            console.print(f"SIMULATED quarter {quarter.label} of daily scans (violations appear and are fixed):")
            done = simulate_period(ids, quarter, db, log=console.print)
            console.print(f"simulated quarter: {done['scans']} scans on days the estate changed, "
                          f"{done['replays']} replayed days, {done['outage_days']} days without a scan, "
                          f"{done['changes']} CloudTrail changes read, incidents "
                          + ", ".join(f"{ticket} (incident {n})" for ticket, n in done["incidents"].items())
                          + f" opened and closed, in {time.perf_counter() - t0:.1f} s")
        result = scan_today(db)
        console.print(posture_summary(result.summary, simulated=True))
        counts = {s: sum(1 for f in result.findings if f.status == s) for s in ("PASS", "FAIL", "ERROR")}
        console.print(f"scan: run {result.run_id}, {len(result.accounts)} accounts x {len(result.regions)} regions, "
                      f"{len(result.collection.records)} resources, {result.collection.calls} API calls in "
                      f"{result.seconds:.2f} s — PASS {counts['PASS']}, FAIL {counts['FAIL']}, ERROR {counts['ERROR']}")
        console.print(f"results: {result.db_url} (run {result.run_id})")
        console.print(f"  .venv/bin/auditbook findings --db {result.db_url} --status FAIL")
        console.print(f"  .venv/bin/auditbook findings --db {result.db_url} --format json")
        if packet:
            demo_packet(quarter, db, demo_dir, console)
            demo_cloudtrail(ids, result.db_url, console)
            demo_app_audit(ids, result.db_url, console)
            demo_incident(result.db_url, console)
        console.print("planted violations and what the demo simulates: docs/demo.md")
        if keep_running:
            console.print(f"moto server left running on {server.url} (pid {server.proc.pid}); "
                          f"point auditbook at it with AWS_ENDPOINT_URL={server.url}")
            server.proc = None
    finally:
        server.stop()
    if app_port:
        serve_control_room(result.db_url, app_port)
    return result.run_id


def simulate_period(ids: dict, period, db: Optional[str], log=print) -> dict:
    """The SIMULATED quarter (demo/quarter.py) with its CloudTrail read day by day as it is delivered
    (demo/quarter_trail.py) and the on-call's incidents (demo/quarter_incidents.py), then what people
    do with it once it is over: the incidents' records, the audit work (demo/audit_work.py). The
    counts of all of it."""
    import datetime as dt

    from auditbook.catalog.model import load_catalog
    from auditbook.demo.audit_work import simulate_audit_work
    from auditbook.demo.quarter import OUTAGE, simulate_quarter
    from auditbook.demo.quarter_incidents import QuarterIncidents
    from auditbook.demo.quarter_trail import QuarterTrail
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(db), load_catalog()
    trail, incidents = QuarterTrail(ids, period.start, engine), QuarterIncidents(engine, period.start)
    done = simulate_quarter(ids, period, db, log=log, before_scan=trail.read_day, after_scan=incidents.after_scan)
    done |= {"trail_files": trail.files, "changes": trail.changes, "trail_alerts": trail.fired,
             "incidents": dict(incidents.opened)}
    done["documents"] += incidents.records(catalog)
    outage = [period.start + dt.timedelta(days=d) for d in OUTAGE]
    return done | simulate_audit_work(engine, catalog, period, outage, log=log)


def scan_today(db: Optional[str]):
    """The demo's scan of the simulated organisation as it is now: a real scan (of moto), labelled
    SIMULATED in its parameters like every run of the simulated quarter."""
    from auditbook.demo.estate import REGIONS, ROLE
    from auditbook.scan import run_scan
    return run_scan(org_role=ROLE, regions=",".join(REGIONS), db=db, simulated=TODAY_LABEL)


def demo_cloudtrail(ids: dict, db_url: str, console) -> None:
    """SIMULATED CloudTrail log files for the last hour in the demo's trail bucket of the log archive
    account (beside the quarter's, read while the quarter was simulated) — normal traffic, a burst of
    denied calls, root usage, a sign-in without MFA, a security group opened to the world, CloudTrail
    stopped, a key scheduled for deletion, a policy changed — and one `watch` cycle over them."""
    import datetime as dt

    from auditbook.demo import trail as trailgen
    from auditbook.demo.quarter_trail import DEMO_TRAIL_BUCKET, trail_bucket
    from auditbook.monitor.alerts import list_alerts
    from auditbook.monitor.watch import cycle
    from auditbook.store.db import open_engine
    s3 = trail_bucket(ids)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
    written = trailgen.upload(s3, DEMO_TRAIL_BUCKET, trailgen.files(ids["staging"], "us-east-1", start, 12, 400))
    result = cycle(open_engine(db_url), lambda b: s3, [DEMO_TRAIL_BUCKET])
    r = result.ingest[DEMO_TRAIL_BUCKET]
    console.print(f"SIMULATED CloudTrail: {written} log files, {r.records} records read by `auditbook watch`; "
                  f"{len(list_alerts(open_engine(db_url), ('firing',)))} alerts firing "
                  f"(.venv/bin/auditbook alerts --db {db_url})")


def demo_app_audit(ids: dict, db_url: str, console) -> None:
    """SIMULATED application audit events in prod's /app/audit (demo/estate_applogs.py), read once as
    `auditbook app-audit ingest` would: CC6.3 / CC8.1 evidence and the app_events alerts."""
    from auditbook.demo.estate import ROLE
    from auditbook.demo.estate_applogs import ingest_demo
    from auditbook.store.db import open_engine
    for name, r in ingest_demo(ids, open_engine(db_url), ROLE).items():
        console.print(f"SIMULATED application audit events: {name}: {r.kept} read, {r.unread} unreadable, "
                      f"{r.fired} alerts raised (.venv/bin/auditbook app-audit list --db {db_url})")


def demo_incident(db_url: str, console) -> Optional[dict]:
    """A SIMULATED incident opened from a firing alert (the root sign-in, if any), so the control
    room's incident list and wall screen have something to show. Its title, description and links
    are those of any incident opened from that alert (monitor.incidents.alert_incident), labelled
    SIMULATED — never words of their own that could tell a different story than the alert."""
    from auditbook.auth import Actor
    from auditbook.monitor import alerts, incidents
    from auditbook.store.db import open_engine
    engine = open_engine(db_url)
    firing = sorted(alerts.list_alerts(engine, ("firing",)), key=lambda a: (a["rule"] != "RootAccountUsage", a["id"]))
    if not firing:
        return None
    alert = firing[0]
    made = incidents.from_alert(engine, Actor("auditbook demo", "analyst"), alert["id"], label="SIMULATED")
    console.print(f"SIMULATED incident {made['id']} opened from alert {alert['id']} ({alert['rule']})")
    return made


def serve_control_room(db_url: str, port: int) -> None:
    """The control room in the foreground, on 127.0.0.1, until Ctrl-C: this process becomes the server
    (exec), so a signal reaches the server itself. It prints the link to open (with its token)."""
    from auditbook.store.sqlite_urls import absolute_url
    from auditbook.web.server import serve
    serve(absolute_url(db_url), "127.0.0.1", port, option="--app-port")


def demo_packet(quarter, db: Optional[str], demo_dir: Path, console) -> Path:
    """The signed packet of the simulated quarter, with the demo's own key pair."""
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import Ed25519Signer, keygen

    prefix = demo_dir / "demo-signing"
    if not Path(f"{prefix}.key").exists():
        keygen(str(prefix))
    out = demo_dir / f"packet-{quarter.label}"
    shutil.rmtree(out, ignore_errors=True)  # the store was just rebuilt; so is its packet
    result = build_packet(period=quarter, out=out, signer=Ed25519Signer(Path(f"{prefix}.key")), db=db)
    console.print(f"signed audit packet for {quarter.label} (SIMULATED): {out}/index.html — {result.criteria} "
                  f"criteria, {result.runs} runs, {result.bytes / 2**20:.1f} MB, built in {result.seconds:.1f} s"
                  + (f"; {len(result.failed)} notebooks failed" if result.failed else ""))
    console.print(f"  verify it: .venv/bin/auditbook verify {out} --public-key {prefix}.pub")
    return out
