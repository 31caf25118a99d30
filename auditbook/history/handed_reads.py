"""Reads a packet build makes once and hands to all its kernels (history.shared_reads shares a read
within one kernel; this shares it across them).

Every criterion kernel of a build needs the last run's findings (at 1,000 accounts ~86,000 of them:
two seconds to read from the store), and each read them itself, all at once, at the start. The build
now reads them once, in a thread, while its kernels start, and writes them to a file that only this
user can open (a folder of its own, 0700, in the build's partial folder — removed with it if the build
dies, by the next build — and removed before the manifest is made). The file is created and locked (flock,
exclusive) before any kernel starts; a kernel that needs a handed value takes a shared lock on it,
which waits until the build has written it, and loads it (marshal: the values are plain lists, dicts,
text and numbers). A value the file does not hold, an empty or unreadable file (the build's read
failed, or it died), a kernel outside a build: the kernel reads the store itself, as before — a
handoff never changes a value, only who reads it."""
from __future__ import annotations

import fcntl
import hashlib
import marshal
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Optional

ENV = "AUDITBOOK_HANDED_READS"  # the file's path, in the environment of a build's kernels
KINDS = frozenset({"findings_at_run"})  # the reads (first element of a shared_reads key) a build hands
MAX_BYTES = 2 << 30  # ~37 MB at 1,000 accounts

_LOADED: Optional[dict] = None  # this kernel's handed values, once loaded


class Handoff:
    """The build's side: a locked, empty file its kernels will wait on until write() or release()."""

    def __init__(self, parent: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=".handed-reads-", dir=parent))
        self.path = self.folder / "reads"
        self._fd: Optional[int] = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.error: Optional[str] = None

    def fill(self, read: Callable[[], dict]) -> None:
        """Write the values read() returns ({key: value}, keys of KINDS), then let the kernels in. If
        that fails, they are let in to an empty file and read the store themselves (each value is the
        same either way); `error` says why, for the build to report."""
        try:
            data = marshal.dumps({_file_key(key): value for key, value in read().items()})
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except Exception as exc:  # noqa: BLE001 — a value, reported by the build: the kernels read themselves
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            os.ftruncate(self._fd, 0)
        finally:
            self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases its lock
            self._fd = None

    def remove(self) -> None:
        self.release()
        shutil.rmtree(self.folder, ignore_errors=True)


def handed(key: tuple) -> tuple[bool, object]:
    """(True, the value) when this build handed a value for `key`, else (False, None). Only a packet
    kernel asks (history.shared_reads, where reads are shared by the process)."""
    if not key or key[0] not in KINDS:
        return False, None
    values = _loaded()
    found = _file_key(key)
    if found in values:
        return True, values.pop(found)  # shared_reads keeps it from now on
    return False, None


def _file_key(key: tuple) -> tuple:
    """A key as the file holds it: the store named by a SHA-256 of its URL, which may hold a password
    (shared_reads keys name a store with its credentials: two stores differing only by those are two)."""
    return (key[0], hashlib.sha256(str(key[1]).encode()).hexdigest(), *key[2:])


def _loaded() -> dict:
    global _LOADED
    if _LOADED is None:
        _LOADED = _load(os.environ.get(ENV))
    return _LOADED


def _load(path: Optional[str]) -> dict:
    """The handed values in `path` ({} when there is none, or nothing usable in it), after waiting for
    the build to finish writing them."""
    if not path:
        return {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return {}  # not a file this user's build wrote
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while the build writes
        size = os.fstat(fd).st_size  # as written
        if size > MAX_BYTES:
            return {}
        chunks, total = [], 0
        while total < size and (chunk := os.read(fd, min(1 << 20, size - total))):
            chunks.append(chunk)
            total += len(chunk)
        values = marshal.loads(b"".join(chunks))
    except (OSError, ValueError, EOFError, TypeError, MemoryError):  # MemoryError: a crafted size
        return {}
    finally:
        os.close(fd)
    return values if isinstance(values, dict) else {}
