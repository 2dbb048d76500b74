"""A connection-level fast lane for API v3 and the home page, ahead of aiohttp.

Every new connection starts here. While it sends API v3 requests
(GET /api/v3/vspinfo, POST /api/v3/feeaddress, ...) or GET /, in the plain
form clients send them, they are answered exactly as aiohttp would answer
them (status line, headers, body): by the same handlers (web/api.py), from
the lane's own parse of the request. vspinfo, the home page and an
unknown ticket's status are at hand (the bytes stats.py and pages.py keep
ready, the unknown-ticket cache) and answered in the same callback; any
other request runs its handler in a task the lane owns, one at a time per
connection, and is answered when it ends (a handler is never cancelled
because its client left: what it writes, it finishes).

At the first request the lane does not recognise the connection, with
every byte not yet consumed, is handed to aiohttp's protocol for the rest
of its life: aiohttp parses, answers and times it out as usual. So this is
not an HTTP server: it recognises these requests exactly and hands over
everything else untouched (any other path, a query, HEAD, an odd or
repeated header, a missing Host, a chunked body, a body over MAX_BODY, a
POST with Origin or Sec-Fetch-Site (csrf.py's to judge), ...).
Answers go out in request order.
"""

import asyncio
import logging
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Awaitable, Callable, NamedTuple

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from . import api
from .apirequest import APIRequest
from .context import AppContext
from .pages import site_url
from .ticketchecks import ticket_hash_of
from .wire import SIGNATURE_HEADER, APIAnswer, APIError, ErrorCode, http_status

log = logging.getLogger("web.fastlane")
MAX_HEAD = 8190  # longer heads go to aiohttp, which has its own limits
MAX_BODY = 16384  # a feeaddress or payfee request is 1-3 KB; larger ones take the usual way
IDLE_TIMEOUT = 75.0  # aiohttp's keep-alive timeout
MAX_WAITING = 65536  # bytes a client may send ahead while its request is looked up; then we stop reading
SHUTDOWN_GRACE = 10.0  # seconds handlers may take to finish at shutdown (aiohttp's shutdown_timeout)
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIELD_VALUE = bytes(range(0x20, 0x7F)) + b"\t"  # visible ASCII, space, tab: anything else goes to aiohttp
_NEVER = (b"transfer-encoding", b"expect", b"upgrade")  # aiohttp's to judge
_CSRF = (b"origin", b"sec-fetch-site")  # on a POST, csrf.py's to judge
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}  # as aiohttp words them


class LaneRequest(NamedTuple):
    host: str | None
    remote: str | None
    forwarded_proto: str | None
    forwarded_for: str
    real_ip: str
    client_signature: str
    body: bytes


class Answer(NamedTuple):
    status: int
    lines: bytes  # the header lines aiohttp writes before Content-Length
    body: bytes


class Route(NamedTuple):
    method: bytes
    ready: Callable[[AppContext, LaneRequest], Answer | None]  # the answer if at hand, in this callback
    serve: Callable[[AppContext, LaneRequest], Awaitable[Answer | None]]  # else this, in a task; None: aiohttp's


def _signed(answer: APIAnswer) -> Answer:
    return Answer(answer.status, f"{SIGNATURE_HEADER}: {answer.signature}\r\n"
                  f"Content-Type: application/json; charset=utf-8\r\n".encode(), answer.body)


def _not_at_hand(ctx: AppContext, req: LaneRequest) -> None:
    return None


def _vspinfo(ctx: AppContext, req: LaneRequest) -> Answer | None:
    ready = ctx.stats.ready_vspinfo()
    return _signed(APIAnswer(200, *ready)) if ready is not None else None


def _unknown_ticket_status(ctx: AppContext, req: LaneRequest) -> Answer | None:
    """Code 6 for a ticket the unknown-ticket cache holds: what api_ticketstatus answers, without a task."""
    try:
        ticket_hash = ticket_hash_of(req.body)
    except APIError:
        return None  # the handler words the error
    if ctx.unknown_tickets.holds(ticket_hash, ctx.store.ticket_inserts):
        return _signed(APIAnswer(http_status(ErrorCode.UNKNOWN_TICKET),
                                 *ctx.signer.default_error(ErrorCode.UNKNOWN_TICKET)))
    return None


def _api(path: str) -> Callable[[AppContext, LaneRequest], Awaitable[Answer]]:
    async def serve(ctx: AppContext, req: LaneRequest) -> Answer:
        request = APIRequest(req.body, req.client_signature, req.remote, req.forwarded_for, req.real_ip)
        return _signed(await api.serve(ctx, path, request))
    return serve


def _home(ctx: AppContext, req: LaneRequest) -> Answer | None:
    if ctx.stats.stats is None or ctx.record.rows is None or req.host is None:
        return None
    url = site_url("http", req.remote, req.host, req.forwarded_proto, ctx.trusted_proxies)
    return Answer(200, b"Content-Type: text/html; charset=utf-8\r\n", ctx.home_pages.body(ctx, url))


async def _home_after_stats(ctx: AppContext, req: LaneRequest) -> Answer | None:
    if ctx.stats.stats is None:
        await ctx.stats.refresh()
    if ctx.record.rows is None:
        await ctx.record.refresh()
    return _home(ctx, req)


_READY = {"/api/v3/vspinfo": _vspinfo, "/api/v3/ticketstatus": _unknown_ticket_status}
ROUTES: dict[bytes, Route] = {
    path.encode(): Route(method.encode(), _READY.get(path, _not_at_hand), _api(path))
    for path, (method, _) in api.ROUTES.items()}
ROUTES[b"/"] = Route(b"GET", _home, _home_after_stats)


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

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Read no more, give the look-ups under way `grace` seconds to end, cancel the rest, close."""
        for conn in self.connections:
            conn.stop_reading()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for conn in list(self.connections):
            conn.transport.close()


class LaneProtocol(asyncio.Protocol):
    def __init__(self, lane: FastLane):
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.buf = b""
        self.write_paused = False  # the client does not read its answers
        self.read_paused = False
        self.stopped = False  # the lane is shutting down
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
        self._leave()  # a look-up under way ends as it would have, and its answer is dropped

    def stop_reading(self) -> None:
        """At shutdown: no new request is read; the one under way may still be answered."""
        self.stopped = True
        if not self.transport.is_closing():
            self._flow()

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
        stop = self.stopped or self.write_paused or (self.lookup is not None and len(self.buf) > MAX_WAITING)
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
        while (self.buf and not self.write_paused and not self.stopped and self.lookup is None
               and not self.transport.is_closing()):
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
            answer = parsed.route.ready(self.lane.ctx, parsed.request)
            if answer is None:
                self.lookup = self.lane.start(self._look_up(parsed))
                self._flow()
                return
            self._send(parsed, answer)

    async def _look_up(self, parsed: Parsed) -> None:
        started = time.perf_counter()
        try:
            answer = await parsed.route.serve(self.lane.ctx, parsed.request)
        except Exception:
            log.exception("fast lane look-up of %s failed; aiohttp takes the request", parsed.path)
            answer = None
        if answer is not None:
            self.lane.ctx.metrics.observe_latency(parsed.path, time.perf_counter() - started)
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
        if not length.isdigit() or len(length) > 5 or int(length) > MAX_BODY or (route.method == b"GET" and
                                                                                   int(length)):
            return None
        http11 = parts[2] == b"HTTP/1.1"
        connection = headers.get(b"connection", b"").lower()
        if connection not in (b"", b"close", b"keep-alive") or (http11 and b"host" not in headers):
            return None
        host, proto = headers.get(b"host"), headers.get(b"x-forwarded-proto")
        return Parsed(route, parts[1].decode(), http11,
                      connection != b"close" if http11 else connection == b"keep-alive",
                      len(head) + 4, int(length),
                      LaneRequest(host.decode() if host is not None else None, self.remote,
                                  proto.decode() if proto is not None else None,
                                  headers.get(b"x-forwarded-for", b"").decode(), headers.get(b"x-real-ip", b"").decode(),
                                  headers.get(b"vsp-client-signature", b"").decode(), b""))

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
