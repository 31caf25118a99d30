"""Files attached to an incident (screenshots, logs, a timeline exported from a ticket): stored once
per content under their SHA-256 in the store, like manual evidence, never deleted, every attachment
on the incident's timeline. A file is at most MAX_BYTES and not empty; its name is made safe (no
folder, control or direction-override character, no leading dot); front ends offer it as a download
(application/octet-stream), never render it, and its SHA-256 is checked again when it is read."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.store import incident_attachments as stored
from auditbook.store import incidents as stored_incidents
from auditbook.store import manual_evidence as documents
from auditbook.store.audit_log import now, record
from auditbook.store.session import reading, writing
from auditbook.yamlfile import read_bytes

MAX_BYTES = 20 * 2**20
DOWNLOAD_MIME = "application/octet-stream"  # a download, whatever the file says it is
_SEPARATORS = re.compile(r"[/\\]")
_RESERVED = set('<>:"|?*')
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, format (e.g. U+202E), unassigned


def safe_filename(name: Optional[str]) -> str:
    """The last component of `name`, NFC-normalised, each control, format, separator-like or reserved
    character replaced by `_`, without leading dots or spaces, at most the column's 255 characters
    (the extension kept); `attachment` when nothing is left."""
    base = unicodedata.normalize("NFC", _SEPARATORS.split(name or "")[-1])
    base = "".join("_" if (unicodedata.category(c) in _UNSAFE_CATEGORIES or c in _RESERVED) else c for c in base)
    base = base.strip().lstrip(". ").rstrip()
    if not base:
        return "attachment"
    limit = stored.FILENAME_LENGTH
    if len(base) > limit:
        stem, dot, ext = base.rpartition(".")
        keep = dot + ext if dot and 0 < len(ext) <= 16 else ""
        base = base[:limit - len(keep)] + keep
    return base


@dataclass(frozen=True)
class CheckedFile:
    """A file checked and ready to be attached (nothing written yet)."""
    filename: str  # safe_filename() of the name given
    given: str  # the name as given (kept on the timeline when it had to be changed)
    sha256: str
    content: bytes


def checked_file(filename: Optional[str], content: bytes) -> CheckedFile:
    """`content` under `filename` as an attachment: bytes, not empty, at most MAX_BYTES."""
    name = safe_filename(filename)
    if not isinstance(content, (bytes, bytearray)):
        raise UserError(f"attachment {name}: not a file's bytes")
    if not content:
        raise UserError(f"attachment {name}: is empty")
    if len(content) > MAX_BYTES:
        raise UserError(f"attachment {name}: {len(content)} bytes, more than the {MAX_BYTES} allowed")
    content = bytes(content)
    given = (filename or "")[:stored.FILENAME_LENGTH].encode("utf-8", "backslashreplace").decode("utf-8")
    return CheckedFile(name, given, hashlib.sha256(content).hexdigest(), content)


def read_file(path: Path, option: str = "--attach") -> CheckedFile:
    """checked_file() of a file on disk: a regular file of at most MAX_BYTES (a FIFO or device is
    refused before it is read), never a symbolic link (a link to /etc/shadow would store its target)."""
    try:
        data = read_bytes(Path(path), max_bytes=MAX_BYTES, follow_symlinks=False)
    except UserError as exc:
        raise UserError(f"{option}: {exc}") from None
    try:
        return checked_file(Path(path).name, data)
    except UserError as exc:
        raise UserError(f"{option}: {exc}") from None


def store_file(session, actor: Actor, incident_id: int, file: CheckedFile, stamp: dt.datetime) -> dict:
    """A checked file stored on the incident and its timeline, in the caller's unit of work."""
    made = stored.insert_attachment(session, incident_id=incident_id, filename=file.filename, sha256=file.sha256,
                                    content=file.content, uploaded_by=actor.name, at=stamp)
    after = {"attachment": made["id"], "filename": file.filename, "sha256": file.sha256, "size": len(file.content)}
    if file.given != file.filename:
        after["name given"] = file.given
    record(session, actor, "attach", "incident", incident_id, after=after, at=stamp)
    return made


def attach(engine, actor: Actor, incident_id: int, filename: Optional[str], content: bytes) -> dict:
    """Store `content` as a file of the incident (checked first: nothing is written otherwise)."""
    authorize(actor, "update_incident")
    file = checked_file(filename, content)
    with writing(engine) as session:
        if not stored_incidents.exists(session, incident_id):
            raise UserError(f"incident: no incident {incident_id}")
        return store_file(session, actor, incident_id, file, now())


def attachments(engine, incident_id: int) -> list[dict]:
    """The incident's attachments (name, SHA-256, size, who, when), oldest first; no bytes."""
    with reading(engine) as session:
        return stored.of_incident(session, incident_id)


def attachment_content(engine, attachment_id: int) -> tuple[dict, bytes]:
    """An attachment's record and bytes, the bytes checked against the SHA-256 it was stored under."""
    with reading(engine) as session:
        found = stored.get(session, attachment_id)
        data = None if found is None else documents.document(session, found["sha256"])  # shared table
    if found is None or data is None:
        raise UserError(f"attachment: no attachment {attachment_id}")
    if hashlib.sha256(data).hexdigest() != found["sha256"]:
        raise UserError(f"attachment {attachment_id}: the stored bytes do not match their SHA-256 "
                        f"{found['sha256']} (the store was altered)")
    return found, data
