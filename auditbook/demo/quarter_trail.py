"""The simulated quarter's CloudTrail, read as CloudTrail delivers it (SIMULATED).

Each change the quarter makes to the estate (demo/quarter.py storyline) is in CloudTrail log files of
the day before that day's scan (demo/trail.py STORY). They are put in the demo's trail bucket of the
log archive account and read by `auditbook watch` cycles on the simulated clock: the files up to the
one holding the change five minutes after that file was delivered, the rest just before the day's
scan. So the change population (CC8.1) holds the quarter's write events at their own times, and the
alerts they raise (CC7.3) fired in the period — not when the demo happened to read an old backlog.
Each cycle runs on the simulated day's alert clock (demo/clock.py)."""
from __future__ import annotations

import datetime as dt

from auditbook.demo.clock import alert_clock

DEMO_TRAIL_BUCKET = "simulated-cloudtrail-logs"
DELIVERY_DELAY = dt.timedelta(minutes=5)  # read five minutes after CloudTrail delivered the file


def trail_bucket(ids: dict):
    """The S3 client of the log archive account, with the demo's trail bucket made if missing (a bucket
    of its own: the real log archive's policy admits only CloudTrail over TLS). It exists from the
    quarter's first scan on, so it is made compliant — encrypted, versioned, public access blocked, ACLs
    disabled — but for its bucket policy: moto applies a bucket's Deny statements without their
    conditions, so a TLS-only policy would refuse the demo's own plain-HTTP writes and reads (a
    simulation artefact: s3-tls-only-policy fails on it, docs/demo.md)."""
    from auditbook.demo.quarter import BLOCK_ALL, assumed_session
    s3 = assumed_session(ids["audit-logs"]).client("s3")
    if DEMO_TRAIL_BUCKET in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        return s3
    s3.create_bucket(Bucket=DEMO_TRAIL_BUCKET)
    s3.put_bucket_encryption(Bucket=DEMO_TRAIL_BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_versioning(Bucket=DEMO_TRAIL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(Bucket=DEMO_TRAIL_BUCKET, PublicAccessBlockConfiguration=BLOCK_ALL)
    s3.put_bucket_ownership_controls(Bucket=DEMO_TRAIL_BUCKET, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    return s3


class QuarterTrail:
    """The quarter's story files by day, put and read day by day (`read_day`)."""

    def __init__(self, ids: dict, first_day: dt.date, engine):
        from auditbook.demo import trail as trailgen
        self.s3, self.engine = trail_bucket(ids), engine
        self.by_day: dict[int, list[tuple[str, bytes]]] = {}
        for day, key, body in trailgen.storyline_files_by_day(ids, first_day):
            self.by_day.setdefault(day, []).append((key, body))
        self.files = self.records = self.changes = self.fired = 0

    def read_day(self, day: int) -> None:
        """Put the day's files in the bucket and read them: up to the file holding the change, five
        minutes after its delivery; the others, five minutes after the last of them was delivered."""
        from auditbook.monitor.cloudtrail_records import delivered_at
        files = self.by_day.get(day, [])
        holding = next((n for n, (_key, body) in enumerate(files) if _has_write(body)), len(files) - 1)
        for batch in (files[:holding + 1], files[holding + 1:]):
            if batch:
                self._read(batch, max(delivered_at(key) for key, _body in batch) + DELIVERY_DELAY)

    def _read(self, batch: list[tuple[str, bytes]], at: dt.datetime) -> None:
        from auditbook.demo import trail as trailgen
        from auditbook.monitor.watch import cycle
        self.files += trailgen.upload(self.s3, DEMO_TRAIL_BUCKET, batch)
        with alert_clock(at):
            done = cycle(self.engine, lambda _bucket: self.s3, [DEMO_TRAIL_BUCKET], now=at)
        read = done.ingest[DEMO_TRAIL_BUCKET]
        if read.source_error or read.gaps:
            raise RuntimeError(f"simulated CloudTrail: {read.source_error or read.gaps[0]} reading {batch[0][0]}")
        self.records, self.changes, self.fired = (self.records + read.records, self.changes + read.changes,
                                                  self.fired + read.fired)


def _has_write(body: bytes) -> bool:
    import gzip

    import orjson
    return any(not r.get("readOnly") for r in orjson.loads(gzip.decompress(body))["Records"])
