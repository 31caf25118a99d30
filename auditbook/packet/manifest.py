"""The packet manifest (every file with SHA-256 and size, plus what the packet is about) and its
verification. The manifest is canonical JSON; the signature covers its exact stored bytes, and
verification never re-serialises it."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from auditbook.errors import UserError
from auditbook.packet.signing import check_signature

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "auditbook-packet/1"


def canonical_bytes(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def packet_files(root: Path) -> list[str]:
    """Every entry under root as a relative POSIX path (symlinks and odd entries included, so they
    can be refused), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
            out.append((base / name).relative_to(root).as_posix())
    return sorted(out)


def file_entries(root: Path) -> list[dict]:
    entries = []
    for rel in packet_files(root):
        if rel in (MANIFEST, SIGNATURE):
            continue
        sha, size = file_digest(root / rel)
        entries.append({"path": rel, "sha256": sha, "size": size})
    return entries


def manifest_sha256(directory: Path) -> str:
    return file_digest(Path(directory) / MANIFEST)[0]


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    manifest: Optional[dict] = None

    @property
    def valid(self) -> bool:
        return not self.problems


def verify_packet(directory: Path, *, public_key=None, kms_key: Optional[str] = None,
                  previous: Optional[Path] = None, kms_client=None) -> Verification:
    """Signature, then every file, then the chain to `previous` (itself verified with the same key)."""
    directory = Path(directory)
    result = Verification()
    if not directory.is_dir():
        raise UserError(f"DIR: {directory} is not a folder")
    try:
        raw = (directory / MANIFEST).read_bytes()
    except OSError:
        result.problems.append(f"missing file: {MANIFEST}")
        return result
    try:
        sig = json.loads((directory / SIGNATURE).read_bytes())
    except OSError:
        result.problems.append(f"missing file: {SIGNATURE}")
        return result
    except ValueError:
        result.problems.append(f"signature: {SIGNATURE} is not JSON")
        return result
    problem = check_signature(raw, sig if isinstance(sig, dict) else {}, public_key=public_key,
                              kms_key=kms_key, kms_client=kms_client)
    if problem:
        result.problems.append(problem)
    try:
        manifest = json.loads(raw)
        files = {f["path"]: f for f in manifest["files"]}
        if manifest.get("format") != FORMAT:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        result.problems.append(f"manifest: {MANIFEST} is not an {FORMAT} manifest")
        return result
    result.manifest = manifest
    present = packet_files(directory)
    for rel in present:
        if rel in (MANIFEST, SIGNATURE):
            continue
        path = directory / rel
        if rel not in files:
            result.problems.append(f"extra file: {rel}")
        elif path.is_symlink() or not path.is_file():
            result.problems.append(f"not a regular file: {rel}")
        else:
            sha, size = file_digest(path)
            if sha != files[rel]["sha256"] or size != files[rel]["size"]:
                result.problems.append(f"changed file: {rel} (SHA-256 or size differs from the manifest)")
    for rel in sorted(set(files) - set(present)):
        result.problems.append(f"missing file: {rel}")
    if previous is not None:
        prev = Path(previous)
        expected = manifest.get("previous_manifest_sha256")
        if not (prev / MANIFEST).is_file():
            result.problems.append(f"chain: {prev} has no {MANIFEST}")
        elif expected is None:
            result.problems.append("chain: this packet names no previous packet")
        elif manifest_sha256(prev) != expected:
            result.problems.append(f"chain: {prev}/{MANIFEST} is not the previous packet this one names "
                                   f"(expected SHA-256 {expected[:16]}…)")
        else:
            inner = verify_packet(prev, public_key=public_key, kms_key=kms_key, kms_client=kms_client)
            result.problems += [f"previous packet: {p}" for p in inner.problems]
    return result
