"""Ports for the simnet's children: outside the kernel's ephemeral range, each handed out once.

A port found free by binding port 0 comes from the ephemeral range, where any
outgoing connection may take it before the child binds it (CI: exccd died with
"bind: address already in use"). Ports here come from below that range, from a
random starting point (so concurrent runs rarely meet), never twice in a
process, and only if a bind without SO_REUSEADDR succeeds. Should a child
still find its port taken, its owner starts it again on fresh ports
(`start_with_fresh_ports`), a bounded number of times.
"""

import random
import re
import socket
import threading
from pathlib import Path
from typing import Awaitable, Callable

from .children import Child, ChildError

HOST = "127.0.0.1"
EPHEMERAL_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL = (32768, 60999)
PREFERRED_LOW = 20000  # the pool is [20000, ephemeral start): above the usual fixed service ports
MIN_POOL = 1000
START_TRIES = 3
# exccd and exccwallet: "Can't listen on ...: bind: address already in use", "no usable rpc listen addresses";
# the Go vspd: "listen tcp ...: bind: address already in use"; this vspd: "cannot listen on ..."
PORT_TAKEN = re.compile(r"address already in use|no usable rpc listen addresses|cannot listen on", re.IGNORECASE)


def ephemeral_range(path: Path = EPHEMERAL_FILE) -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (inclusive); Linux's default if unreadable."""
    try:
        lo, hi = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return (lo, hi) if 0 < lo <= hi <= 65535 else DEFAULT_EPHEMERAL


def pool_outside(ephemeral: tuple[int, int]) -> range:
    """Ports the kernel never hands to an outgoing connection: below the range if there is room, else above."""
    lo, hi = ephemeral
    for pool in (range(PREFERRED_LOW, lo), range(1024, lo), range(hi + 1, 65536)):
        if len(pool) >= MIN_POOL:
            return pool
    raise RuntimeError(f"no room for ports outside the ephemeral range {lo}-{hi}")


def is_free(port: int, host: str = HOST) -> bool:
    """Bindable now, without SO_REUSEADDR (so a port in TIME_WAIT or listened on by anyone counts as taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Walks its pool once from a random offset: a port is returned at most once per allocator."""

    def __init__(self, pool: range | None = None, offset: int | None = None, host: str = HOST):
        self.pool = pool if pool is not None else pool_outside(ephemeral_range())
        self.next = offset if offset is not None else random.randrange(len(self.pool))
        self.host = host
        self.given: set[int] = set()
        self._lock = threading.Lock()

    def peek(self) -> int:
        """The next port it will consider (for tests)."""
        return self.pool[self.next % len(self.pool)]

    def take(self) -> int:
        with self._lock:
            for _ in range(len(self.pool)):
                port = self.pool[self.next % len(self.pool)]
                self.next += 1
                if port not in self.given and is_free(port, self.host):
                    self.given.add(port)
                    return port
        raise RuntimeError(f"no free port left in {self.pool.start}-{self.pool.stop - 1}")


_allocator: PortAllocator | None = None
_allocator_lock = threading.Lock()


def allocator() -> PortAllocator:
    global _allocator
    with _allocator_lock:
        if _allocator is None:
            _allocator = PortAllocator()
        return _allocator


def free_port() -> int:
    """A port for a child to listen on: free now, outside the ephemeral range, not handed out before."""
    return allocator().take()


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_since(path: Path, mark: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def port_was_taken(child: Child | None, log_path: Path, mark: int) -> bool:
    """The child exited, and what it logged since `mark` says a port of its was in use."""
    exited = child is not None and child.proc is not None and child.proc.returncode is not None
    return exited and bool(PORT_TAKEN.search(log_since(log_path, mark)))


async def start_with_fresh_ports(start: Callable[[], Awaitable[None]], child: Callable[[], Child | None],
                                 log_path: Path, repick: Callable[[], Awaitable[bool]],
                                 tries: int = START_TRIES) -> None:
    """`start()`; if it fails because a port was taken, `repick()` (False: its ports may not move) and again."""
    for attempt in range(1, tries + 1):
        mark = log_size(log_path)
        try:
            await start()
            return
        except ChildError:
            if attempt == tries or not port_was_taken(child(), log_path, mark) or not await repick():
                raise
