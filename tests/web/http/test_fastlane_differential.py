"""The fast lane against aiohttp alone, on generated requests: the same answer, byte for byte.

Two listening sockets serve one application: one through the fast lane
(as vspd runs), one plain aiohttp. Each generated request, close to those
the lane answers (every API v3 path and the home page) but bent in the
ways clients and attackers bend them (odd methods, paths, versions and headers; many header fields, below,
at and past aiohttp's 128; heads near 8,190 bytes; several requests in one segment; a body a byte per
segment), goes to both on fresh connections; the status line, the headers that matter, the body and
whether the connection then closes must agree, and a split body must not cost the lane much more CPU
than it costs aiohttp.
"""

import asyncio
import re
import threading
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from web.api.wire import go_json

pytestmark = pytest.mark.usefixtures("still_clock")

HASHES = ["ab" * 32, "AB" * 32, "ab" * 31, "zz" * 32, ""]


def body_for(ticket_hash: str) -> bytes:
    return go_json({"tickethash": ticket_hash})


def usually(default: bytes, *others: bytes):
    """The lane's own form most of the time, a bent one otherwise."""
    return st.sampled_from([default] * 3 * len(others) + list(others))


LANE_REQUESTS = [(b"GET", b"/api/v3/vspinfo"), (b"GET", b"/"), (b"POST", b"/api/v3/ticketstatus"),
                 (b"POST", b"/api/v3/feeaddress"), (b"POST", b"/api/v3/payfee"), (b"POST", b"/api/v3/setvotechoices"),
                 (b"POST", b"/api/v3/setaltsignaddr")]


@st.composite
def requests(draw) -> tuple[bytes, bytes]:
    method, path = draw(st.sampled_from(LANE_REQUESTS))
    method = draw(usually(method, b"HEAD", b"get", b"PUT", b"POST" if method == b"GET" else b"GET"))
    path = draw(usually(path, b"/api/v3/vspinfo/", b"/api/v3/vspinfo?x=1", b"//", b"/API/v3/vspinfo", b"/%2F",
                        b"/api/v3/ticketstatus", b"/api/v3/payfee/", b"/api/v3/feeaddress", b"/"))
    version = draw(usually(b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"http/1.1"))
    sep = draw(usually(b" ", b"  ", b"\t"))
    headers = []
    host = draw(usually(b"Host: vsp.example.org", b"host: vsp.example.org", b"Host:", b"Host: a b",
                        b"Host: vsp.example.org:443", b""))
    if host:
        headers.append(host)
    extras = [b"Connection: close", b"Connection: keep-alive", b"Connection: upgrade", b"connection: Close",
              b"Accept: */*", b"User-Agent: wallet", b"X-Forwarded-Proto: https", b"X-Forwarded-For: 10.0.0.1",
              b"Origin: https://evil.example", b"Sec-Fetch-Site: same-origin", b"Expect: 100-continue",
              b"Content-Type: application/json", b"X-Junk: \x7f", b"X-Folded: a\r\n b", b"Bad Header: 1",
              b"X-Empty:", b"Transfer-Encoding: chunked", b"VSP-Client-Signature: " + b"A" * 88]
    if draw(usually(b"", b"extras")):
        headers += draw(st.lists(st.sampled_from(extras), min_size=1, max_size=3))
    body = rest = b""
    if method == b"POST" or draw(st.integers(0, 5)) == 0:
        body = draw(usually(body_for("ab" * 32), *(body_for(h) for h in HASHES[1:]), b"{}", b"[]", b"not json",
                            b'{"tickethash":1}'))
        declared = draw(usually(b"exact", b"none", b"twice", b"short", b"junk"))
        if declared == b"exact":
            headers.append(b"Content-Length: %d" % len(body))
        elif declared == b"twice":
            headers += [b"Content-Length: %d" % len(body)] * 2
        elif declared == b"short" and body:
            headers.append(b"Content-Length: %d" % (len(body) - 1))
            rest = body[-1:]  # the next "request"
            body = body[:-1]
        elif declared == b"none":
            rest, body = body, b""  # no length: the body is the next "request"
        elif declared == b"junk":
            headers.append(draw(st.sampled_from([b"Content-Length: +5", b"Content-Length: 1e2",
                                                 b"Content-Length: -1", b"Content-Length: 0x10"])))
    if b"Transfer-Encoding: chunked" in headers:  # a complete chunked body, so nobody waits for more
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    # many fields, below, at and past aiohttp's 128 (Host included), of a size that keeps the head under
    # 8,190 bytes; or one long field that brings the head near 8,190 bytes
    fields = draw(st.sampled_from([0] * 12 + [60, 127, 128, 129, 130, 200, 1400]))
    extra = max(0, fields - len(headers))
    headers += [b"X-F%04d: %s" % (i, b"v" * (40 if fields < 130 else 0)) for i in range(extra)]
    head_size = draw(st.sampled_from([0] * 12 + [8100, 8185, 8189, 8190, 8191, 8194, 8300]))
    line = method + sep + path + b" " + version + b"\r\n"
    if head_size:
        now = len(line) + sum(len(h) + 2 for h in headers)
        headers.append(b"X-Pad: " + b"p" * max(0, head_size - now - 9))
    head = line + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    split = draw(st.sampled_from([False] * 7 + [True])) and not rest  # the body a byte per segment
    copies = draw(st.sampled_from([1] * 6 + [2, 3])) if not (rest or split) else 1  # several in one segment
    return head + body, rest, copies, split


LONG_BODY = body_for("ab" * 32) + b" " * 1500  # JSON may end in spaces: 1,500 more segments
LARGE_HEAD = (b"POST /api/v3/ticketstatus HTTP/1.1\r\nHost: vsp.example.org\r\nContent-Length: %d\r\n"
              % len(LONG_BODY) + b"".join(b"X-F%04d: %s\r\n" % (i, b"v" * 50) for i in range(126)) + b"\r\n")


async def answer(port: int, request: bytes, rest: bytes, copies: int = 1, split: bool = False) -> tuple:
    """The answers to `copies` of `request` sent in one segment on a new connection: for each, the
    status line, chosen headers and body; then whether the connection closed.

    Bytes beyond the first request (`rest`) follow a moment later: in one segment with it, aiohttp
    refuses a valid request when garbage follows it, in two it answers it; the lane answers it either way.
    With `split`, the bytes after the head go a byte per segment.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        try:
            if split:
                at = request.find(b"\r\n\r\n") + 4
                writer.write(request[:at])
                for i in range(at, len(request)):
                    await writer.drain()
                    await asyncio.sleep(0.001)
                    writer.write(request[i:i + 1])
            else:
                writer.write(request * copies)
            await writer.drain()
        except ConnectionError:
            pass  # answered and closed before the rest was sent: the answer is what counts
        if rest:
            await asyncio.sleep(0.05)
            writer.write(rest)
            await writer.drain()
        answers = []
        for _ in range(copies):
            one = await _one_answer(reader, request)
            answers.append(one)
            if len(one) == 1:
                break
        try:
            closed = await asyncio.wait_for(reader.read(1), 0.15) == b""
        except asyncio.TimeoutError:
            closed = False
        except ConnectionError:
            closed = True
        return answers, closed
    finally:
        writer.close()


async def _one_answer(reader: asyncio.StreamReader, request: bytes) -> tuple:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    except (asyncio.IncompleteReadError, ConnectionError):
        return ("closed without an answer",)
    except asyncio.TimeoutError:
        return ("no answer",)
    lines = head.split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() in (b"content-type", b"content-length", b"vsp-server-signature", b"connection",
                            b"allow"):
            fields[name.lower()] = value.strip()
    m = re.search(rb"(?i)\r\ncontent-length: (\d+)\r\n", head)
    body = b""
    if m and not request.startswith(b"HEAD ") and b" 100 " not in lines[0]:
        body = await asyncio.wait_for(reader.readexactly(int(m[1])), 3)
    return lines[0], sorted(fields.items()), body


def server_cpu() -> float:
    """CPU seconds of the main thread so far: the servers' event loop (the clients run in another thread)."""
    return time.clock_gettime(time.pthread_getcpuclockid(threading.main_thread().ident))


async def test_lane_and_aiohttp_answer_alike(vsp):
    # aiohttp's server alone, on a second socket, over the same application and context
    plain = await asyncio.get_running_loop().create_server(vsp.site.lane.fallback, "127.0.0.1", 0)
    plain_port = plain.sockets[0].getsockname()[1]
    lane_port = int(vsp.url.rsplit(":", 1)[1])
    await vsp.ctx.stats.refresh()
    seen = {"lane answered": 0, "split": 0}

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(requests())
    @example((b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: vsp.example.org\r\n\r\n", body_for("ab" * 32), 1, False))  # CI
    @example((b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: vsp.example.org\r\n"  # 129 fields: aiohttp's 400
              + b"".join(b"X-F%04d: v\r\n" % i for i in range(128)) + b"\r\n", b"", 1, False))
    @example((LARGE_HEAD + LONG_BODY, b"", 1, True))  # 128 fields, 8 KB, its body a byte at a time
    def check(case: tuple[bytes, bytes, int, bool]) -> None:
        """Runs in a thread with its own loop; the servers keep running on the test's loop.

        A body sent a byte per segment must cost the lane no more than it costs aiohttp, give or
        take: a lane that parsed the head again for each segment costs far more after a large head.
        """
        request, rest, copies, split = case
        before = sum(vsp.site.lane.metrics.hot_requests.values())
        cpu = server_cpu()
        via_lane = asyncio.run(answer(lane_port, *case))
        lane_cpu = server_cpu() - cpu
        seen["lane answered"] += sum(vsp.site.lane.metrics.hot_requests.values()) > before
        vsp.ctx.unknown_tickets.clear()  # aiohttp alone has no cache: exccd is asked, and says the same
        cpu = server_cpu()
        via_aiohttp = asyncio.run(answer(plain_port, *case))
        aiohttp_cpu = server_cpu() - cpu
        assert via_lane == via_aiohttp, case
        if split:
            seen["split"] += 1
            print(f"split body: lane {lane_cpu * 1000:.1f} ms, aiohttp {aiohttp_cpu * 1000:.1f} ms of CPU")
            assert lane_cpu < 2 * aiohttp_cpu + 0.01, (lane_cpu, aiohttp_cpu, case)

    try:
        await asyncio.to_thread(check)
    finally:
        plain.close()
        await plain.wait_closed()
    assert seen["lane answered"] >= 20 and seen["split"] >= 5, seen  # the generator reaches the lane, and splits
