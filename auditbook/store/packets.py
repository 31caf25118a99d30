"""The packets built from this store: where each was written, its manifest's SHA-256 and the
previous packet's (the chain across periods)."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.store.db import utc
from auditbook.store.models import Packet


def previous_manifest(session: Session, before: dt.date) -> Optional[str]:
    """The manifest SHA-256 of the newest packet for a period that ended before `before`."""
    row = session.scalars(select(Packet).where(Packet.period_end < before)
                          .order_by(Packet.period_end.desc(), Packet.id.desc()).limit(1)).first()
    return row.manifest_sha256 if row else None


def add(session: Session, *, period_label: str, period_start: dt.date, period_end: dt.date, path: str,
        manifest_sha256: str, previous_manifest_sha256: Optional[str], signer_algorithm: str, key_id: str,
        built_at: dt.datetime, run_ids: list[int], failed: list[dict]) -> int:
    row = Packet(period_label=period_label, period_start=period_start, period_end=period_end, path=path,
                 manifest_sha256=manifest_sha256, previous_manifest_sha256=previous_manifest_sha256,
                 signer_algorithm=signer_algorithm, key_id=key_id, built_at=built_at, run_ids=run_ids, failed=failed)
    session.add(row)
    session.flush()
    return row.id


def all_packets(session: Session) -> list[dict]:
    """Every packet built, newest first."""
    return [{"id": p.id, "period": p.period_label, "period_start": p.period_start, "period_end": p.period_end,
             "path": p.path, "built_at": utc(p.built_at), "manifest": p.manifest_sha256,
             "previous": p.previous_manifest_sha256, "signer": p.signer_algorithm, "key": p.key_id,
             "run_ids": list(p.run_ids or []), "failed": list(p.failed or [])}
            for p in session.scalars(select(Packet).order_by(Packet.id.desc()))]
