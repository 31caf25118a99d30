"""Backup and restore of a PostgreSQL store (docs/operations.md, "Backups" and "Upgrades"): a store built
by real scans (in-process moto) and two chained packets, dumped by deploy/bin/auditbook-backup
(pg_dump -Fc, checked with pg_restore --list), restored with pg_restore into a new database. The packet
built again from the restored store verifies, chains to the packet recorded before the dump, and its
signed data — runs, findings, populations, evidence, documents — is the original's byte for byte. A dump
of an older schema revision, restored, is migrated to head when it is opened."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select, text

from auditbook.store.db import HEAD_REVISION, current_revision, open_engine

BACKUP_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "bin" / "auditbook-backup"
FIRST, SECOND = ("2026-07-01", "2026-07-03"), ("2026-07-04", "2026-07-06")
COMPARED = ("data/", "evidence/", "documents/")  # the signed data files (pages carry nothing else)
OLDER_REVISION = "0018"  # before evidence approval, deviation responses and application audit events


def libpq(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (what pg_dump and pg_restore take)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def backup(postgres, url: str, folder: Path) -> Path:
    """deploy/bin/auditbook-backup as the backup service runs it; the dump it wrote."""
    folder.mkdir()
    env = {**os.environ, "AUDITBOOK_DB": url, "AUDITBOOK_BACKUPS": str(folder),
           "PATH": f"{postgres.bin}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(BACKUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [dump] = folder.glob("auditbook-*.dump")
    assert not list(folder.glob(".*partial")) and f"{dump} (" in done.stdout
    return dump


def restore(postgres, dump: Path) -> str:
    """pg_restore of `dump` into a new, empty database; its URL."""
    url = postgres.database()
    done = subprocess.run([f"{postgres.bin}/pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
                           f"--dbname={libpq(url)}", str(dump)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return url


def build_and_verify(url: str, catalog: str, keys: Path, period: tuple, out: Path, previous=None):
    """The packet of `period` from the store at `url`, verified (with its chain when `previous`)."""
    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import Ed25519Signer, load_public_key
    result = build_packet(period=parse_period(start=period[0], end=period[1]), out=out,
                          signer=Ed25519Signer(keys.with_suffix(".key")), db=url, catalog_path=Path(catalog),
                          workers=2)
    assert result.failed == []
    verified = verify_packet(out, public_key=load_public_key(keys.with_suffix(".pub")), previous=previous)
    assert verified.valid, verified
    return result


def signed_data(packet: Path) -> dict[str, str]:
    """Path -> SHA-256 of the packet's data, evidence and documents, as its signed manifest lists them."""
    import json
    manifest = json.loads((packet / "manifest.json").read_text())
    return {f["path"]: f["sha256"] for f in manifest["files"] if f["path"].startswith(COMPARED)}


def table_rows(url: str) -> dict[str, list]:
    """Every row of every table, in primary-key order."""
    engine = open_engine(url, migrate=False)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for name, table in meta.tables.items()}


def sequences(url: str) -> dict[str, int]:
    with open_engine(url, migrate=False).connect() as conn:
        return dict(conn.execute(text("SELECT sequencename, last_value FROM pg_sequences")).all())


@pytest.fixture(scope="module")
def original(postgres, tmp_path_factory):
    """A store of five daily scans and approved manual evidence, two packets (the second chained to the
    first), then the nightly backup of it."""
    from auditbook.report.packet.signing import keygen
    from tests.packet_store import build_store, small_catalog
    root = tmp_path_factory.mktemp("pg-backup")
    url = postgres.database()
    runs = build_store(url)
    catalog = small_catalog(root / "catalog.yaml")
    keygen(str(root / "signer"))
    keys = root / "signer.pub"
    first = build_and_verify(url, catalog, keys, FIRST, root / "first")
    second = build_and_verify(url, catalog, keys, SECOND, root / "second", previous=root / "first")
    assert second.previous_manifest_sha256 == first.manifest_sha256
    dump = backup(postgres, url, root / "backups")
    return {"root": root, "url": url, "runs": runs, "catalog": catalog, "keys": keys, "dump": dump,
            "first": first, "second": second}


def test_a_restored_store_builds_the_same_packet_and_it_verifies(postgres, original):
    root = original["root"]
    restored = restore(postgres, original["dump"])
    assert restored != original["url"]
    again = build_and_verify(restored, original["catalog"], original["keys"], SECOND, root / "again",
                             previous=root / "first")
    # chained to the packet recorded before the backup: the packets table came back with the rest
    assert again.previous_manifest_sha256 == original["first"].manifest_sha256
    assert again.runs == original["second"].runs == 2
    before, after = signed_data(root / "second"), signed_data(root / "again")
    assert any(p.startswith("evidence/") for p in before) and any(p.startswith("documents/") for p in before)
    assert "data/runs.json" in before
    assert after == before


def test_a_restore_brings_back_every_row_and_the_sequences(postgres, original):
    """Ids continue where they were: a run stored after the restore cannot take an old run's id."""
    restored = restore(postgres, original["dump"])
    rows = table_rows(restored)
    assert rows == table_rows(original["url"])
    assert len(rows["runs"]) == 5 and rows["packets"]
    assert sequences(restored) == sequences(original["url"]) and sequences(restored)["runs_id_seq"] == 5
    assert current_revision(open_engine(restored, migrate=False)) == HEAD_REVISION


def test_a_dump_of_an_older_schema_is_migrated_when_opened(postgres, original, tmp_path):
    """An older release's store (downgraded here to OLDER_REVISION), dumped and restored under this
    release: opening it migrates it to head, and every run and finding is still there."""
    from alembic import command

    from auditbook.history.findings import findings_for_run
    from auditbook.store.db import alembic_config
    older = restore(postgres, original["dump"])
    engine = open_engine(older, migrate=False)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, OLDER_REVISION)
    assert current_revision(engine) == OLDER_REVISION
    restored = restore(postgres, backup(postgres, older, tmp_path / "older-backups"))
    assert current_revision(open_engine(restored, migrate=False)) == OLDER_REVISION
    upgraded = open_engine(restored)  # what every auditbook command does first
    assert current_revision(upgraded) == HEAD_REVISION
    source = open_engine(original["url"])
    for run_id in original["runs"].values():
        assert findings_for_run(upgraded, run_id) == findings_for_run(source, run_id)


def test_a_store_from_a_newer_release_is_refused_in_one_line(postgres, original):
    """Restoring a newer release's dump under an older auditbook (a downgrade) is refused, nothing changed."""
    from tests.conftest import cli
    newer = restore(postgres, original["dump"])
    with open_engine(newer, migrate=False).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    done = cli("findings", "--db", newer)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    assert "'9999'" in done.stderr and "Nothing was changed" in done.stderr and "Traceback" not in done.stderr
    assert current_revision(open_engine(newer, migrate=False)) == "9999"
