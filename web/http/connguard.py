"""How long each connection state may last without progress, and how many connections one client may hold.

A connection is always in one state, and each state has a bound
(the options headtimeout, bodytimeout, idletimeout, sendtimeout):

- reading a head: the whole head must arrive within `head` seconds of its
  first byte (of the connection, for the first one): nginx's
  client_header_timeout, so a head sent a byte at a time cannot last;
- reading a body: `body` seconds without a byte received (nginx's
  client_body_timeout); on a connection aiohttp serves, this bound also
  covers a handler that has not yet started its answer;
- idle between requests: `idle` seconds (nginx's keepalive_timeout);
- writing an answer the client does not read: `send` seconds without the
  write buffer draining (nginx's send_timeout).

When a bound passes, the connection is aborted (not closed: a close waits
for the unread answer to drain, which a client that does not read never
lets happen). Bytes of an answer the kernel takes count as progress. The
lane (web/http/fastlane.py) knows its state exactly; `Watched` follows a
connection handed over to aiohttp from the bytes it sees go in and out, so
there a connection idle after an answer ends after min(idle, send), and
aiohttp's own keep-alive timer is set to `idle`.

Open connections are counted per client address (`per_address`, 0: no
cap): the peer's address, or for a trusted proxy the address it forwards
(X-Forwarded-For / X-Real-IP of the first request). A trusted proxy's
connection that names no client is not counted: the proxy is ours.
"""

import asyncio
import logging
from collections import Counter
from typing import Callable, NamedTuple

log = logging.getLogger("web.connguard")
HEAD_END = b"\r\n\r\n"


class Limits(NamedTuple):
    head: float = 10.0  # Go vspd: 5 s for head and body together; nginx: 60 s
    body: float = 30.0  # nginx: 60 s between reads; a wallet sends its 1-3 KB body at once
    idle: float = 75.0  # nginx's keepalive_timeout, and the lane's before these options
    send: float = 60.0  # nginx's send_timeout, Go vspd's WriteTimeout
    per_address: int = 100  # open connections per client address; 0: no cap


class Deadline:
    """One timer per connection: `expire` runs once the state set last has lasted its bound.

    Moving the deadline later costs no timer (the one scheduled re-arms
    itself when it fires early), so progress on every segment stays cheap.
    """

    def __init__(self, expire: Callable[[str], None]):
        self._loop = asyncio.get_running_loop()
        self._expire = expire
        self._at = 0.0
        self._state = ""
        self._timer: asyncio.TimerHandle | None = None

    @property
    def state(self) -> str:
        return self._state

    def set(self, state: str, seconds: float) -> None:
        """From now on the connection is in `state`, which must progress within `seconds`."""
        self._state = state
        self._at = self._loop.time() + seconds
        if self._timer is None or self._timer.when() > self._at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(self._at, self._fire)

    def clear(self, state: str = "") -> None:
        """No bound for now (a look-up of ours is under way)."""
        self._state, self._at = state, 0.0

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if not self._at:
            return
        if self._loop.time() < self._at:
            self._timer = self._loop.call_at(self._at, self._fire)
            return
        self._at = 0.0
        self._expire(self._state)


class ClientCount:
    """Open connections per client address, capped."""

    def __init__(self, cap: int):
        self.cap = cap
        self.open: Counter[str] = Counter()

    def add(self, address: str) -> bool:
        """Count one more connection of `address`; False (not counted) when it has its cap already."""
        if self.cap and self.open[address] >= self.cap:
            return False
        self.open[address] += 1
        return True

    def remove(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class _WatchedTransport:
    """The transport as aiohttp sees it: every write counts as progress of the answer."""

    @property
    def _sendfile_compatible(self):
        """asyncio's loop.sendfile asks this first; aiohttp answers NotImplementedError by writing the
        file through write(), where its progress is seen."""
        raise NotImplementedError("sendfile bypasses the watch on writes")

    def __init__(self, transport: asyncio.Transport, watched: "Watched"):
        self._transport, self._watched = transport, watched

    def write(self, data) -> None:
        self._transport.write(data)
        self._watched.wrote()

    def writelines(self, chunks) -> None:
        self._transport.writelines(chunks)
        self._watched.wrote()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class Watched(asyncio.Protocol):
    """A connection aiohttp serves, with the bounds above applied from the bytes that go in and out.

    Bytes after an answer start a head (until a blank line), then a body
    (until aiohttp writes); writes are the answer, and the time after it
    (idle or not yet read); a paused writer is a client that does not read.
    """

    def __init__(self, inner: asyncio.Protocol, limits: Limits, on_lost: Callable[[], None], remote: str | None):
        self.inner, self.limits, self.on_lost, self.remote = inner, limits, on_lost, remote
        self.transport: asyncio.Transport | None = None
        self.deadline = Deadline(self._expire)
        self.tail = b""  # the last bytes of a head, in case its blank line is split
        self.paused = False
        self.unsent = 0  # bytes of answers not yet taken by the client, at the last write

    def start(self, transport: asyncio.Transport, buf: bytes) -> None:
        """Take over `transport` with the bytes the lane had not consumed."""
        self.transport = transport
        transport.set_protocol(self)
        self.deadline.set("head", self.limits.head)
        self.inner.connection_made(_WatchedTransport(transport, self))
        if buf:
            self.data_received(buf)

    def data_received(self, data: bytes) -> None:
        state = self.deadline.state
        if state in ("idle", "answer"):
            self.deadline.set("head", self.limits.head)
            state, self.tail = "head", b""
        if state == "head":
            seen = self.tail + data
            if seen.find(HEAD_END) >= 0:
                self.deadline.set("body", self.limits.body)
            else:
                self.tail = seen[-3:]
        elif state == "body":
            self.deadline.set("body", self.limits.body)
        self.inner.data_received(data)

    def wrote(self) -> None:
        self.unsent = self.transport.get_write_buffer_size()
        if not self.paused:
            self.deadline.set("answer", min(self.limits.idle, self.limits.send))

    def pause_writing(self) -> None:
        self.paused = True
        self.deadline.set("send", self.limits.send)
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.paused = False
        self.unsent = self.transport.get_write_buffer_size()
        self.deadline.set("answer", min(self.limits.idle, self.limits.send))
        self.inner.resume_writing()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline.cancel()
        self.on_lost()
        self.inner.connection_lost(exc)

    def _expire(self, state: str) -> None:
        if state in ("answer", "send"):
            unsent = self.transport.get_write_buffer_size()
            if 0 < unsent < self.unsent:  # the client read some: progress
                self.unsent = unsent
                self.deadline.set(state, self.limits.send)
                return
        log.debug("closing a connection from %s: %s made no progress within its bound", self.remote, state)
        self.transport.abort()
