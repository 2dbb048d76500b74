#!/usr/bin/env python3
"""The longest event-loop stall hostile sizes cause, in a real frontend and a real voter.

Starts `vspd --role=frontend` and one `vspd --role=voter` (the test suite's
protocol-level fakes standing in for exccd and exccwallet), then sends each
kind of maximum-size junk a client or an attacker could send: a 200,000-
character WIF, 1 MB fields and non-protobuf bytes (and 4 MB, over its
limit) to the voter over gRPC, 1 MiB fields and bodies to the API, 2 MiB
admin forms. Meanwhile a probe
asks the same process a cheap question (Health, /api/v3/vspinfo) every few
milliseconds; its slowest answer during a case is that case's stall.
Prints one line per case and the largest stall; asserts nothing about speed.

Then one hostile client at the edge (#22, tests/helpers/hostile.py): another
client's vspinfo latency while 64 connections send 8 KB heads and their
bodies a byte per send; the frontend's CPU per body segment after a small
and a large head; how long each stalled connection state stays open (with
2 s bounds where the frontend has the options) and what a stalled
connection costs in memory; ERROR lines and log bytes per 1,000 clients
leaving mid-body; how old vspinfo's timestamp is.

    python contrib/bench/hostile_bench.py [--short] [--repeat N] [--edge-only]
"""

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "helpers"), str(ROOT / "tests"), str(ROOT)]

import aiohttp  # noqa: E402
import grpc  # noqa: E402

import hostile  # noqa: E402
from chainbuilders import Key, make_ticket  # noqa: E402
from procs import BIN, Network, Staker  # noqa: E402
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from web.api.wire import go_json  # noqa: E402

GRPC_MAX = (1 << 20) - 1024  # under the voter's 1 MiB request limit
GRPC_OVER = 4 << 20  # over it: grpc refuses it before Python reads it
API_MAX = (1 << 20) - 4096  # under the API's 1 MiB body limit
FORM_MAX = (2 << 20) - 4096  # under aiohttp's 2 MiB request limit
ADMIN_PASS = "Sup3rSecretAdm1n"


class Probe:
    """Asks a cheap question back to back; records how long each answer took, and when."""

    def __init__(self, ask):
        self.ask = ask
        self.samples: list[tuple[float, float]] = []  # (end time, seconds)
        self.stop = asyncio.Event()

    async def run(self) -> None:
        for _ in range(1_000_000):  # bounded; stopped by the bench
            if self.stop.is_set():
                return
            t0 = time.perf_counter()
            await self.ask()
            self.samples.append((time.perf_counter(), time.perf_counter() - t0))
            await asyncio.sleep(0.002)

    def worst(self, since: float) -> tuple[float, int]:
        during = [s for end, s in self.samples if end >= since]
        return (max(during) if during else 0.0), len(during)


async def measure(name: str, probe: Probe, send, repeat: int, results: list) -> None:
    t0 = time.perf_counter()
    refused = 0
    for _ in range(repeat):
        refused += await send()
    await asyncio.sleep(0.05)  # the probe's answer that overlapped the last send
    worst, n = probe.worst(t0)
    results.append((name, worst, repeat, refused))
    print(f"  {name:46s} sent {repeat:3d}  refused {refused:3d}  probes {n:5d}  worst probe {worst * 1000:8.1f} ms")


async def voter_cases(net: Network, repeat: int, results: list) -> None:
    certdir = net.home / "certs"
    ca, cert, key = ((certdir / f).read_bytes() for f in ("ca.pem", "frontend.pem", "frontend.key"))
    v = net.voters[0]
    addr = VoterAddress(v.name, "127.0.0.1", v.port)
    prober, sender = VoterClient(addr, ca, cert, key), VoterClient(addr, ca, cert, key)
    voting, commit = Key(SIMNET), Key(SIMNET)
    t = make_ticket(voting, commit)
    good = dict(ticket_hash=t.txid(), ticket_hex=t.serialize().hex(), block_hash=net.chain.block_hash(190),
                block_height=190, voting_wif=voting.wif, choices={})

    async def health():
        await prober.health(timeout=30)

    def add(**change):
        args = good | change

        async def send() -> int:
            try:
                await sender.add_ticket(args["ticket_hash"], args["ticket_hex"], args["block_hash"],
                                        args["block_height"], args["voting_wif"], args["choices"])
            except VoterUnavailable as e:
                return "INVALID_ARGUMENT" in str(e) or "RESOURCE_EXHAUSTED" in str(e)
            return 0
        return send

    async def junk() -> int:
        try:
            await sender._channel.unary_unary("/vspd.voter.Voter/AddTicket")(b"\xff" * GRPC_MAX, timeout=30)
        except grpc.aio.AioRpcError as e:
            return e.code() == grpc.StatusCode.INVALID_ARGUMENT
        return 0

    async def choices() -> int:
        try:
            await sender.set_vote_choices(t.txid(), {f"agenda{i}": "x" * 200 for i in range(4500)})
        except VoterUnavailable as e:
            return "INVALID_ARGUMENT" in str(e)
        return 0

    probe = Probe(health)
    task = asyncio.create_task(probe.run())
    try:
        print(f"voter {v.name} (gRPC Health as the probe):")
        await measure("baseline (no junk)", probe, lambda: asyncio.sleep(0.05, 0), repeat, results)
        await measure("AddTicket, 200,000-character WIF", probe, add(voting_wif="9" * 200_000), repeat, results)
        await measure("AddTicket, 1 MB WIF", probe, add(voting_wif="9" * GRPC_MAX), repeat, results)
        await measure("AddTicket, 1 MB ticket hex", probe, add(ticket_hex="0" * GRPC_MAX), repeat, results)
        await measure("AddTicket, 1 MB ticket hash", probe, add(ticket_hash="a" * GRPC_MAX), repeat, results)
        await measure("AddTicket, 1 MB of bytes that are not protobuf", probe, junk, repeat, results)
        await measure("AddTicket, 4 MB WIF (over the limit)", probe, add(voting_wif="9" * GRPC_OVER), repeat,
                      results)
        await measure("SetVoteChoices, 4,500 choices (1 MB)", probe, choices, repeat, results)
    finally:
        probe.stop.set()
        await task
        await prober.close()
        await sender.close()


async def frontend_cases(net: Network, repeat: int, results: list) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for an IP
        st = Staker(net, http)
        await st.client.vspinfo()
        voting, commit, t, parent, r = await st.buy()
        assert r.status == 200, r.json
        c = st.client

        async def vspinfo():
            async with http.get(net.url + "/api/v3/vspinfo") as resp:
                await resp.read()

        def api(make) -> callable:
            async def send() -> int:
                reply = await make()
                return 400 <= reply.status < 500
            return send

        def raw(path: str, body: bytes) -> callable:
            async def send() -> int:
                async with http.post(net.url + path, data=body) as resp:
                    await resp.read()
                    return 400 <= resp.status < 500
            return send

        async def login() -> None:
            async with http.post(net.url + "/admin", data={"password": ADMIN_PASS}, allow_redirects=False) as resp:
                assert resp.status == 302, resp.status

        def form(path: str, data: dict) -> callable:
            async def send() -> int:
                async with http.post(net.url + path, data=data, allow_redirects=False,
                                     headers={"Origin": net.url}) as resp:
                    await resp.read()
                    return resp.status == 400
            return send

        huge = "9" * (API_MAX - 2000)
        probe = Probe(vspinfo)
        task = asyncio.create_task(probe.run())
        try:
            print("frontend (GET /api/v3/vspinfo as the probe):")
            await measure("baseline (no junk)", probe, lambda: asyncio.sleep(0.05, 0), repeat, results)
            await measure("payfee, 200,000-character votingkey", probe, api(
                lambda: c.payfee(commit.secret, t.txid(), "00", "9" * 200_000)), repeat, results)
            await measure("payfee, 1 MiB votingkey", probe, api(
                lambda: c.payfee(commit.secret, t.txid(), "00", huge)), repeat, results)
            await measure("payfee, 1 MiB feetx", probe, api(
                lambda: c.payfee(commit.secret, t.txid(), "0" * (API_MAX - 2000), voting.wif)), repeat, results)
            await measure("setaltsignaddr, 1 MiB address", probe, api(
                lambda: c.setaltsignaddr(commit.secret, t.txid(), t.serialize().hex(), parent.serialize().hex(),
                                         "S" * (API_MAX - 20000))), repeat, results)
            await measure("setvotechoices, 1 MiB agenda name", probe, api(
                lambda: c.setvotechoices(commit.secret, t.txid(), {"a" * (API_MAX - 2000): "yes"})),
                repeat, results)
            keys = go_json({"tickethash": t.txid(), **{f"k{i}": 0 for i in range(API_MAX // 12)}})
            await measure("ticketstatus, 1 MiB of 87,000 keys (answered)", probe, api(
                lambda: c.post("/api/v3/ticketstatus", keys, commit.secret)), repeat, results)
            await measure("feeaddress, 1 MiB of nested arrays", probe,
                          raw("/api/v3/feeaddress", b"[" * API_MAX), repeat, results)
            await measure("feeaddress, 1 MiB declared, 8 MiB sent", probe,
                          raw("/api/v3/feeaddress", b"{" * (8 << 20)), max(1, repeat // 5), results)
            await login()
            await measure("admin own ticket, 2 MiB votingkey", probe, form(
                "/admin/ownticket", {"hash": "ab" * 32, "votingkey": "9" * FORM_MAX}), repeat, results)
            await measure("admin fee xpub, 2 MiB xpub", probe, form(
                "/admin/xpub", {"xpub": "x" * FORM_MAX}), repeat, results)
        finally:
            probe.stop.set()
            await task


EDGE_BOUND = 2.0  # seconds, every state's bound where the frontend has the options


def amplify(port: int, conns: int, seconds: float, fields: int, pace: float = 0.0, most: int = 10_000_000) -> int:
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "hostile.py"), "amplify", str(port),
                           str(conns), str(seconds), str(fields), "8100", str(pace), str(most)],
                          capture_output=True, text=True, timeout=seconds + 120)
    return json.loads(proc.stdout)["segments"]


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stall_cases() -> dict:
    get = hostile.VSPINFO
    elsewhere = b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    return {  # name: (bytes sent, answers read first)
        "lane: half a head": (get[:20], 0),
        "lane: half a body": (hostile.head(2, length=100) + b"{" * 50, 0),
        "lane: idle after an answer": (get, 1),
        "aiohttp: half a head after an answer": (elsewhere + get[:20], 1),
        "aiohttp: half a head over 8,190 bytes": (b"GET /x HTTP/1.1\r\n" + b"".join(
            b"X-%02d: %s\r\n" % (i, b"a" * 94) for i in range(90)), 0),
        "aiohttp: half a body over 16 KiB": (hostile.head(2, length=20000) + b"{" * 50, 0),
        "aiohttp: idle after an answer": (elsewhere, 1),
    }


def open_for(port: int, send: bytes, read_first: int, limit: float) -> float | None:
    """Seconds the frontend kept a stalled connection open (None: still open after `limit`)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(send)
        for _ in range(read_first):
            hostile.read_answer(s)
        return hostile.closed_after(s, time.monotonic(), limit)
    finally:
        s.close()


async def edge_cases(net: Network, short: bool) -> None:
    has_bounds = "headtimeout" in subprocess.run([BIN / "vspd", "--help"], capture_output=True, text=True).stdout
    bounds = [f"--{k}timeout={EDGE_BOUND}" for k in ("head", "body", "idle", "send")] if has_bounds else []
    caps = ["--maxclientconns=0"] if has_bounds else []
    await net.frontend.halt()
    await net.start_frontend(*bounds, *caps, wait_healthy=1)
    port, pid = net.port, net.frontend.proc.pid
    print(f"one hostile client at the edge ({'with' if has_bounds else 'without'} connection bounds):")
    seconds = 5.0 if short else 10.0
    alone = hostile.summary(await asyncio.to_thread(hostile.probe, port, 1.0))
    print(f"  vspinfo alone: median {alone['median_ms']:.2f} ms, max {alone['max_ms']:.1f} ms")
    for shape, fields in (("#22's 1,399 empty fields", hostile.ISSUE_FIELDS), ("128 fields", hostile.FIELDS_AT_CAP)):
        attack = asyncio.create_task(asyncio.to_thread(amplify, port, 64, seconds, fields))
        await asyncio.sleep(0.5)
        under = hostile.summary(await asyncio.to_thread(hostile.probe, port, seconds - 1.0))
        sent = await attack
        print(f"  vspinfo under 64 connections sending an 8 KB head of {shape}, then the body a byte per send "
              f"({sent} segments in {seconds:.0f} s): median {under['median_ms']:.2f} ms, "
              f"max {under['max_ms']:.1f} ms ({under['n']} answers)")
    for name, fields in (("76-byte head", 2), ("8 KB head of 128 fields", hostile.FIELDS_AT_CAP)):
        cpu0 = hostile.cpu_seconds(pid)
        n = await asyncio.to_thread(amplify, port, 64, 60.0, fields, 0.0005, 64 * (100 if short else 400))
        print(f"  frontend CPU per body segment after a {name}: {(hostile.cpu_seconds(pid) - cpu0) / n * 1e6:.1f} us "
              f"({n} segments)")
    limit = EDGE_BOUND + 3 if has_bounds else (10.0 if short else 30.0)
    cases = stall_cases()
    took = await asyncio.gather(*(asyncio.to_thread(open_for, port, send, first, limit)
                                  for send, first in cases.values()))
    for name, t in zip(cases, took):
        print(f"  {name:36s} " + (f"closed after {t:.1f} s" if t is not None else f"still open after {limit:.0f} s"))
    rss0, stalled = rss_kib(pid), []
    for _ in range(500):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(hostile.head(2, length=20000) + b"{" * 8000)
        stalled.append(s)
    await asyncio.sleep(0.5)
    print(f"  500 stalled connections (8 KB of a 20 KB body each): frontend RSS +{(rss_kib(pid) - rss0) / 500:.1f} KiB "
          f"per connection")
    for s in stalled:
        s.close()
    log0 = net.frontend.out.stat().st_size
    errors0 = net.frontend.output().count("[ERR]")

    def leave(n: int) -> None:
        for i in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                length = 20000 if i % 2 else 1000
                s.sendall(hostile.head(2, length=length) + b"{" * (length // 2))
            time.sleep(0.002)
    await asyncio.to_thread(leave, 1000)
    await asyncio.sleep(1.0)
    print(f"  1,000 clients leaving mid-body: {net.frontend.output().count('[ERR]') - errors0} ERROR lines, "
          f"log +{(net.frontend.out.stat().st_size - log0) / 1024:.1f} KiB")
    await asyncio.sleep(3.0)

    def age() -> float:
        s = hostile.connect(port)
        try:
            s.sendall(hostile.VSPINFO)
            return time.time() - json.loads(hostile.read_answer(s)[1])["timestamp"]
        finally:
            s.close()
    print(f"  vspinfo timestamp {await asyncio.to_thread(age):.1f} s behind the clock (no block for 3 s)")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI")
    ap.add_argument("--repeat", type=int, default=20, help="requests per case")
    ap.add_argument("--edge-only", action="store_true", help="only the hostile client at the edge")
    args = ap.parse_args()
    repeat = 3 if args.short else args.repeat
    net = await Network.create(Path(tempfile.mkdtemp(prefix="vspd-hostile-")), nvoters=1,
                               extra_args=["--loglevel=warn"])
    results: list[tuple[str, float, int, int]] = []  # case, worst probe, sent, refused
    try:
        await net.voters_ready()
        await net.start_frontend(wait_healthy=1)
        print(f"hostile_bench: {repeat} requests per case, loopback, real processes")
        if not args.edge_only:
            await voter_cases(net, repeat, results)
            await frontend_cases(net, repeat, results)
        await edge_cases(net, args.short)
    finally:
        await net.close()
    if args.edge_only:
        return
    cases = [r for r in results if not r[0].startswith("baseline")]
    name, worst, _, _ = max(cases, key=lambda c: c[1])
    base = statistics.median(r[1] for r in results if r[0].startswith("baseline"))
    print(f"largest stall: {worst * 1000:.1f} ms ({name}); worst baseline probe {base * 1000:.1f} ms")
    print(f"hostile requests {sum(r[2] for r in cases)} in {len(cases)} cases, refused {sum(r[3] for r in cases)}; "
          f"tracebacks in the logs {net.tracebacks()}")
    for proc in [net.frontend] + [v.proc for v in net.voters]:
        if proc.proc.returncode not in (0, -15):
            raise SystemExit(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.output()[-2000:]}")
    if net.tracebacks():
        raise SystemExit("a process logged a traceback")


if __name__ == "__main__":
    asyncio.run(main())
