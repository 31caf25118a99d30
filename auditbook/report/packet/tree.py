"""Reading a packet folder that someone else handed us, without trusting it.

Every read is of a regular file only (a FIFO would block, a device could be endless), with a size
cap, through a file descriptor opened with O_NOFOLLOW relative to its folder's descriptor (a symlink
is never followed, so nothing outside the packet is read), and re-checked with fstat after opening (a
file swapped for something else between the check and the open is refused). Files are hashed in
chunks, never read whole. The walk never descends into a symlinked folder."""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from typing import Iterator, Optional

CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW

_KINDS = ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class Refused(Exception):
    """A file that is not read: why, in a few words."""


class NotRegular(Refused):
    """Not a regular file: what it is instead ("a symlink", "a FIFO", ...)."""


class TooLarge(Refused):
    """Larger than allowed."""


def kind(mode: int) -> str:
    return next((label for test, label in _KINDS if test(mode)), "not a regular file")


def open_regular(name: str, dir_fd: Optional[int], *, follow_symlinks: bool = False) -> tuple[int, os.stat_result]:
    """A descriptor on a regular file (and its fstat), checked before and after opening; Refused
    for anything else. Never blocks: a FIFO is refused before it is opened."""
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegular(kind(before.st_mode))
    flags = _OPEN_FLAGS if not follow_symlinks else _OPEN_FLAGS & ~os.O_NOFOLLOW
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a symlink after the check
            raise NotRegular("a symlink")
        raise
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise NotRegular("replaced while it was being read")
    return fd, after


def read_bounded(name: str, max_bytes: int, *, dir_fd: Optional[int] = None, follow_symlinks: bool = False) -> bytes:
    """A regular file's bytes, at most max_bytes (Refused beyond). OSError if it cannot be opened."""
    fd, info = open_regular(name, dir_fd, follow_symlinks=follow_symlinks)
    try:
        if info.st_size > max_bytes:
            raise TooLarge(f"larger than {max_bytes} bytes")
        data = b"".join(_blocks(fd, max_bytes))
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise TooLarge(f"larger than {max_bytes} bytes")
    return data


def _blocks(fd: int, limit: int) -> Iterator[bytes]:
    """What an open file holds, in chunks, stopping after limit + 1 bytes (so a file longer than
    expected is seen as such without reading all of it)."""
    size = 0
    while size <= limit:
        block = os.read(fd, min(CHUNK, limit + 1 - size))
        if not block:
            return
        size += len(block)
        yield block


def digest(fd: int, limit: int) -> tuple[str, int]:
    """SHA-256 and size of what an open file holds, reading at most limit + 1 bytes."""
    h, size = hashlib.sha256(), 0
    for block in _blocks(fd, limit):
        h.update(block)
        size += len(block)
    return h.hexdigest(), size


def entries(root_fd: int, descend, on_error) -> Iterator[tuple[str, str, os.stat_result, int]]:
    """Every entry under the folder open as root_fd, sorted per folder: (relative POSIX path, name,
    lstat, the descriptor of its folder). A folder is entered only when `descend(rel)` is true and it
    is a real folder (never a symlink). `on_error(rel, exc)` is told about what cannot be listed."""
    def _error(exc: OSError) -> None:
        on_error(exc.filename if isinstance(exc.filename, str) else "?", exc)

    for dirpath, dirnames, filenames, dir_fd in os.fwalk(".", dir_fd=root_fd, onerror=_error, follow_symlinks=False):
        base = os.path.relpath(dirpath, ".")
        keep = []
        for name in sorted(dirnames + filenames):
            rel = name if base == "." else f"{base}/{name}"
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                on_error(rel, exc)
                continue
            if stat.S_ISDIR(info.st_mode) and descend(rel):
                keep.append(name)
            yield rel, name, info, dir_fd
        dirnames[:] = keep
