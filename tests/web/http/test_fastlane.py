"""The fast lane answers exactly what aiohttp would, hands everything else over untouched, and keeps order."""

import asyncio
import base64
import re
import sqlite3
from types import SimpleNamespace

import jinja2
import pytest

from apiflows import fee_addr
from chainbuilders import Key, make_fee_tx
from vspd.chain.params import SIMNET
from vspd.chain.message import sign_message
from vspd.store.models import FEE_RECEIVED
from web.api import routes as api
from web.http import fastlane
from web.http.connguard import Limits
from web.pages.site import HomePages
from web.api.wire import go_json

pytestmark = pytest.mark.usefixtures("still_clock")

VSPINFO = b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: vsp.example.org\r\nUser-Agent: wallet\r\n\r\n"
HOME = b"GET / HTTP/1.1\r\nHost: vsp.example.org\r\nAccept: text/html\r\nSec-Fetch-Site: none\r\n\r\n"
TO_AIOHTTP = b"GET /api HTTP/1.1\r\nHost: vsp.example.org\r\n\r\n"  # not the lane's: the connection goes over


def status_post(ticket_hash: str, extra: bytes = b"") -> bytes:
    body = go_json({"tickethash": ticket_hash})
    return (b"POST /api/v3/ticketstatus HTTP/1.1\r\nHost: vsp.example.org\r\nContent-Type: application/json\r\n"
            b"VSP-Client-Signature: H" + b"A" * 87 + b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def signed_status_post(ticket_hash: str, key: bytes) -> bytes:
    """A ticketstatus request as a wallet sends it, signed with `key`."""
    body = go_json({"tickethash": ticket_hash})
    signature = base64.b64encode(sign_message(key, body))
    return (b"POST /api/v3/ticketstatus HTTP/1.1\r\nHost: vsp.example.org\r\nContent-Type: application/json\r\n"
            b"VSP-Client-Signature: " + signature + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


async def exchange(vsp, *chunks: bytes, answers: int = 1,
                   check_close: bool = False) -> tuple[list[tuple[bytes, bytes]], bool | None]:
    """Send `chunks` on a new connection; the first `answers` answers (head, body), and whether it then closed."""
    port = int(vsp.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        out = []
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
            bodyless = chunks[0].startswith(b"HEAD ") or b" 100 Continue" in head.split(b"\r\n")[0]
            body = await asyncio.wait_for(reader.readexactly(int(m[1])), 10) if m and not bodyless else b""
            out.append((re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", head), body))
        if not check_close:
            return out, None
        try:
            closed = await asyncio.wait_for(reader.read(1), 0.3) == b""
        except asyncio.TimeoutError:
            closed = False
        return out, closed
    finally:
        writer.close()


async def by_aiohttp(vsp, request: bytes, check_close: bool = False) -> tuple[tuple[bytes, bytes], bool | None]:
    """The same request, answered by aiohttp: it follows a request that hands the connection over."""
    answers, closed = await exchange(vsp, TO_AIOHTTP + request, answers=2, check_close=check_close)
    return answers[1], closed


def lane_count(vsp) -> int:
    return sum(vsp.site.lane.metrics.hot_requests.values())


async def test_lane_answers_are_aiohttps(vsp):
    unknown = "ab" * 32
    for request in (VSPINFO, HOME, VSPINFO.replace(b"HTTP/1.1", b"HTTP/1.0"),
                    HOME.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"Accept:", b"Connection: keep-alive\r\nAccept:"),
                    VSPINFO.replace(b"User-Agent: wallet", b"Connection: close"),
                    VSPINFO.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"User-Agent: wallet", b"Connection: close"),
                    status_post(unknown)):
        before = lane_count(vsp)
        lane, lane_closed = await exchange(vsp, request, check_close=True)
        assert lane_count(vsp) == before + 1, request
        vsp.ctx.unknown_tickets.clear()  # aiohttp answers without the cache: exccd is asked again
        assert (lane[0], lane_closed) == await by_aiohttp(vsp, request, check_close=True), request
    head, body = (await exchange(vsp, status_post(unknown)))[0][0]
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\nVSP-Server-Signature: ") and body == (
        b'{"code":6,"message":"unknown ticket"}')


async def test_answers_keep_request_order_across_the_hand_over(vsp):
    answers, closed = await exchange(vsp, VSPINFO + HOME + TO_AIOHTTP + VSPINFO, answers=4, check_close=True)
    assert [h.split(b"\r\n")[0] for h, _ in answers] == [b"HTTP/1.1 200 OK"] * 4
    assert [b"html" in h for h, _ in answers] == [False, True, True, False]
    assert b"/api/v3/payfee" in answers[2][1] and answers[3][1] == answers[0][1] and not closed


async def test_requests_in_pieces_are_answered(vsp):
    request = status_post("cd" * 32)
    answers, _ = await exchange(vsp, request[:10], request[10:70], request[70:-5], request[-5:])
    assert answers[0][1] == b'{"code":6,"message":"unknown ticket"}'


async def test_anything_unusual_goes_to_aiohttp(vsp):
    t = vsp.new_ticket()
    assert (await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)).status == 200
    unusual = {
        b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n": 200,
        b"GET /api/v3/vspinfo?x=1 HTTP/1.1\r\nHost: h\r\n\r\n": 200,
        b"GET / HTTP/1.1\r\n\r\n": 400,  # HTTP/1.1 needs a Host
        b"get / HTTP/1.1\r\nHost: h\r\n\r\n": None,
        b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n": None,
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n": None,
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\r\n\r\n": None,
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab": None,
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n": None,
        b"POST /api/v3/vspinfo HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n": 405,
        status_post("ab" * 32, b"Origin: https://evil.example\r\n"): 400,  # CSRF failure, csrf.py's answer
        status_post("ab" * 32, b"Expect: 100-continue\r\n"): 400,
        b"POST /api/v3/ticketstatus HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\n{}\n\r\n0\r\n\r\n": 400,
    }
    for request, status in unusual.items():
        before = lane_count(vsp)
        answers, _ = await exchange(vsp, request, answers=2 if b"Expect" in request else 1)
        assert lane_count(vsp) == before, request
        if status is not None:
            assert answers[-1][0].split(b" ")[1] == str(status).encode(), (request, answers)
    before = lane_count(vsp)
    answers, _ = await exchange(vsp, status_post(t.hash))  # a known ticket, checked in full: the signature is bad
    assert b'"code":10' in answers[0][1] and lane_count(vsp) == before + 1


async def test_answers_not_at_hand_are_looked_up_first(vsp):
    vsp.ctx.stats.stats = None  # as right after start
    before = lane_count(vsp)
    answers, _ = await exchange(vsp, VSPINFO)
    assert answers[0][0].startswith(b"HTTP/1.1 200 OK") and vsp.ctx.stats.stats is not None
    fresh = "ef" * 32
    asked = vsp.node.calls.count("getrawtransaction")
    for _ in range(3):
        answers, _ = await exchange(vsp, status_post(fresh))
        assert answers[0][1] == b'{"code":6,"message":"unknown ticket"}'
    assert vsp.node.calls.count("getrawtransaction") == asked + 1  # exccd asked once, then the cache
    assert lane_count(vsp) == before + 4


async def test_a_client_sending_ahead_of_a_look_up_is_held_back(vsp, monkeypatch):
    release = asyncio.Event()
    serve = api.serve

    async def slow_serve(ctx, path, request):
        await release.wait()
        return await serve(ctx, path, request)
    monkeypatch.setattr(api, "serve", slow_serve)
    ahead = VSPINFO * (2 * fastlane.MAX_WAITING // len(VSPINFO))
    port = int(vsp.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(status_post("ab" * 32) + ahead)
        await asyncio.sleep(0.3)
        conn = next(iter(vsp.site.lane.connections))
        assert conn.read_paused  # more than MAX_WAITING waits: reading stopped
        release.set()
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert first.startswith(b"HTTP/1.1 400 ")
        await asyncio.wait_for(reader.readexactly(37), 10)
        for _ in range(ahead.count(b"GET ")):  # then every vspinfo, in order
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 OK")
            await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head)[1]))
        assert not conn.read_paused
    finally:
        writer.close()


async def test_idle_connections_are_closed(vsp, monkeypatch):
    monkeypatch.setattr(vsp.site.lane, "limits", Limits(head=0.2))
    port = int(vsp.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(VSPINFO[:20])  # a request that never completes
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_closing_the_lane_lets_look_ups_end_then_cancels_the_rest_and_closes():
    lane = fastlane.FastLane(SimpleNamespace(), fallback=None)
    quick, stuck = lane.start(asyncio.sleep(0.2)), lane.start(asyncio.sleep(3600))
    events = []
    conn = fastlane.LaneProtocol(lane)
    conn.transport = SimpleNamespace(close=lambda: events.append("closed"), is_closing=lambda: False,
                                     pause_reading=lambda: events.append("reading paused"))
    lane.connections.add(conn)
    await lane.close(grace=1.0)
    assert quick.done() and not quick.cancelled() and stuck.cancelled() and not lane.tasks
    assert events == ["reading paused", "closed"] and conn.stopped


async def test_a_handler_whose_client_left_still_ends(vsp, monkeypatch):
    """aiohttp does not cancel a handler when its client goes; nor does the lane: what it writes, it finishes."""
    started, release, ended = asyncio.Event(), asyncio.Event(), []
    serve = api.serve

    async def slow_serve(ctx, path, request):
        started.set()
        await release.wait()
        answer = await serve(ctx, path, request)
        ended.append(answer.status)
        return answer
    monkeypatch.setattr(api, "serve", slow_serve)
    port = int(vsp.url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(status_post("ef" * 32))
    await asyncio.wait_for(started.wait(), 10)
    writer.close()
    await asyncio.sleep(0.1)
    release.set()
    for _ in range(100):
        if ended:
            break
        await asyncio.sleep(0.05)
    assert ended == [400]


async def test_lane_answers_are_counted_in_metrics(vsp):
    for _ in range(3):
        await exchange(vsp, VSPINFO)
    async with vsp.client.http.get(vsp.url + "/metrics") as r:
        body = await r.read()
    m = re.search(rb'vspd_http_requests_total\{endpoint="/api/v3/vspinfo",status="200"\} (\d+)', body)
    assert m and int(float(m[1])) >= 3


async def test_home_page_follows_its_inputs(vsp):
    async def lane_page(host=b"vsp.example.org") -> bytes:
        return (await exchange(vsp, HOME.replace(b"vsp.example.org", host)))[0][0][1]

    async def rendered(host=b"vsp.example.org") -> bytes:
        vsp.site.lane.home_pages._pages.clear()  # nothing kept: aiohttp renders afresh
        return (await by_aiohttp(vsp, HOME.replace(b"vsp.example.org", host)))[0][1]

    first = await lane_page()
    assert first == await lane_page() == await rendered()
    vsp.ctx.vspclosed, vsp.ctx.vspclosedmsg = True, "Back soon."
    closed = await lane_page()
    assert b"Back soon." in closed and closed == await rendered()
    vsp.ctx.vspclosed, vsp.ctx.vspclosedmsg = False, ""
    voter = SimpleNamespace(name="v1", healthy=True, problems=[])
    vsp.ctx.voters = [voter]
    assert b"online, synced, unlocked and voting" in await lane_page()
    voter.healthy, voter.problems = False, ["wallet locked"]
    page = await lane_page()
    assert b"wallet locked" in page and page == await rendered()
    vsp.ctx.voters = None
    vsp.chain.height += 5
    await vsp.ctx.stats.refresh()
    later = await lane_page()
    assert b'id="stat-height">205<' in later and later == await rendered()
    other = await lane_page(b"other.example.org")  # the site URL comes from the Host header
    assert b"http://other.example.org" in other and other == await rendered(b"other.example.org")


async def test_home_pages_render_once_per_change_and_are_bounded(vsp):
    renders = []
    env = jinja2.Environment(loader=jinja2.DictLoader({"home.html": "{{ count() }}{{ url }}"}))
    env.globals["count"] = lambda: renders.append(1) or ""
    pages = HomePages(env, vsp.site.lane.home_pages.record, max_urls=2)
    assert pages.body(vsp.ctx, "http://a") == pages.body(vsp.ctx, "http://a") == b"http://a"
    assert len(renders) == 1
    for host in "bcd":
        pages.body(vsp.ctx, f"http://{host}")
    pages.body(vsp.ctx, "http://a")  # pushed out by the newer URLs: rendered again
    assert len(renders) == 5
    vsp.ctx.vspclosed = True  # an input changed
    pages.body(vsp.ctx, "http://a")
    assert len(renders) == 6


async def test_own_ticket_status_is_answered_in_the_lane_and_follows_every_write(vsp, monkeypatch):
    monkeypatch.setattr(vsp.ctx, "clock", lambda: 1_800_000_000.0)  # one timestamp for the lane and aiohttp
    t = vsp.new_ticket()
    quote = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    request = signed_status_post(t.hash, t.commitment.secret)

    async def in_lane() -> bytes:
        before = lane_count(vsp)
        (answer,), closed = await exchange(vsp, request, check_close=True)
        assert lane_count(vsp) == before + 1 and not closed
        assert (answer, closed) == await by_aiohttp(vsp, request, check_close=True)
        assert answer[0].startswith(b"HTTP/1.1 200 OK\r\nVSP-Server-Signature: ")
        return answer[1]

    assert b'"feetxstatus":"none"' in await in_lane()
    # each write is seen by the very next request: every write forgets the rows kept
    fee = make_fee_tx(fee_addr(quote), quote.json["feeamount"])
    assert (await vsp.client.payfee(t.commitment.secret, t.hash, fee.serialize().hex(), t.voting.wif)).status == 200
    assert f'"feetxstatus":"{FEE_RECEIVED}","feetxhash":"{fee.txid()}"'.encode() in await in_lane()
    # the alternate sign address: in the answer at once, and its signature accepted in the lane too
    alt = Key(SIMNET)
    assert (await vsp.client.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex,
                                            str(alt.address))).status == 200
    assert f'"altsignaddress":"{alt.address}"'.encode() in await in_lane()
    request = signed_status_post(t.hash, alt.secret)
    assert f'"altsignaddress":"{alt.address}"'.encode() in await in_lane()
    # signed by neither: code 10, from the lane as from aiohttp
    request = signed_status_post(t.hash, Key(SIMNET).secret)
    before = lane_count(vsp)
    (answer,), _ = await exchange(vsp, request)
    assert lane_count(vsp) == before + 1 and answer[0].startswith(b"HTTP/1.1 400 ") and b'"code":10' in answer[1]
    assert answer == (await by_aiohttp(vsp, request))[0]


async def test_a_busy_database_sends_the_read_to_the_readers_thread(vsp, monkeypatch):
    t = vsp.new_ticket()
    await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    refused = []

    class Busy:
        def execute(self, sql, params):
            refused.append(sql)
            raise sqlite3.OperationalError("database is locked")
    monkeypatch.setattr(vsp.ctx.store, "_point", Busy())
    vsp.ctx.store._forget_hot_rows()
    before = lane_count(vsp)
    (answer,), _ = await exchange(vsp, signed_status_post(t.hash, t.commitment.secret))
    assert answer[0].startswith(b"HTTP/1.1 200 OK") and b'"feetxstatus":"none"' in answer[1]
    assert refused and lane_count(vsp) == before + 1  # SQLite said wait: the handler waited on the reader's thread
    assert (await vsp.ctx.store.get_ticket(t.hash)).hash == t.hash


async def test_a_head_is_parsed_once_however_its_request_is_split(vsp, monkeypatch):
    """#22: the lane parsed the whole head again on every segment of its body (CPU amplification)."""
    parses = []
    real = fastlane._fields
    monkeypatch.setattr(fastlane, "_fields", lambda head: parses.append(len(head)) or real(head))
    request = status_post("ab" * 32, b"".join(b"X-F%03d: %s\r\n" % (i, b"v" * 50) for i in range(120)))
    at = request.index(b"\r\n\r\n") + 4
    head_bytes = [request[i:i + 1] for i in range(at - 40, at)]  # the end of the head a byte at a time too
    body_bytes = [request[i:i + 1] for i in range(at, len(request))]
    answers, _ = await exchange(vsp, request[:at - 40], *head_bytes, *body_bytes)
    assert answers[0][0].startswith(b"HTTP/1.1 400 ") and len(parses) == 1, parses


async def test_more_header_fields_than_aiohttps_128_go_to_aiohttp(vsp):
    fields = lambda n: b"".join(b"X-F%03d: v\r\n" % i for i in range(n))  # noqa: E731
    at_cap, _ = await exchange(vsp, VSPINFO.replace(b"User-Agent: wallet\r\n", fields(126)))  # with Host: 128
    assert at_cap[0][0].startswith(b"HTTP/1.1 200 OK")
    before = lane_count(vsp)
    past, _ = await exchange(vsp, VSPINFO.replace(b"User-Agent: wallet\r\n", fields(128)))  # 130
    assert past[0][0].startswith(b"HTTP/1.0 400 Bad Request") and past[0][1] == b"Too many headers received"
    assert lane_count(vsp) == before
