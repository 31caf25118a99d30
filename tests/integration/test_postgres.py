"""The store on a real PostgreSQL server: migrations to head, a scan stored and read back as on SQLite,
history across runs, alerts, and incidents' version check under concurrent writers."""
import datetime as dt
import threading

from sqlalchemy import text

from auditbook.auth import Actor
from auditbook.history.findings import findings_for_run
from auditbook.monitor import alerts, incidents
from auditbook.store.db import HEAD_REVISION, current_revision, open_engine


def test_scan_history_and_alerts_on_postgres(postgres, aws, tmp_path):
    from auditbook.scan import run_scan
    url = postgres.database()
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="pg-bucket")
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    s3.put_public_access_block(Bucket="pg-bucket", PublicAccessBlockConfiguration=block)
    day = dt.datetime(2026, 7, 1, 6, tzinfo=dt.timezone.utc)
    first = run_scan(regions="us-east-1", db=url, criterion="CC6.6", at=day)
    s3.delete_public_access_block(Bucket="pg-bucket")
    second = run_scan(regions="us-east-1", db=url, criterion="CC6.6", at=day + dt.timedelta(days=1))
    engine = open_engine(url)
    assert engine.dialect.name == "postgresql" and current_revision(engine) == HEAD_REVISION
    # the same scan on SQLite stores the same findings
    lite = f"sqlite:///{tmp_path}/same.db"
    s3.put_public_access_block(Bucket="pg-bucket", PublicAccessBlockConfiguration=block)
    run_scan(regions="us-east-1", db=lite, criterion="CC6.6", at=day)
    key = lambda f: (f["check"], f["resource"], f["status"])  # noqa: E731
    assert sorted(map(key, findings_for_run(engine, first.run_id))) == sorted(map(key, findings_for_run(open_engine(lite), 1)))
    pab = [f for f in findings_for_run(engine, second.run_id) if f["check"] == "s3-bucket-public-access-block"]
    assert [f["status"] for f in pab] == ["FAIL"]
    fired = [a for a in alerts.list_alerts(engine) if a["rule"] == "CheckRegressed"]
    assert [a["labels"]["resource"].split(":")[-1] for a in fired] == ["pg-bucket"]
    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import criterion_history
    runs = period_runs(engine, parse_period(start="2026-07-01", end="2026-07-02"))
    h = criterion_history(engine, load_catalog(), "CC6.6", runs, today=dt.date(2026, 7, 2))
    episode = [f for f in h.failures if f["check"] == "s3-bucket-public-access-block"]
    assert [(f["first_seen"].date(), f["state"]) for f in episode] == [(dt.date(2026, 7, 2), "open")]


def test_concurrent_incident_writers_on_postgres(postgres):
    engine = open_engine(postgres.database())
    with engine.connect() as conn:
        assert conn.execute(text("select version()")).scalar().startswith("PostgreSQL")
    inc = incidents.create(engine, Actor("ana", "analyst"), title="Race on PostgreSQL", severity="low")
    results, barrier = [], threading.Barrier(6)

    def writer(i):
        barrier.wait()
        try:
            incidents.update(engine, Actor(f"a{i}", "analyst"), inc["id"], 1, assignee=f"a{i}")
            results.append("ok")
        except incidents.Conflict:
            results.append("conflict")
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    assert incidents.get(engine, inc["id"])["version"] == 2


def test_packet_from_postgres_never_carries_the_store_password(postgres, aws, tmp_path):
    """The server trusts local connections, so any password works — and none may reach the packet."""
    from pathlib import Path

    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import Ed25519Signer, keygen, load_public_key
    from auditbook.scan import run_scan
    from tests.packet_store import small_catalog
    url = postgres.database().replace("postgres@", "postgres:Sup3rS3cretPw@").replace("+psycopg", "")
    aws.client("s3").create_bucket(Bucket="pg-packet")
    run_scan(regions="us-east-1", db=url, criterion="CC6.6", at=dt.datetime(2026, 7, 1, 6, tzinfo=dt.timezone.utc))
    keygen(str(tmp_path / "k"))
    result = build_packet(period=parse_period(start="2026-07-01", end="2026-07-01"), out=tmp_path / "p",
                          signer=Ed25519Signer(tmp_path / "k.key"), db=url,
                          catalog_path=Path(small_catalog(tmp_path / "c.yaml")), workers=1)
    assert result.failed == [] and result.runs == 1
    assert verify_packet(tmp_path / "p", public_key=load_public_key(tmp_path / "k.pub")).valid
    leaked = [p for p in (tmp_path / "p").rglob("*") if p.is_file() and b"Sup3rS3cretPw" in p.read_bytes()]
    assert leaked == []
    assert "***" in (tmp_path / "p" / "manifest.json").read_text()


def test_store_errors_and_output_never_show_the_password(postgres, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    exe = str(Path(sys.executable).with_name("auditbook"))
    bad = f"postgresql://postgres:Sup3rS3cretPw@127.0.0.1:{postgres.port}/no_such_database"
    r = subprocess.run([exe, "findings", "--db", bad], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 2 and "cannot open" in r.stderr and "Sup3rS3cretPw" not in r.stderr + r.stdout
    assert "postgres:***@" in r.stderr
