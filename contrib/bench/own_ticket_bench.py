#!/usr/bin/env python3
"""A wallet's requests about its own ticket, ours and the reference Go vspd's, on the real peers.

side_by_side.py measures what anyone can ask (vspinfo, the home page, an
unknown ticket) on a bare exccd. What a wallet asks about its own ticket
needs a real one: here the simnet of `vspd-simnet` runs (real exccd and
exccwallet, our frontend with three voters), and the Go vspd beside it on
the same exccd, with voter v1's wallet as its voting wallet. The keeper
wallet buys two tickets for keys of this script's own and registers both at
each VSP, as exccwallet does: one paid (ticketstatus, which a wallet polls
for every ticket it paid), one only quoted (feeaddress asked again, as a
wallet does after a restart). The other three endpoints change the ticket
once, so what is measured of them is the same request sent again, which
both VSPs refuse alike: payfee of the paid ticket (code 3), setvotechoices
with the timestamp already used (code 17), setaltsignaddr once the address
is set (code 0). wrk then sends each signed request, interleaved A/B/B/A.
Prints one table; asserts nothing about speed.

    python contrib/bench/own_ticket_bench.py [--short] [--rounds N] [--seconds S]
"""

import argparse
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "contrib" / "bench"), str(ROOT / "tests" / "helpers"), str(ROOT / "tests"),
                 str(ROOT)]

import aiohttp  # noqa: E402

import wrk  # noqa: E402
from chainbuilders import Key  # noqa: E402
from conftest import SIMNET_XPUB  # noqa: E402
from side_by_side import BenchPath, Target, measure, table  # noqa: E402
from vspclient import VSPClient, now, register_real_ticket  # noqa: E402
from vspd.chain.message import sign_message  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from vspd.simnet.chain import BoughtTicket  # noqa: E402
from vspd.simnet.network import SimnetVSP  # noqa: E402
from vspd.simnet.peers import PeerError, find_peers  # noqa: E402
from vspd.simnet.reference import ReferenceVSP  # noqa: E402
from web.api.wire import go_json  # noqa: E402


def progress(line: str) -> None:
    print(f"[own_ticket_bench {time.strftime('%H:%M:%S')}] {line}", flush=True)


async def buy(net: SimnetVSP) -> tuple[BoughtTicket, Key]:
    """A real ticket the keeper buys for a voting key of ours, and that key."""
    voting = Key(SIMNET)
    return await net.chain.buy_ticket_for(voting.address.encode()), voting


def signed_headers(body: bytes, key: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "VSP-Client-Signature": base64.b64encode(sign_message(key, body)).decode()}


def descendants(pid: int) -> list[int]:
    """Every process started under `pid` (the simnet's nodes, wallets, VSPs and their children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for t in Path(f"/proc/{p}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        except OSError:
            continue
        found += kids
        todo += kids
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def settle(limit_s: float = 60.0, quiet: float = 0.2) -> float:
    """Wait (at most `limit_s`) until the simnet's processes use less than `quiet` of a core for 2 s: what the
    last blocks gave the wallets and nodes to do (rescans, fee broadcasts, ticket imports) is done, and does
    not weigh on the first round of either side. The seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        pids = descendants(os.getpid())
        before = cpu_seconds(pids)
        await asyncio.sleep(2)
        if cpu_seconds(pids) - before < 2 * quiet:
            break
    return time.monotonic() - t0


async def signed_post(http: aiohttp.ClientSession, url: str, body: bytes, key: bytes) -> tuple[int, bytes]:
    """One request, as wrk will send it, to show what each side answers."""
    async with http.post(url, data=body, headers=signed_headers(body, key)) as r:
        return r.status, await r.read()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    if args.rounds < 1 or not 1 <= args.seconds <= 600:
        ap.error("--rounds must be at least 1 and --seconds from 1 to 600")
    rounds, seconds = (3, 3.0) if args.short else (args.rounds, args.seconds)
    try:
        binaries = find_peers(progress=progress)
    except PeerError as e:
        print(f"own_ticket_bench: skipped: {e}")
        return
    root = Path(tempfile.mkdtemp(prefix="vspd-ownticket-"))
    net = SimnetVSP(binaries, root, progress=progress)
    go = None
    try:
        await net.start()
        go = ReferenceVSP(root / "go-vspd", net.chain.logdir, net.chain.miner, [net.vsp.voters[0].wallet])
        await go.create(SIMNET_XPUB)
        await go.start()
        (paid, paid_voting), (quoted, quoted_voting) = await buy(net), await buy(net)
        async with aiohttp.ClientSession() as http:
            for url in (net.vsp.url, go.url):
                client = VSPClient(http, url)
                await client.vspinfo()
                await register_real_ticket(client, paid, paid_voting.wif, payer=net.chain.keeper)
                await register_real_ticket(client, quoted, quoted_voting.wif)
        await net.chain.mine(2)  # the tickets confirm, and each VSP broadcasts the paid fee
        alt = Key(SIMNET)
        stamp = now()
        paths = (BenchPath("POST ticketstatus, own paid ticket", "/api/v3/ticketstatus", 16,
                           go_json({"tickethash": paid.hash})),
                 BenchPath("POST feeaddress, own ticket again", "/api/v3/feeaddress", 16,
                           go_json({"timestamp": stamp, "tickethash": quoted.hash, "tickethex": quoted.hex,
                                    "parenthex": quoted.parent_hex})),
                 BenchPath("POST payfee, paid ticket again", "/api/v3/payfee", 16,
                           go_json({"timestamp": stamp, "tickethash": paid.hash, "feetx": paid.parent_hex,
                                    "votingkey": paid_voting.wif, "votechoices": {}, "tspendpolicy": {},
                                    "treasurypolicy": {}})),
                 BenchPath("POST setvotechoices, replayed", "/api/v3/setvotechoices", 16,
                           go_json({"timestamp": stamp, "tickethash": paid.hash, "votechoices": {},
                                    "tspendpolicy": {}, "treasurypolicy": {}})),
                 BenchPath("POST setaltsignaddr, again", "/api/v3/setaltsignaddr", 16,
                           go_json({"timestamp": stamp, "tickethash": paid.hash, "tickethex": paid.hex,
                                    "parenthex": paid.parent_hex, "altsignaddress": str(alt.address)})))
        keys = {p: paid.commitment_key for p in paths}
        keys[paths[1]] = quoted.commitment_key
        scripts = {p: wrk.post_script(root / f"own{i}.lua", p.body, signed_headers(p.body, keys[p]))
                   for i, p in enumerate(paths)}
        ours_port, go_port = int(net.vsp.url.rsplit(":", 1)[1]), go.port
        targets = [Target("ours", ours_port, [], root, net.vsp.log_path),
                   Target("go", go_port, [], root, go.log_path)]
        print(f"own_ticket_bench: real simnet at height {await net.chain.height()}, our frontend with "
              f"{len(net.vsp.voters)} voters and the Go vspd on one exccd; wrk -t1, {rounds} rounds of "
              f"{seconds:g} s, interleaved; load average {os.getloadavg()[0]:.2f} at start")
        async with aiohttp.ClientSession() as http:
            for p in paths:  # the first request of a path that changes the ticket does; the answer to show is the next
                answers = []
                for t in targets:
                    await signed_post(http, t.url + p.path, p.body, keys[p])
                    status, answer = await signed_post(http, t.url + p.path, p.body, keys[p])
                    print(f"  {t.name:4s} {p.label:36s} {status} {answer[:70]!r}")
                    answers.append((status, json.loads(answer).get("code")))
                if answers[0] != answers[1] or answers[0][0] not in (200, 400):
                    raise SystemExit(f"the two VSPs answer {p.label} differently: {answers}; see their logs: "
                                     f"{', '.join(str(t.log) for t in targets)}")
        await net.chain.wait_synced(net.vsp.wallets())
        progress(f"the simnet settled in {await settle():.0f} s")
        measure(targets, rounds, seconds, scripts, paths)
        async with aiohttp.ClientSession() as http:
            for p in paths:
                for t in targets:
                    status, answer = await signed_post(http, t.url + p.path, p.body, keys[p])
                    print(f"  after: {t.name:4s} {p.label:36s} {status} {answer[:90]!r}")
        table(targets, paths, processes=False)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        if go is not None:
            await go.stop()
        await net.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
