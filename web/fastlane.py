"""A connection-level fast lane for the three hottest requests, ahead of aiohttp.

Every new connection starts here. While it sends GET /api/v3/vspinfo,
GET / or POST /api/v3/ticketstatus, in the plain form clients send them,
they are answered exactly as aiohttp would answer them (status line,
headers, body): vspinfo and the home page from the bytes stats.py and
pages.py keep ready, ticketstatus from the unknown-ticket cache or, for a
ticket of ours signed as vspAuth asks, from one read of the database on
this thread (vspd/store/db.py) and api_ticketstatus's own answer. An answer
not at hand yet is first looked up (the stats, exccd's word on a ticket we
do not have, a read SQLite made wait) in a task the lane owns.

At the first request the lane does not recognise, or cannot answer, the
connection, with every byte not yet consumed, is handed to aiohttp's
protocol for the rest of its life: aiohttp parses, answers and times it out
as usual. So this is not an HTTP server: it recognises three requests
exactly and hands over everything else untouched (any other path, a query,
HEAD, an odd or repeated header, a missing Host, a chunked body, a POST
with Origin or Sec-Fetch-Site (csrf.py's to judge), a ticketstatus that is
not ours or not signed right, ...).
Answers go out in request order.
"""

import asyncio
import logging
import time
from email.utils import formatdate
from typing import Awaitable, Callable, NamedTuple

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from .api_ticketstatus import status_body
from .context import AppContext
from .pages import site_url
from .ticketchecks import learn_unknown, signed_by, ticket_hash_of
from .wire import SIGNATURE_HEADER, APIError, ErrorCode, http_status

log = logging.getLogger("web.fastlane")
MAX_HEAD = 8190  # longer heads go to aiohttp, which has its own limits
MAX_BODY = 4096  # a ticketstatus request is ~80 bytes; larger ones take the usual way
IDLE_TIMEOUT = 75.0  # aiohttp's keep-alive timeout
MAX_WAITING = 65536  # bytes a client may send ahead while its request is looked up; then we stop reading
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIELD_VALUE = bytes(range(0x20, 0x7F)) + b"\t"  # visible ASCII, space, tab: anything else goes to aiohttp
_NEVER = (b"transfer-encoding", b"expect", b"upgrade")  # aiohttp's to judge
_CSRF = (b"origin", b"sec-fetch-site")  # on a POST, csrf.py's to judge
_REASONS = {200: b"OK", 400: b"Bad Request"}


class LaneRequest(NamedTuple):
    host: str | None
    remote: str | None
    forwarded_proto: str | None
    client_signature: str | None
    body: bytes


class Answer(NamedTuple):
    status: int
    lines: bytes  # the header lines aiohttp writes before Content-Length
    body: bytes


class Route(NamedTuple):
    method: bytes
    answer: Callable[[AppContext, LaneRequest], Answer | None]  # None: not at hand
    fill: Callable[[AppContext, LaneRequest], Awaitable[None]]  # looks it up; the answer is asked once more


def _signed_json(status: int, body: bytes, signature: str) -> Answer:
    return Answer(status, f"{SIGNATURE_HEADER}: {signature}\r\nContent-Type: application/json; charset=utf-8\r\n"
                  .encode(), body)


def _vspinfo(ctx: AppContext, req: LaneRequest) -> Answer | None:
    ready = ctx.stats.ready_vspinfo()
    return _signed_json(200, *ready) if ready is not None else None


def _home(ctx: AppContext, req: LaneRequest) -> Answer | None:
    if ctx.stats.stats is None or req.host is None:
        return None
    url = site_url("http", req.remote, req.host, req.forwarded_proto, ctx.trusted_proxies)
    return Answer(200, b"Content-Type: text/html; charset=utf-8\r\n", ctx.home_pages.body(ctx, url))


async def _first_stats(ctx: AppContext, req: LaneRequest) -> None:
    if ctx.stats.stats is None:
        await ctx.stats.refresh()


def _ticket_status(ctx: AppContext, req: LaneRequest) -> Answer | None:
    """Code 6 for a ticket nobody knows, or the status of a ticket of ours that its owner signed for."""
    try:
        ticket_hash = ticket_hash_of(req.body)
    except APIError:
        return None  # aiohttp words the error
    if ctx.unknown_tickets.holds(ticket_hash, ctx.store.ticket_inserts):
        return _signed_json(http_status(ErrorCode.UNKNOWN_TICKET), *ctx.signer.default_error(ErrorCode.UNKNOWN_TICKET))
    done, ticket, alt = ctx.store.ticket_and_alt_sign_now(ticket_hash)
    if not done or ticket is None or not req.client_signature or not signed_by(
            ctx, ticket.commitment_address, alt, req.client_signature, req.body):
        return None
    body = status_body(ctx, ticket, alt, req.body)
    return _signed_json(200, body, ctx.signer.sign(body))


async def _learn_unknown(ctx: AppContext, req: LaneRequest) -> None:
    await learn_unknown(ctx, req.body)


ROUTES: dict[bytes, Route] = {
    b"/api/v3/vspinfo": Route(b"GET", _vspinfo, _first_stats),
    b"/": Route(b"GET", _home, _first_stats),
    b"/api/v3/ticketstatus": Route(b"POST", _ticket_status, _learn_unknown),
}


class Parsed(NamedTuple):
    route: Route
    path: str
    http11: bool
    keep_alive: bool
    head_size: int  # with its blank line
    body_size: int
    request: LaneRequest


class _Date:
    """The Date and Server header lines, formatted once a second."""

    def __init__(self):
        self._second, self._lines = -1, b""

    def lines(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._lines = f"Date: {formatdate(now, usegmt=True)}\r\nServer: {SERVER_SOFTWARE}\r\n".encode()
        return self._lines


class FastLane:
    """The lane's connections and look-ups, and the aiohttp server (`fallback`) connections go to."""

    def __init__(self, ctx: AppContext, fallback: web.Server):
        self.ctx, self.fallback = ctx, fallback
        self.connections: set["LaneProtocol"] = set()
        self.tasks: set[asyncio.Task] = set()
        self.date = _Date()

    def protocol(self) -> "LaneProtocol":
        return LaneProtocol(self)

    def start(self, coro: Awaitable[None]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def close(self) -> None:
        """Close the connections still in the lane, and end their look-ups."""
        for conn in list(self.connections):
            conn.transport.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class LaneProtocol(asyncio.Protocol):
    def __init__(self, lane: FastLane):
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.buf = b""
        self.write_paused = False  # the client does not read its answers
        self.read_paused = False
        self.lookup: asyncio.Task | None = None
        self.last_active = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, (tuple, list)) else None
        self.lane.connections.add(self)
        loop = asyncio.get_running_loop()
        self.last_active = loop.time()
        self.idle_timer = loop.call_later(IDLE_TIMEOUT, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        if self.lookup is not None:
            self.lookup.cancel()

    def _leave(self) -> None:
        self.lane.connections.discard(self)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _idle(self) -> None:
        loop = asyncio.get_running_loop()
        left = self.last_active + IDLE_TIMEOUT - loop.time()
        if left <= 0:
            self.transport.close()
        else:
            self.idle_timer = loop.call_later(left, self._idle)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()
        self._answer()

    def _flow(self) -> None:
        """Read only while the client reads its answers and sends no more than a bounded amount ahead."""
        stop = self.write_paused or (self.lookup is not None and len(self.buf) > MAX_WAITING)
        if stop != self.read_paused:
            self.read_paused = stop
            if stop:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.lookup is None:
            self._answer()
        else:
            self._flow()

    def _answer(self) -> None:
        """Answer the complete requests in the buffer, in order, until one needs a look-up or aiohttp."""
        while self.buf and not self.write_paused and self.lookup is None and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._hand_over()
                return
            parsed = self._parse(self.buf[:end]) if end <= MAX_HEAD else None
            if parsed is None:
                self._hand_over()
                return
            if len(self.buf) < parsed.head_size + parsed.body_size:
                return  # the rest of the body is on its way
            if parsed.body_size:
                parsed = parsed._replace(request=parsed.request._replace(
                    body=self.buf[parsed.head_size:parsed.head_size + parsed.body_size]))
            answer = parsed.route.answer(self.lane.ctx, parsed.request)
            if answer is None:
                self.lookup = self.lane.start(self._look_up(parsed))
                self._flow()
                return
            self._send(parsed, answer)

    async def _look_up(self, parsed: Parsed) -> None:
        try:
            await parsed.route.fill(self.lane.ctx, parsed.request)
            answer = parsed.route.answer(self.lane.ctx, parsed.request)
        except Exception:
            log.exception("fast lane look-up of %s failed; aiohttp takes the request", parsed.path)
            answer = None
        self.lookup = None
        if self.transport.is_closing():
            return
        self._flow()
        if answer is None:
            self._hand_over()
            return
        self._send(parsed, answer)
        self._answer()

    def _send(self, parsed: Parsed, answer: Answer) -> None:
        self.buf = self.buf[parsed.head_size + parsed.body_size:]
        self.last_active = asyncio.get_running_loop().time()
        if parsed.http11:
            tail = b"\r\n" if parsed.keep_alive else b"Connection: close\r\n\r\n"
        else:
            tail = b"Connection: keep-alive\r\n\r\n" if parsed.keep_alive else b"\r\n"
        self.transport.write(b"".join((
            b"HTTP/1.%d %d %s\r\n" % (parsed.http11, answer.status, _REASONS[answer.status]),
            answer.lines, b"Content-Length: %d\r\n" % len(answer.body), self.lane.date.lines(), tail, answer.body)))
        self.lane.ctx.metrics.hot_requests[parsed.path, answer.status] += 1
        if not parsed.keep_alive:
            self.transport.close()

    def _parse(self, head: bytes) -> Parsed | None:
        """The request, if it is one of the lane's in the strict form; else None."""
        bare = head.replace(b"\r\n", b"")
        if b"\r" in bare or b"\n" in bare:
            return None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            return None
        route = ROUTES.get(parts[1])
        if route is None or parts[0] != route.method:
            return None
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            value = value.strip(b" \t")
            name = name.lower()
            if (not colon or not name or name.translate(None, _TOKEN) or value.translate(None, _FIELD_VALUE)
                    or name in headers):
                return None
            headers[name] = value
        if any(h in headers for h in _NEVER) or (route.method == b"POST" and any(h in headers for h in _CSRF)):
            return None
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or len(length) > 4 or int(length) > MAX_BODY or (route.method == b"GET" and
                                                                                   int(length)):
            return None
        http11 = parts[2] == b"HTTP/1.1"
        connection = headers.get(b"connection", b"").lower()
        if connection not in (b"", b"close", b"keep-alive") or (http11 and b"host" not in headers):
            return None
        host, proto, signature = (headers.get(b"host"), headers.get(b"x-forwarded-proto"),
                                  headers.get(b"vsp-client-signature"))
        return Parsed(route, parts[1].decode(), http11,
                      connection != b"close" if http11 else connection == b"keep-alive",
                      len(head) + 4, int(length),
                      LaneRequest(host.decode() if host is not None else None, self.remote,
                                  proto.decode() if proto is not None else None,
                                  signature.decode() if signature is not None else None, b""))

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, starting with the bytes not consumed here."""
        transport, buf = self.transport, self.buf
        self._leave()
        self.buf = b""
        if self.read_paused:  # aiohttp reads from here on, with flow control of its own
            self.read_paused = False
            transport.resume_reading()
        protocol = self.lane.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if buf:
            protocol.data_received(buf)


class FastLaneSite:
    """The listening socket: its connections start in the lane, aiohttp's server behind it."""

    def __init__(self, ctx: AppContext, runner: web.BaseRunner, host: str | None, port: int):
        self.lane = FastLane(ctx, runner.server)
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen (OSError if we cannot); the bound port."""
        self.server = await asyncio.get_running_loop().create_server(self.lane.protocol, self.host, self.port,
                                                                     backlog=128)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close the lane's connections; the runner's cleanup closes aiohttp's."""
        if self.server is not None:
            self.server.close()
        await self.lane.close()
