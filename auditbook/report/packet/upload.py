"""`packet --evidence s3://…`: a signed packet's files kept in the evidence bucket (docs/evidence-store.md).
Every file — the pages, data, evidence, documents, manifest.json and manifest.sig — is stored
content-addressed and locked like any evidence object (a response already in the bucket is not
uploaded again), and an index, `<prefix>/packets/<manifest SHA-256>/index.json`, lists each file's
path, SHA-256, object and version: the packet can be rebuilt byte for byte from the bucket and
checked with `auditbook verify`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from auditbook.report.packet.manifest import MANIFEST, SIGNATURE, file_entries
from auditbook.store.evidence_objects import EvidenceBucket

INDEX_FORMAT = "auditbook-packet-objects/1"


@dataclass(frozen=True)
class PacketUpload:
    index_url: str
    index_version: str
    files: int
    bytes: int


def upload_packet(folder: Path, manifest_sha256: str, bucket: EvidenceBucket) -> PacketUpload:
    """Store the packet in `folder` (just built and signed: its manifest's SHA-256 given) in `bucket`.
    An upload that fails is an EvidenceObjectError naming the object; the local packet is kept."""
    folder = Path(folder)
    paths = [e["path"] for e in file_entries(folder)] + [MANIFEST, SIGNATURE]
    hashes = {}
    for rel in paths:  # hashed from the bytes on disk: what is uploaded is what is listed
        with open(folder / rel, "rb") as fh:
            hashes[rel] = hashlib.file_digest(fh, "sha256").hexdigest()
    by_hash = {sha: rel for rel, sha in hashes.items()}
    stored = bucket.put_many(sorted(by_hash), lambda sha: (folder / by_hash[sha]).read_bytes())
    files = [{"path": rel, "sha256": sha, "size": stored[sha].size, "object": stored[sha].url,
              "version": stored[sha].version} for rel, sha in sorted(hashes.items())]
    index = {"format": INDEX_FORMAT, "packet": folder.name, "manifest_sha256": manifest_sha256, "files": files}
    data = json.dumps(index, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    placed = bucket.put_named(f"packets/{manifest_sha256}/index.json", data)
    return PacketUpload(placed.url, placed.version, len(files), sum(f["size"] for f in files))
