"""The store's record of the packets built from it: the manifest a new packet chains to, the record
of a finished build, and the list the control room's Packets page verifies."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

from auditbook.errors import UserError
from auditbook.history.period import Period, PeriodRuns
from auditbook.report.packet.manifest import MANIFEST, manifest_sha256
from auditbook.report.packet.tree import NotRegular, TooLarge
from auditbook.store import packets
from auditbook.store.session import reading, writing


def previous_manifest(engine, period: Period, previous_dir: Optional[Path]) -> Optional[str]:
    """The manifest hash this packet chains to: --previous DIR, else the newest packet in the store
    for a period that ended before this one starts."""
    if previous_dir is None:
        with reading(engine) as session:
            return packets.previous_manifest(session, period.start)
    where = Path(previous_dir) / MANIFEST
    try:
        return manifest_sha256(Path(previous_dir))
    except FileNotFoundError:
        raise UserError(f"--previous: {previous_dir} has no {MANIFEST}")
    except NotRegular as why:
        raise UserError(f"--previous: {where}: not a regular file ({why})")
    except TooLarge as why:
        raise UserError(f"--previous: {where}: {why}")
    except OSError as exc:
        raise UserError(f"--previous: {where}: cannot read: {exc.strerror}")


def record_build(engine, *, period: Period, out: Path, digest: str, previous: Optional[str], signature: dict,
                 pruns: PeriodRuns, failed: list[dict]) -> int:
    """Record a finished packet in the store; its id."""
    with writing(engine) as session:
        return packets.add(session, period_label=period.label, period_start=period.start, period_end=period.end,
                           path=str(out), manifest_sha256=digest, previous_manifest_sha256=previous,
                           signer_algorithm=signature["algorithm"], key_id=signature["key_id"],
                           built_at=dt.datetime.now(dt.timezone.utc), run_ids=pruns.ids, failed=failed)


def built_packets(engine) -> list[dict]:
    """Every packet built from this store, newest first (its folder, manifest, signer, runs)."""
    with reading(engine) as session:
        return packets.all_packets(session)
