"""One frontend per data folder, and no key rotation or restore under a running one.

A running frontend holds an exclusive flock on {datadir}/vspd.lock, and so
do the vspadmin commands that replace the database or its key for as long
as they run: whichever comes second refuses, naming the holder. The kernel
drops the lock when the process ends, even by kill -9, so a crash never
leaves a stale lock behind.
"""

import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds the lock."""


def lock_path(datadir: Path) -> Path:
    return datadir / "vspd.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, who = text.partition(" ")
    return f"{who or 'another process'} (pid {pid or 'unknown'})"


class RunLock:
    """Held for the life of its owner; released by release() or by the process ending."""

    def __init__(self, datadir: Path, owner: str):
        self.path = lock_path(datadir)
        self.owner = owner
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AlreadyRunning(f"{holder} is using {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.owner}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
