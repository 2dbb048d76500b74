"""The edge against one hostile client (#22), on raw sockets against a real frontend process.

- amplification: 64 connections each send a head of 128 fields (8 KB),
  then its body one byte per send, for 10 s; another client's vspinfo
  stays fast, and the frontend's CPU time per body segment is the same
  after an 8 KB head as after a 76-byte one (a head is parsed once);
- every connection state, stalled, is closed within its bound (short
  bounds set by option), in the lane and once handed to aiohttp;
- a cap on open connections per client address, on the real address
  behind a trusted proxy;
- 1,000 clients leaving mid-body add no ERROR line;
- vspinfo's timestamp follows the clock with no new block.
"""

import asyncio
import json
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hostile
from procs import Network

pytestmark = pytest.mark.slow
HELPERS = Path(__file__).resolve().parents[2] / "helpers"
BOUNDS = {"head": 1.0, "body": 1.5, "idle": 2.0, "send": 1.0}
SLACK = 2.0  # seconds past a bound a busy machine (and the kernel's socket buffers, for send) may take


def amplifier(port: int, conns: int, seconds: float, fields: int = hostile.FIELDS_AT_CAP, size: int = 8100,
              pace: float = 0.0, most: int = 10_000_000) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HELPERS / "hostile.py"), "amplify", str(port), str(conns),
                             str(seconds), str(fields), str(size), str(pace), str(most)],
                            stdout=subprocess.PIPE, text=True)


def segments_of(proc: subprocess.Popen) -> int:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return json.loads(out)["segments"]


@pytest.fixture
async def net(tmp_path):
    n = await Network.create(tmp_path, nvoters=1, extra_args=["--loglevel=info"])
    await n.voters_ready()
    yield n
    await n.close()


def errors_in(net: Network) -> list[str]:
    return [line for line in net.frontend.output().splitlines() if "[ERR]" in line or "[CRI]" in line]


async def test_amplifying_connections_leave_another_clients_vspinfo_fast(net):
    """64 connections: 32 with #22's head of 1,399 empty fields, 32 with 128 fields (the most the lane
    takes), each sending its body a byte per send for 10 s; another client asks vspinfo meanwhile.

    The old lane held a core per connection (median 557 ms, max 7.1 s in #22's probe). On a shared
    machine the scheduler alone can hold a process for 200 ms, so a second try is allowed: a lane
    that amplifies fails both.
    """
    await net.start_frontend("--maxclientconns=0", wait_healthy=1)
    idle = await asyncio.to_thread(hostile.probe, net.port, 1.0)
    tries = []
    for _ in range(2):
        attacks = [amplifier(net.port, 32, 10.0, hostile.ISSUE_FIELDS), amplifier(net.port, 32, 10.0)]
        await asyncio.sleep(0.5)  # its connections open and its heads are sent
        under = await asyncio.to_thread(hostile.probe, net.port, 8.0)
        sent = sum([await asyncio.to_thread(segments_of, a) for a in attacks])
        during = hostile.summary(under)
        tries.append(during)
        print(f"vspinfo alone {hostile.summary(idle)}; under 64 amplifying connections ({sent} segments) {during}")
        assert sent > 64 * 100, sent  # the attack did run
        if during["median_ms"] < 20 and during["max_ms"] < 200:
            break
    assert during["median_ms"] < 20 and during["max_ms"] < 200, tries
    assert not errors_in(net)


async def test_cpu_per_body_segment_does_not_grow_with_the_head(net):
    """What a segment costs does not depend on the bytes received before it (the head is parsed once)."""
    await net.start_frontend("--maxclientconns=0", wait_healthy=1)
    pid, segments = net.frontend.proc.pid, 64 * 400
    per_segment = {}
    for name, fields in (("76-byte head", 2), ("8 KB head of 128 fields", hostile.FIELDS_AT_CAP)):
        cpu0 = hostile.cpu_seconds(pid)
        sent = await asyncio.to_thread(segments_of, amplifier(net.port, 64, 60.0, fields, pace=0.0005,
                                                              most=segments))
        per_segment[name] = (hostile.cpu_seconds(pid) - cpu0) / sent
    print({k: f"{v * 1e6:.1f} us" for k, v in per_segment.items()})
    small, large = per_segment.values()
    assert large < 2 * small + 20e-6, per_segment


def stalled(port: int, send: bytes, read_first: int = 0, rcvbuf: int = 0) -> tuple[socket.socket, float]:
    """A connection that sent `send` (as much as the server took) and read `read_first` answers; when it stalled."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    for _ in range(read_first):
        s.sendall(send)  # each case that reads first sends one request before the stalled part
        hostile.read_answer(s)
        send = b""
    t0 = time.monotonic()
    if not rcvbuf:
        s.sendall(send)
        return s, t0
    # a client that does not read: sends until the server stops taking its requests (its answers are not
    # read); the stall starts with the last byte the server took
    s.setblocking(False)
    view = memoryview(send)
    while view and time.monotonic() - t0 < 0.3:
        try:
            view = view[s.send(view):]
            t0 = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
        except ConnectionError:
            break
    s.setblocking(True)
    return s, t0


GET = b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
ELSEWHERE = b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # aiohttp's: a 404 page


async def test_each_stalled_connection_state_is_closed_within_its_bound(net):
    await net.start_frontend(*(f"--{k}timeout={v}" for k, v in BOUNDS.items()), wait_healthy=1)
    port = net.port
    post = hostile.head(2, length=100)
    cases = {  # name: (bound, what the client sends, answers it reads first, its receive buffer)
        "lane, no request yet": ("head", b"", 0, 0),
        "lane, half a head": ("head", GET[:20], 0, 0),
        "lane, head a byte a time": ("head", None, 0, 0),
        "lane, half a body": ("body", post + b"{" * 50, 0, 0),
        "lane, idle after an answer": ("idle", GET, 1, 0),
        "lane, half a head after an answer": ("head", GET + GET[:20], 1, 0),
        "lane, answers not read": ("send", GET * 20000, 0, 4096),
        "aiohttp, head over 8,190 bytes": ("head", b"GET /x HTTP/1.1\r\n" + b"".join(
            b"X-%02d: %s\r\n" % (i, b"a" * 94) for i in range(90)), 0, 0),  # the lane's limit, not aiohttp's
        "aiohttp, half a head after an answer": ("head", ELSEWHERE + GET[:20], 1, 0),
        "aiohttp, half a body over the lane's size": ("body", hostile.head(2, length=20000) + b"{" * 50, 0, 0),
        "aiohttp, idle after an answer": ("idle", ELSEWHERE, 1, 0),
        "aiohttp, answers not read": ("send", ELSEWHERE * 3000, 0, 4096),
    }

    def run(name: str, state: str, send: bytes | None, read_first: int, rcvbuf: int) -> tuple[str, float | None]:
        if send is None:  # a byte every 0.3 s: progress, but the head's bound is for the whole head
            s, t0 = stalled(port, b"")
            for b in GET[:-2]:
                try:
                    s.send(bytes([b]))
                except ConnectionError:
                    break
                if select.select([s], [], [], 0.3)[0]:  # the server ended it
                    break
                if time.monotonic() - t0 > BOUNDS[state] + SLACK + 1:
                    break
            took = hostile.closed_after(s, t0, BOUNDS[state] + SLACK + 2)
            s.close()
            return name, took
        s, t0 = stalled(port, send, read_first, rcvbuf)
        took = hostile.closed_after(s, t0, BOUNDS[state] + SLACK + 2)
        s.close()
        return name, took

    results = await asyncio.gather(*(asyncio.to_thread(run, name, *case) for name, case in cases.items()))
    print("\n".join(f"  {name}: closed after {took if took is None else round(took, 2)} s (bound "
                    f"{BOUNDS[cases[name][0]]} s, {cases[name][0]})" for name, took in results))
    for name, took in results:
        bound = BOUNDS[cases[name][0]]
        assert took is not None and took <= bound + SLACK, (name, took, bound)
    assert not errors_in(net)


async def test_open_connections_are_capped_per_client_address(net):
    # 127.0.0.1 as an ordinary client: its connections count
    await net.start_frontend("--maxclientconns=5", "--trustedproxies=10.9.9.9", wait_healthy=1)

    def count_open(port: int, headers: list[bytes]) -> int:
        socks = []
        try:
            for h in headers:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                s.sendall(b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + h + b"\r\n")
            served = 0
            for s in socks:
                try:
                    hostile.read_answer(s)
                    served += 1
                except (ConnectionError, socket.timeout):
                    pass
            return served
        finally:
            for s in socks:
                s.close()
    assert await asyncio.to_thread(count_open, net.port, [b""] * 8) == 5
    await asyncio.sleep(0.3)  # closed connections no longer count
    assert await asyncio.to_thread(count_open, net.port, [b""] * 5) == 5
    await net.frontend.halt()
    # behind a trusted proxy: counted on the address it forwards
    await net.start_frontend("--maxclientconns=5", wait_healthy=1)
    forwarded = [b"X-Forwarded-For: 203.0.113.%d\r\n" % (i % 2) for i in range(12)]
    assert await asyncio.to_thread(count_open, net.port, forwarded) == 10  # 5 each for two clients
    assert await asyncio.to_thread(count_open, net.port, [b""] * 12) == 12  # the proxy itself: not capped


async def test_a_thousand_clients_leaving_mid_body_add_no_error_line(net):
    await net.start_frontend("--maxclientconns=0", wait_healthy=1)

    def leave(n: int) -> None:
        for i in range(n):
            with socket.create_connection(("127.0.0.1", net.port), timeout=5) as s:
                # over the lane's 16 KiB: aiohttp reads it, in api.py's body read; half sent, then gone
                length = 20000 if i % 2 else 1000
                s.sendall(hostile.head(2, length=length, path=b"/api/v3/feeaddress") + b"{" * (length // 2))
                if i % 3 == 0:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                time.sleep(0.002)
    before = len(errors_in(net))
    await asyncio.to_thread(leave, 1000)
    await asyncio.sleep(1.0)
    async with __import__("aiohttp").ClientSession() as http:
        async with http.get(net.url + "/api/v3/vspinfo") as r:
            assert r.status == 200  # still serving
    added = errors_in(net)[before:]
    print(f"ERROR lines added by 1,000 clients leaving mid-body: {len(added)}")
    assert not added, added[:5]
    assert "Traceback" not in net.frontend.output()


async def test_vspinfo_timestamp_follows_the_clock_without_a_block(net):
    await net.start_frontend(wait_healthy=1)

    def watch() -> list[float]:
        s = hostile.connect(net.port)
        gaps = []
        try:
            for _ in range(16):
                s.sendall(GET)
                _, body = hostile.read_answer(s)
                gaps.append(time.time() - json.loads(body)["timestamp"])
                time.sleep(0.2)
        finally:
            s.close()
        return gaps
    height = net.chain.height
    gaps = await asyncio.to_thread(watch)
    assert net.chain.height == height  # no new block meanwhile
    print(f"vspinfo timestamp behind the clock: max {max(gaps):.2f} s, median {statistics.median(gaps):.2f} s")
    assert all(-0.1 <= g <= 1.1 for g in gaps), gaps
