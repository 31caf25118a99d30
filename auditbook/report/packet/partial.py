"""The hidden folder a packet is built in: `.NAME.partial-PID` beside `--out`, renamed into place when
complete, removed when the build fails or is interrupted.

While its build runs the folder is locked (flock on the folder, held by the build process only: its
workers and kernels do not inherit the descriptor). A build that died without cleaning up (`kill -9`,
power loss) leaves its folder unlocked, and the next build for the same `--out` removes it; a folder
still locked belongs to a live build and is left alone (a PID alone could have been reused)."""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

from auditbook.errors import UserError


def _open_locked(path: Path) -> Optional[int]:
    """A descriptor holding the lock on a folder, or None if another process holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale(out: Path) -> list[Path]:
    """Remove the partial folders of dead builds of `out`; the ones removed."""
    pattern = re.compile(re.escape(f".{out.name}.partial-") + r"[0-9]+")
    removed = []
    try:
        siblings = sorted(out.parent.iterdir())
    except OSError as exc:
        raise UserError(f"--out: cannot list the folder {out.parent}: {exc.strerror}")
    for entry in siblings:
        if not pattern.fullmatch(entry.name) or entry.is_symlink() or not entry.is_dir():
            continue
        fd = _open_locked(entry)
        if fd is None:
            continue  # a live build
        try:
            shutil.rmtree(entry)
        except OSError as exc:
            raise UserError(f"--out: cannot remove {entry}, left by an interrupted build: {exc.strerror}")
        finally:
            os.close(fd)
        removed.append(entry)
    return removed


class PartialFolder:
    def __init__(self, out: Path):
        self.out = out
        self.path = out.parent / f".{out.name}.partial-{os.getpid()}"
        self._lock: Optional[int] = None

    def create(self) -> Path:
        """Create and lock the folder; a UserError (nothing written) if --out's folder is not writable."""
        remove_stale(self.out)
        try:
            self.path.mkdir()
        except OSError as exc:
            raise UserError(f"--out: cannot create a folder in {self.out.parent}: {exc.strerror}")
        self._lock = _open_locked(self.path)
        return self.path

    def commit(self) -> None:
        """Rename into place (an empty --out folder is replaced)."""
        try:
            if self.out.is_dir() and not self.out.is_symlink():
                self.out.rmdir()  # empty: checked before the build
            os.replace(self.path, self.out)
        except OSError as exc:
            raise UserError(f"--out: cannot move the packet into place at {self.out}: {exc.strerror}")
        self._release()

    def discard(self) -> None:
        """Remove the folder. Called after every process that wrote into it has ended."""
        for attempt in range(3):
            try:
                shutil.rmtree(self.path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if attempt == 2:
                    warnings.warn(f"could not remove {self.path}: {exc.strerror}; the next build for "
                                  f"{self.out} removes it", stacklevel=2)
                time.sleep(0.2)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
