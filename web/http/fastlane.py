"""A connection-level fast lane for API v3 and the home page, ahead of aiohttp.

Every new connection starts here. While it sends API v3 requests
(GET /api/v3/vspinfo, POST /api/v3/feeaddress, ...) or GET /, in the plain
form clients send them, they are answered exactly as aiohttp would answer
them (status line, headers, body): by the same handlers (web/api/routes.py), from
the lane's own parse of the request. vspinfo, the home page and an
unknown ticket's status are at hand (the bytes stats.py and pages.py keep
ready, the unknown-ticket cache) and answered in the same callback; any
other request runs its handler in a task the lane owns, one at a time per
connection, and is answered when it ends (a handler is never cancelled
because its client left: what it writes, it finishes).

At the first request the lane does not recognise the connection, with
every byte not yet consumed, is handed to aiohttp's protocol for the rest
of its life: aiohttp parses and answers it as usual, and web/http/connguard.py
bounds how long each of its states may last, as it does in the lane. So this is
not an HTTP server: it recognises these requests exactly and hands over
everything else untouched (any other path, a query, HEAD, an odd or
repeated header, more than MAX_HEADERS fields, a missing Host, a chunked body, a body over MAX_BODY, a
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

from web.api import routes as api
from web.api.checks import ticket_hash_of
from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import SIGNATURE_HEADER, APIAnswer, APIError, ErrorCode, http_status
from web.http.connguard import ClientCount, Deadline, Limits, Watched
from web.http.metrics import METRICS_KEY, Metrics
from web.pages.site import HOME_PAGES_KEY, HomePages, site_url

log = logging.getLogger("web.fastlane")
MAX_HEAD = 8190  # longer heads go to aiohttp, which has its own limits
MAX_BODY = 16384  # a feeaddress or payfee request is 1-3 KB; larger ones take the usual way
MAX_HEADERS = 128  # header fields aiohttp takes (Host included); more go to aiohttp, which refuses them
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
    ready: Callable[["FastLane", LaneRequest], Answer | None]  # the answer if at hand, in this callback
    serve: Callable[["FastLane", LaneRequest], Awaitable[Answer | None]]  # else this, in a task; None: aiohttp's


def _signed(answer: APIAnswer) -> Answer:
    return Answer(answer.status, f"{SIGNATURE_HEADER}: {answer.signature}\r\n"
                  f"Content-Type: application/json; charset=utf-8\r\n".encode(), answer.body)


def _not_at_hand(lane: "FastLane", req: LaneRequest) -> None:
    return None


def _vspinfo(lane: "FastLane", req: LaneRequest) -> Answer | None:
    ready = lane.ctx.stats.ready_vspinfo()
    return _signed(APIAnswer(200, *ready)) if ready is not None else None


def _unknown_ticket_status(lane: "FastLane", req: LaneRequest) -> Answer | None:
    """Code 6 for a ticket the unknown-ticket cache holds: what api_ticketstatus answers, without a task."""
    ctx = lane.ctx
    try:
        ticket_hash = ticket_hash_of(req.body)
    except APIError:
        return None  # the handler words the error
    if ctx.unknown_tickets.holds(ticket_hash, ctx.store.ticket_inserts):
        return _signed(APIAnswer(http_status(ErrorCode.UNKNOWN_TICKET),
                                 *ctx.signer.default_error(ErrorCode.UNKNOWN_TICKET)))
    return None


def _api(path: str) -> Callable[["FastLane", LaneRequest], Awaitable[Answer]]:
    async def serve(lane: "FastLane", req: LaneRequest) -> Answer:
        request = APIRequest(req.body, req.client_signature, req.remote, req.forwarded_for, req.real_ip)
        return _signed(await api.serve(lane.ctx, path, request))
    return serve


def _home(lane: "FastLane", req: LaneRequest) -> Answer | None:
    ctx, pages = lane.ctx, lane.home_pages
    if ctx.stats.stats is None or pages.record.rows is None or req.host is None:
        return None
    url = site_url("http", req.remote, req.host, req.forwarded_proto, ctx.trusted_proxies)
    return Answer(200, b"Content-Type: text/html; charset=utf-8\r\n", pages.body(ctx, url))


async def _home_after_stats(lane: "FastLane", req: LaneRequest) -> Answer | None:
    if lane.ctx.stats.stats is None:
        await lane.ctx.stats.refresh()
    if lane.home_pages.record.rows is None:
        await lane.home_pages.record.refresh()
    return _home(lane, req)


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
    """The lane's connections and look-ups, and the aiohttp server (`fallback`) connections go to.

    `metrics` and `home_pages` are the app's own (FastLaneSite takes them from the runner's app), so the
    lane counts and serves exactly what aiohttp does.
    """

    def __init__(self, ctx: AppContext, fallback: web.Server, limits: Limits = Limits(),
                 metrics: Metrics | None = None, home_pages: HomePages | None = None):
        self.ctx, self.fallback, self.limits = ctx, fallback, limits
        self.metrics, self.home_pages = metrics, home_pages
        self.connections: set["LaneProtocol"] = set()
        self.tasks: set[asyncio.Task] = set()
        self.date = _Date()
        self.clients = ClientCount(limits.per_address)
        self.refused = 0  # connections closed at once: their address had its cap

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
    """One connection while the lane serves it.

    The bytes received wait in `buf` from `pos` on; a head is searched for
    from `scan` (where the last search stopped) and parsed once (`pending`
    keeps it while its body arrives), so what a request costs is linear in
    its bytes however they are split.
    """

    def __init__(self, lane: FastLane):
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.client: str | None = None  # the address counted against the cap (None: not counted)
        self.buf = bytearray()
        self.pos = 0  # where the next request starts in buf
        self.scan = 0  # where the search for its head's end resumes
        self.pending: Parsed | None = None  # the head of the request whose body is on its way
        self.write_paused = False  # the client does not read its answers
        self.read_paused = False
        self.stopped = False  # the lane is shutting down
        self.lookup: asyncio.Task | None = None
        self.deadline: Deadline | None = None
        self.unsent = 0  # bytes of answers not yet taken by the client, when the deadline was set

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, (tuple, list)) else None
        self.lane.connections.add(self)
        self.deadline = Deadline(self._expire)
        self.deadline.set("head", self.lane.limits.head)
        if self.remote is not None and self.remote not in self.lane.ctx.trusted_proxies:
            self._count(self.remote)

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()  # a look-up under way ends as it would have, and its answer is dropped
        self._uncount()

    def _count(self, client: str) -> None:
        if self.lane.clients.add(client):
            self.client = client
            return
        self.lane.refused += 1
        log.debug("refusing a connection from %s: it has %d open already", client, self.lane.clients.cap)
        self.transport.abort()

    def _uncount(self) -> None:
        if self.client is not None:
            self.lane.clients.remove(self.client)
            self.client = None

    def stop_reading(self) -> None:
        """At shutdown: no new request is read; the one under way may still be answered."""
        self.stopped = True
        if not self.transport.is_closing():
            self._flow()

    def _leave(self) -> None:
        self.lane.connections.discard(self)
        if self.deadline is not None:
            self.deadline.cancel()

    def _expire(self, state: str) -> None:
        if state == "send":
            unsent = self.transport.get_write_buffer_size()
            if unsent < self.unsent:  # the client read some: progress (or all: the next state's bound)
                self._rearm()
                return
        log.debug("closing a connection from %s: %s made no progress within its bound", self.remote, state)
        self.transport.abort()

    def _rearm(self) -> None:
        """The deadline of the state the connection is in now."""
        limits = self.lane.limits
        self.unsent = self.transport.get_write_buffer_size()
        if self.write_paused or self.unsent:  # answers the client has not read yet
            self.deadline.set("send", limits.send)
        elif self.lookup is not None:
            self.deadline.clear("look-up")
        elif self.pending is not None:
            self.deadline.set("body", limits.body)
        elif self.pos < len(self.buf):
            if self.deadline.state != "head":
                self.deadline.set("head", limits.head)
        else:
            self.deadline.set("idle", limits.idle)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()
        self._rearm()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()
        self._rearm()
        self._answer()

    def _flow(self) -> None:
        """Read only while the client reads its answers and sends no more than a bounded amount ahead."""
        stop = self.stopped or self.write_paused or (self.lookup is not None and
                                                     len(self.buf) - self.pos > MAX_WAITING)
        if stop != self.read_paused:
            self.read_paused = stop
            if stop:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.pending is not None and not self.write_paused:
            self.deadline.set("body", self.lane.limits.body)  # progress
        elif self.deadline.state == "idle":
            self.deadline.set("head", self.lane.limits.head)
        self.buf += data
        if self.lookup is None:
            self._answer()
        else:
            self._flow()

    def _answer(self) -> None:
        """Answer the complete requests in the buffer, in order, until one needs a look-up or aiohttp."""
        try:
            self._answer_all()
        finally:
            self._compact()

    def _answer_all(self) -> None:
        buf = self.buf
        while (self.pos < len(buf) and not self.write_paused and not self.stopped and self.lookup is None
               and not self.transport.is_closing()):
            parsed = self.pending
            if parsed is None:
                end = buf.find(b"\r\n\r\n", self.scan)
                if end < 0:
                    self.scan = max(self.pos, len(buf) - 3)
                    if len(buf) - self.pos > MAX_HEAD:
                        self._hand_over()
                    return
                head = bytes(buf[self.pos:end])
                fields = _fields(head) if end - self.pos <= MAX_HEAD else None
                if fields is not None and self.client is None and self.remote in self.lane.ctx.trusted_proxies:
                    forwarded = self.lane.ctx.client_address(self.remote, fields[1].get(b"x-forwarded-for", b"")
                                                             .decode(), fields[1].get(b"x-real-ip", b"").decode())
                    if forwarded != self.remote:
                        self._count(forwarded)
                        if self.transport.is_closing():
                            return
                parsed = self.pending = _parse(fields, head, self.remote) if fields is not None else None
                if parsed is None:
                    self._hand_over()
                    return
                if parsed.body_size:
                    self.deadline.set("body", self.lane.limits.body)
            start = self.pos + parsed.head_size
            if len(buf) < start + parsed.body_size:
                return  # the rest of the body is on its way
            self.pending = None
            if not parsed.keep_alive and len(buf) > start + parsed.body_size:
                self._hand_over()  # aiohttp refuses bytes sent with a last request ("Data after `Connection: close`")
                return
            if parsed.body_size:
                body = bytes(buf[start:start + parsed.body_size])
                parsed = parsed._replace(request=parsed.request._replace(body=body))
            answer = parsed.route.ready(self.lane, parsed.request)
            if answer is None:
                self.lookup = self.lane.start(self._look_up(parsed))
                self._flow()
                self._rearm()
                return
            self._send(parsed, answer)

    def _compact(self) -> None:
        """Drop the bytes answered: once per segment, not per request."""
        if self.pos:
            del self.buf[:self.pos]
            self.scan = max(0, self.scan - self.pos)
            self.pos = 0

    async def _look_up(self, parsed: Parsed) -> None:
        started = time.perf_counter()
        try:
            answer = await parsed.route.serve(self.lane, parsed.request)
        except Exception:
            log.exception("fast lane look-up of %s failed; aiohttp takes the request", parsed.path)
            answer = None
        if answer is not None:
            self.lane.metrics.observe_latency(parsed.path, time.perf_counter() - started)
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
        self.pos += parsed.head_size + parsed.body_size
        self.scan = self.pos
        if parsed.http11:
            tail = b"\r\n" if parsed.keep_alive else b"Connection: close\r\n\r\n"
        else:
            tail = b"Connection: keep-alive\r\n\r\n" if parsed.keep_alive else b"\r\n"
        self.transport.write(b"".join((
            b"HTTP/1.%d %d %s\r\n" % (parsed.http11, answer.status, _REASONS[answer.status]),
            answer.lines, b"Content-Length: %d\r\n" % len(answer.body), self.lane.date.lines(), tail, answer.body)))
        self.lane.metrics.hot_requests[parsed.path, answer.status] += 1
        if not parsed.keep_alive:
            self.transport.close()
            return
        if not self.write_paused:
            self.deadline.clear()
            self._rearm()  # the answer still going out, idle, or the head of the next request already here

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, starting with the bytes not consumed here."""
        transport, buf = self.transport, bytes(self.buf[self.pos:])
        self._leave()
        self.buf, self.pos, self.scan, self.pending = bytearray(), 0, 0, None
        if self.read_paused:  # aiohttp reads from here on, with flow control of its own
            self.read_paused = False
            transport.resume_reading()
        Watched(self.lane.fallback(), self.lane.limits, self._uncount, self.remote).start(transport, buf)


def _fields(head: bytes) -> tuple[list[bytes], dict[bytes, bytes]] | None:
    """The request line's parts and the header fields of a head in the strict form the lane takes; else None.

    More than MAX_HEADERS fields go to aiohttp, which refuses them ("Too many headers received").
    """
    bare = head.replace(b"\r\n", b"")
    if b"\r" in bare or b"\n" in bare:
        return None
    lines = head.split(b"\r\n", MAX_HEADERS + 1)
    if len(lines) > MAX_HEADERS + 1:
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
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
    return parts, headers


def _parse(fields: tuple[list[bytes], dict[bytes, bytes]], head: bytes, remote: str | None) -> Parsed | None:
    """The request, if it is one of the lane's; else None."""
    parts, headers = fields
    route = ROUTES.get(parts[1])
    if route is None or parts[0] != route.method:
        return None
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
                  LaneRequest(host.decode() if host is not None else None, remote,
                              proto.decode() if proto is not None else None,
                              headers.get(b"x-forwarded-for", b"").decode(), headers.get(b"x-real-ip", b"").decode(),
                              headers.get(b"vsp-client-signature", b"").decode(), b""))


class FastLaneSite:
    """The listening socket: its connections start in the lane, aiohttp's server behind it."""

    def __init__(self, ctx: AppContext, runner: web.AppRunner, host: str | None, port: int,
                 limits: Limits = Limits()):
        self.lane = FastLane(ctx, runner.server, limits, runner.app[METRICS_KEY], runner.app[HOME_PAGES_KEY])
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
