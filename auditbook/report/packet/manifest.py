"""The packet manifest (every file with SHA-256 and size, plus what the packet is about) and its
verification. The manifest is canonical JSON; the signature covers its exact stored bytes, and
verification never re-serialises it.

Verification treats the packet as hostile: the signature is checked over the stored bytes first, and
nothing of an unsigned manifest is parsed; files are read only through `tree` (regular files, no
symlink followed, size-capped, hashed in chunks); every name is printed escaped; each problem is one
line, never an exception."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditbook.errors import UserError, field_path, one_line
from auditbook.errors import shown as _shown
from auditbook.report.packet import tree
from auditbook.report.packet.signing import check_signature

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "auditbook-packet/1"
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_SIGNATURE_BYTES = 64 * 2**10
MAX_PROBLEMS = 1000  # lines; the rest are counted
PATH_CHARS = 1024  # a path in a problem is cut to this many characters


def shown(name) -> str:
    """A name from the packet as printed: quoted and escaped (repr), so that a newline, a terminal
    escape or a bidi control in a file name cannot forge a line of verify's output."""
    return _shown(name, PATH_CHARS)

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


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


def file_entries(root: Path) -> list[dict]:
    """The manifest's `files` for a folder the build just wrote: relative POSIX paths, sorted."""
    paths = []
    for dirpath, _, filenames in os.walk(root):
        paths += [(Path(dirpath) / name).relative_to(root).as_posix() for name in filenames]
    entries = []
    for rel in sorted(p for p in paths if p not in (MANIFEST, SIGNATURE)):
        sha, size = file_digest(root / rel)
        entries.append({"path": rel, "sha256": sha, "size": size})
    return entries


def manifest_sha256(directory: Path) -> str:
    """SHA-256 of a packet's manifest.json bytes. Raises OSError or tree.Refused (not a regular file,
    a symlink, or larger than MAX_MANIFEST_BYTES)."""
    raw = tree.read_bounded(str(Path(directory) / MANIFEST), MAX_MANIFEST_BYTES)
    return hashlib.sha256(raw).hexdigest()


def unsafe_path(path: str) -> Optional[str]:
    """Why a manifest path could point outside its packet or mislead, or None."""
    if not path:
        return "an empty path"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "a control character in the path"
    if "\\" in path:
        return "a backslash in the path"
    if path.startswith("/"):
        return "an absolute path"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "an empty, '.' or '..' part in the path"
    if path in (MANIFEST, SIGNATURE):
        return "the manifest or its signature listed as a file"
    return None


class FileEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    path: str
    sha256: Sha256Hex
    size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside_the_packet(cls, value: str) -> str:
        reason = unsafe_path(value)
        if reason:
            raise ValueError(reason)
        return value


class SignedManifest(BaseModel):
    """The fields verification relies on; the rest is kept as is."""
    model_config = ConfigDict(strict=True, extra="allow")
    format: Literal["auditbook-packet/1"]
    files: list[FileEntry]
    previous_manifest_sha256: Optional[Sha256Hex]


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    manifest: Optional[dict] = None
    manifest_sha256: Optional[str] = None  # of the manifest bytes that were checked
    omitted: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.omitted += 1


def _strict_json(raw: bytes):
    """JSON with every key once (two `files` keys would read differently in another parser)."""
    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("a key is repeated in an object")
        return dict(items)
    return json.loads(raw, object_pairs_hook=pairs)


def _read(root_fd: int, name: str, max_bytes: int, result: Verification) -> Optional[bytes]:
    try:
        return tree.read_bounded(name, max_bytes, dir_fd=root_fd)
    except FileNotFoundError:
        result.add(f"missing file: {shown(name)}")
    except tree.TooLarge as why:
        result.add(f"too large: {shown(name)} ({why})")
    except tree.NotRegular as why:
        result.add(f"not a regular file: {shown(name)} ({why})")
    except OSError as exc:
        result.add(f"unreadable file: {shown(name)} ({exc.strerror})")
    return None


def _schema_problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        value = err.get("input")
        detail = "" if err["type"] == "missing" or isinstance(value, (dict, list)) else f" (value {_shown(value)})"
        out.append(f"manifest: {field_path(err['loc']) or '(top level)'}: {one_line(err['msg'])}{detail}")
    return out


def _listing_problems(files: list[FileEntry]) -> list[str]:
    paths = [f.path for f in files]
    out = [f"manifest: {shown(p)} is listed more than once" for p, n in sorted(Counter(paths).items()) if n > 1]
    folders = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
    out += [f"manifest: {shown(p)} is listed as a file and is a folder of other files" for p in sorted(folders & set(paths))]
    return out


def _signed_manifest(root_fd: int, result: Verification, keys: dict) -> Optional[SignedManifest]:
    """The manifest, if its signature holds and it is well formed; otherwise None and the problems."""
    raw = _read(root_fd, MANIFEST, MAX_MANIFEST_BYTES, result)
    sig_raw = _read(root_fd, SIGNATURE, MAX_SIGNATURE_BYTES, result) if raw is not None else None
    if raw is None or sig_raw is None:
        return None
    result.manifest_sha256 = hashlib.sha256(raw).hexdigest()
    try:
        sig = _strict_json(sig_raw)
    except (ValueError, RecursionError):
        result.add(f"signature: {shown(SIGNATURE)} is not JSON")
        return None
    problem = check_signature(raw, sig if isinstance(sig, dict) else {}, **keys)
    if problem:  # nothing of an unsigned manifest is read any further
        result.add(problem)
        return None
    try:
        data = _strict_json(raw)
        manifest = SignedManifest.model_validate(data)
    except (ValueError, RecursionError) as exc:
        problems = _schema_problems(exc) if isinstance(exc, ValidationError) else \
            [f"manifest: {shown(MANIFEST)} is not valid JSON: {str(exc)[:160]}"]
        for p in problems:
            result.add(p)
        return None
    listing = _listing_problems(manifest.files)
    for p in listing:
        result.add(p)
    result.manifest = data
    return None if listing else manifest


def _file_problem(rel: str, name: str, info: os.stat_result, dir_fd: int, entry: FileEntry) -> Optional[str]:
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file: {shown(rel)} ({tree.kind(info.st_mode)})"
    if info.st_size != entry.size:  # no need to read it
        return f"changed file: {shown(rel)} (size {info.st_size}, the manifest says {entry.size})"
    try:
        fd, _ = tree.open_regular(name, dir_fd)
    except tree.NotRegular as why:
        return f"not a regular file: {shown(rel)} ({why})"
    except OSError as exc:
        return f"unreadable file: {shown(rel)} ({exc.strerror})"
    try:
        sha, size = tree.digest(fd, entry.size)
    finally:
        os.close(fd)
    if sha != entry.sha256 or size != entry.size:
        return f"changed file: {shown(rel)} (SHA-256 or size differs from the manifest)"
    return None


def _check_files(root_fd: int, manifest: SignedManifest, result: Verification) -> None:
    """Every entry on disk against the manifest: changed, missing, extra (files and folders), or not
    a regular file / folder. Only folders the manifest implies are entered."""
    files = {f.path: f for f in manifest.files}
    folders = {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}
    seen, blocked = set(), []

    def unreadable(rel: str, exc: OSError) -> None:
        result.add(f"unreadable: {shown(rel)} ({exc.strerror})")

    for rel, name, info, dir_fd in tree.entries(root_fd, folders.__contains__, unreadable):
        if rel in (MANIFEST, SIGNATURE):
            continue  # read and checked above
        is_dir = stat.S_ISDIR(info.st_mode)
        if rel in folders:
            if not is_dir:
                blocked.append(rel + "/")
                result.add(f"not a folder: {shown(rel)} ({tree.kind(info.st_mode)})")
            continue
        if is_dir:
            result.add(f"extra folder: {shown(rel)}")
        elif rel not in files:
            regular = stat.S_ISREG(info.st_mode)
            result.add(f"extra file: {shown(rel)}" + ("" if regular else f" ({tree.kind(info.st_mode)})"))
        else:
            seen.add(rel)
            problem = _file_problem(rel, name, info, dir_fd, files[rel])
            if problem:
                result.add(problem)
    for rel in sorted(set(files) - seen):
        if not any(rel.startswith(prefix) for prefix in blocked):
            result.add(f"missing file: {shown(rel)}")


@contextlib.contextmanager
def _folder(directory: Path):
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"DIR: {directory}: cannot open the folder: {exc.strerror}")
    try:
        yield fd
    finally:
        os.close(fd)


def _check_chain(result: Verification, previous: Path, expected: Optional[str], keys: dict) -> None:
    if expected is None:
        result.add("chain: this packet names no previous packet")
        return
    if not previous.is_dir():
        result.add(f"chain: {shown(str(previous))} is not a folder")
        return
    inner = verify_packet(previous, **keys)
    if inner.manifest_sha256 is not None and inner.manifest_sha256 != expected:
        result.add(f"chain: {shown(str(previous / MANIFEST))} is not the previous packet this one names "
                   f"(expected SHA-256 {expected[:16]}…)")
        return
    for problem in inner.problems:
        result.add(f"previous packet: {problem}")


def verify_packet(directory: Path, *, public_key=None, kms_key: Optional[str] = None,
                  previous: Optional[Path] = None, kms_client=None) -> Verification:
    """Signature, then every file, then the chain to `previous` (itself verified with the same key).
    Problems are one line each; a missing DIR (the user's own argument) is a UserError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"DIR: {directory} is not a folder")
    result = Verification()
    keys = {"public_key": public_key, "kms_key": kms_key, "kms_client": kms_client}
    with _folder(directory) as root_fd:
        manifest = _signed_manifest(root_fd, result, keys)
        if manifest is not None:
            _check_files(root_fd, manifest, result)
    if manifest is not None and previous is not None:
        _check_chain(result, Path(previous), manifest.previous_manifest_sha256, keys)
    if result.omitted:
        result.problems.append(f"… and {result.omitted} more problems not listed")
    return result
