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

    python contrib/bench/hostile_bench.py [--short] [--repeat N]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import aiohttp  # noqa: E402
import grpc  # noqa: E402

from chainbuilders import Key, make_ticket  # noqa: E402
from procs import Network, Staker  # noqa: E402
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from web.wire import go_json  # noqa: E402

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


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI")
    ap.add_argument("--repeat", type=int, default=20, help="requests per case")
    args = ap.parse_args()
    repeat = 3 if args.short else args.repeat
    net = await Network.create(Path(tempfile.mkdtemp(prefix="vspd-hostile-")), nvoters=1,
                               extra_args=["--loglevel=warn"])
    results: list[tuple[str, float, int, int]] = []  # case, worst probe, sent, refused
    try:
        await net.voters_ready()
        await net.start_frontend(wait_healthy=1)
        print(f"hostile_bench: {repeat} requests per case, loopback, real processes")
        await voter_cases(net, repeat, results)
        await frontend_cases(net, repeat, results)
    finally:
        await net.close()
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
