"""Raw evidence: redacted API responses, canonical JSON compressed, addressed by their SHA-256."""
from __future__ import annotations

import json
import zlib
from typing import Iterable, Iterator, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.store.models import Evidence, FindingState, ResourceState

BATCH = 500


def body(session: Session, sha256: str) -> Optional[dict]:
    """The response with this SHA-256, parsed (None: no such evidence)."""
    row = session.get(Evidence, sha256)
    return None if row is None else json.loads(zlib.decompress(row.body))


def raw_bodies(session: Session, hashes: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(sha256, canonical JSON bytes) of each of `hashes` held in the store, read in batches."""
    wanted = sorted(set(hashes))
    for i in range(0, len(wanted), BATCH):
        for sha, data in session.execute(select(Evidence.sha256, Evidence.body)
                                         .where(Evidence.sha256.in_(wanted[i:i + BATCH]))):
            yield sha, zlib.decompress(data)


def interval_evidence(session: Session, lo: int, hi: int) -> Iterator[tuple[int, int, list]]:
    """(first_run, last_run, evidence hashes) of every resource and finding interval overlapping the
    runs lo..hi."""
    for model in (ResourceState, FindingState):
        q = select(model.first_run, model.last_run, model.evidence).where(model.last_run >= lo, model.first_run <= hi)
        for first, last, evidence in session.execute(q):
            yield first, last, evidence or []
