"""Raw evidence: redacted API responses, canonical JSON, addressed by their SHA-256: compressed in
the store, or (issue 16) an object-locked copy in the evidence bucket that the store names by URL and
version (store/evidence_objects.py). Readers give both kinds alike; a bucket copy that cannot be read
at its version, or whose bytes have another SHA-256, is an EvidenceObjectError naming it."""
from __future__ import annotations

import json
import zlib
from typing import Iterable, Iterator, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auditbook.store.evidence_objects import EvidenceBucket, read_many, read_object
from auditbook.store.models import Evidence, FindingState, ResourceState

BATCH = 500


def body(session: Session, sha256: str) -> Optional[dict]:
    """The response with this SHA-256, parsed (None: no such evidence)."""
    row = session.get(Evidence, sha256)
    if row is None:
        return None
    data = zlib.decompress(row.body) if row.object_url is None else read_object(sha256, row.object_url, row.object_version)
    return json.loads(data)


def raw_bodies(session: Session, hashes: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(sha256, canonical JSON bytes) of each of `hashes` held in the store (or its bucket), read in
    batches (a batch's bucket objects in parallel)."""
    wanted = sorted(set(hashes))
    for i in range(0, len(wanted), BATCH):
        in_bucket = []
        for sha, data, url, version in session.execute(
                select(Evidence.sha256, Evidence.body, Evidence.object_url, Evidence.object_version)
                .where(Evidence.sha256.in_(wanted[i:i + BATCH]))):
            if url is not None:
                in_bucket.append((sha, url, version))
            else:
                yield sha, zlib.decompress(data)
        yield from read_many(in_bucket)


def object_refs(session: Session) -> Iterator[tuple[str, str, Optional[str], object]]:
    """(sha256, url, version, retain_until) of every response kept in the evidence bucket."""
    q = (select(Evidence.sha256, Evidence.object_url, Evidence.object_version, Evidence.retain_until)
         .where(Evidence.object_url.is_not(None)).order_by(Evidence.sha256))
    for row in session.execute(q):
        yield tuple(row)


def move_to_bucket(session: Session, bucket: EvidenceBucket, limit: int = BATCH) -> int:
    """Upload up to `limit` responses the store holds itself to `bucket` and keep only where each
    is (an existing store moving to the bucket, a batch per unit of work); -> how many moved."""
    rows = dict(session.execute(select(Evidence.sha256, Evidence.body).where(Evidence.object_url.is_(None))
                                .order_by(Evidence.sha256).limit(limit)).all())
    placed = bucket.put_many(sorted(rows), lambda sha: zlib.decompress(rows[sha]))
    for sha, stored in placed.items():
        session.execute(update(Evidence).where(Evidence.sha256 == sha).values(
            body=b"", object_url=stored.url, object_version=stored.version, retain_until=stored.retain_until))
    return len(placed)


def interval_evidence(session: Session, lo: int, hi: int) -> Iterator[tuple[int, int, list]]:
    """(first_run, last_run, evidence hashes) of every resource and finding interval overlapping the
    runs lo..hi."""
    for model in (ResourceState, FindingState):
        q = select(model.first_run, model.last_run, model.evidence).where(model.last_run >= lo, model.first_run <= hi)
        for first, last, evidence in session.execute(q):
            yield first, last, evidence or []
