#!/usr/bin/env python3
"""kill -9 campaign and read-after-write count against a real frontend process.

Starts `vspd --role=frontend` and one `vspd --role=voter` around the test
suite's protocol-level fakes. Phase 1, durability: S concurrent stakers
each buy a ticket (feeaddress) and pay its fee (payfee) as a wallet does,
over and over, while the frontend is killed with SIGKILL at a random moment
and started again, N times. After each restart every acknowledged
feeaddress must still have its row and fee address, every acknowledged
payfee its fee; no fee address may be handed out twice; quick_check must
pass. Phase 2, read-after-write: P back-to-back feeaddress -> payfee pairs
from the same stakers, without kills, while two more wallets poll
/ticketstatus; a payfee that gets 'unknown ticket' after its feeaddress
got 200 is a miss. Prints the counts; asserts nothing
about speed, and exits 1 if anything acknowledged was lost, reused or
missed.

    python contrib/bench/durability_bench.py [--short] [--cycles N] [--stakers S] [--pairs P]
"""

import argparse
import asyncio
import base64
import random
import statistics
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "helpers"), str(ROOT / "tests"), str(ROOT)]

import aiohttp  # noqa: E402

from chainbuilders import make_fee_tx  # noqa: E402
from procs import Network, wait_for  # noqa: E402
from vspclient import VSPClient, quote_new_ticket  # noqa: E402
from vspd.chain import address  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402

UNKNOWN_TICKET = 6
VSP_CLOSED = 2


@dataclass
class Tally:
    fee_acked: dict = field(default_factory=dict)  # ticket hash -> fee address
    pay_acked: dict = field(default_factory=dict)  # ticket hash -> fee tx hash
    keys: dict = field(default_factory=dict)  # ticket hash -> commitment key, to ask about it later
    pairs: int = 0  # feeaddress answered 200 and payfee sent right after
    misses: list = field(default_factory=list)  # payfee 'unknown ticket' right after a 200
    other: dict = field(default_factory=dict)  # other answers, by (endpoint, status, code)
    fee_s: list = field(default_factory=list)  # seconds each acknowledged feeaddress took, as the wallet saw it
    pay_s: list = field(default_factory=list)

    def note(self, what: str, reply) -> None:
        why = (reply.json or {}).get("message", "") if reply.code == VSP_CLOSED else ""  # which refusal
        key = (what, reply.status, reply.code, why[:100])
        self.other[key] = self.other.get(key, 0) + 1


async def pair(client: VSPClient, net: Network, tally: Tally) -> None:
    """One wallet's purchase: feeaddress, then at once payfee."""
    t0 = time.monotonic()
    nt = await quote_new_ticket(client, net.chain)
    t1 = time.monotonic()
    if nt.reply.status != 200:
        tally.note("feeaddress", nt.reply)
        return
    tally.fee_acked[nt.hash] = nt.reply.json["feeaddress"]
    tally.fee_s.append(t1 - t0)
    tally.keys[nt.hash] = nt.commitment.secret
    fee = make_fee_tx(address.decode(nt.reply.json["feeaddress"], SIMNET), nt.reply.json["feeamount"])
    tally.pairs += 1
    t2 = time.monotonic()
    p = await client.payfee(nt.commitment.secret, nt.hash, fee.serialize().hex(), nt.voting.wif)
    if p.status == 200:
        tally.pay_acked[nt.hash] = fee.txid()
        tally.pay_s.append(time.monotonic() - t2)
    elif p.code == UNKNOWN_TICKET:
        tally.misses.append(nt.hash)
    else:
        tally.note("payfee", p)


async def staker(net: Network, http: aiohttp.ClientSession, tally: Tally, stop: asyncio.Event, budget: int) -> None:
    client = VSPClient(http, net.url)
    await client.vspinfo()
    for _ in range(budget):  # bounded; the kill or the budget ends it
        if stop.is_set():
            return
        try:
            await pair(client, net, tally)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            if stop.is_set():
                return  # the frontend was killed under this request: nothing was acknowledged
            raise


def check_database(db: Path, tally: Tally) -> tuple[int, int, int, str]:
    """(fee rows lost, payments lost, fee addresses handed out twice, quick_check)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = {h: (addr, status, fee_hash) for h, addr, status, fee_hash in con.execute(
            "SELECT hash, fee_address, fee_tx_status, fee_tx_hash FROM tickets")}
        reused = con.execute("SELECT COUNT(*) - COUNT(DISTINCT fee_address) FROM tickets WHERE fee_address <> ''"
                             ).fetchone()[0]
        check = con.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        con.close()
    lost_fee = sum(rows.get(h, (None,))[0] != a for h, a in tally.fee_acked.items())
    lost_pay = sum(h not in rows or rows[h][1] == "none" or rows[h][2] != f for h, f in tally.pay_acked.items())
    return lost_fee, lost_pay, reused, check


async def start(net: Network) -> float:
    """Start the frontend; seconds until /status answers (then wait until it takes tickets)."""
    t0 = time.monotonic()
    await net.start_frontend()
    up = time.monotonic() - t0
    async with aiohttp.ClientSession() as http:
        async def healthy():
            async with http.get(net.url + "/status") as r:
                return r.status == 200
        await wait_for(healthy, 60, "frontend healthy", interval=0.4)
    return up


async def campaign(net: Network, cycles: int, stakers: int, tally: Tally) -> tuple[list[float], list[str]]:
    restarts, problems = [], []
    rng = random.Random(14)
    db = net.home / "data" / "simnet" / "vspd.db"
    for cycle in range(cycles):
        restarts.append(await start(net))
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as http:
            tasks = [asyncio.create_task(staker(net, http, tally, stop, 10_000)) for _ in range(stakers)]
            await asyncio.sleep(rng.uniform(0.5, 2.5))
            stop.set()
            net.frontend.kill()  # SIGKILL, mid-traffic
            results = await asyncio.gather(*tasks, return_exceptions=True)
        problems += [f"cycle {cycle}: staker failed: {r!r}" for r in results if isinstance(r, BaseException)]
        lost_fee, lost_pay, reused, check = check_database(db, tally)
        if lost_fee or lost_pay or reused or check != "ok":
            problems.append(f"cycle {cycle}: lost {lost_fee} fee addresses, {lost_pay} payments, "
                            f"{reused} reused, quick_check {check}")
    restarts.append(await start(net))  # and a clean start after the last kill
    lost_fee, lost_pay, reused, check = check_database(db, tally)
    if lost_fee or lost_pay or reused or check != "ok":
        problems.append(f"after the last restart: lost {lost_fee}/{lost_pay}, {reused} reused, {check}")
    return restarts, problems


async def poller(client: VSPClient, tally: Tally, keys: dict, stop: asyncio.Event) -> int:
    """A wallet asking /ticketstatus about its paid tickets, as wallets do: reads beside the writes."""
    polls = 0
    for _ in range(1_000_000):  # bounded; stopped when the pairs are done
        if stop.is_set() or not tally.pay_acked:
            return polls
        h = random.choice(list(tally.pay_acked)[-50:])
        r = await client.ticketstatus(keys[h], h)
        if r.status != 200:
            tally.note("ticketstatus", r)
        polls += 1
    return polls


async def read_after_write(net: Network, pairs: int, stakers: int, tally: Tally, pollers: int = 2) -> int:
    """The pairs, with `pollers` wallets reading ticket status meanwhile; returns the polls made."""
    stop = asyncio.Event()
    per = -(-pairs // stakers)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=stakers + pollers)) as http:
        client = VSPClient(http, net.url)
        await client.vspinfo()
        await pair(client, net, tally)  # one paid ticket to ask about
        polling = [asyncio.create_task(poller(client, tally, tally.keys, stop)) for _ in range(pollers)]
        try:
            await asyncio.gather(*(staker(net, http, tally, stop, per) for _ in range(stakers)))
        finally:
            stop.set()
            polls = await asyncio.gather(*polling)
    return sum(polls)


async def backup_status(net: Network) -> dict:
    """The frontend's replication figures (/admin/status), waiting out its rate limit."""
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:Sup3rSecretAdm1n").decode()}
    async with aiohttp.ClientSession() as http:
        for _ in range(20):  # bounded
            async with http.get(net.url + "/admin/status", headers=auth) as r:
                if r.status != 429:
                    return (await r.json())["backup"]
            await asyncio.sleep(0.5)
    return {}


def ms(samples: list) -> str:
    if not samples:
        return "none"
    q = sorted(samples)
    return f"median {1000 * statistics.median(q):.1f} ms, p99 {1000 * q[min(len(q) - 1, int(0.99 * len(q)))]:.1f} ms"


async def replica_wait(net: Network, pairs: int, stakers: int) -> list[str]:
    """Phase 3: the latency of acknowledged answers, alone and S at once, and the replica wait inside it."""
    lines = []
    for concurrent in (1, stakers):
        before = await backup_status(net)
        tally = Tally()
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(staker(net, http, tally, asyncio.Event(), pairs // concurrent)
                                   for _ in range(concurrent)))
        after = await backup_status(net)
        acks = after.get("acks", 0) - before.get("acks", 0)
        syncs = after.get("ack_syncs", 0) - before.get("ack_syncs", 0)
        wait = after.get("ack_wait_ms", {})
        lines.append(f"  {concurrent} staker(s) at once, {len(tally.fee_s)} pairs: feeaddress {ms(tally.fee_s)}; "
                     f"payfee {ms(tally.pay_s)}; {acks} answers shared {syncs} replica syncs; "
                     f"waiting for the replica (latest {wait.get('n', 0)} answers, server side): "
                     f"median {wait.get('p50', '-')} ms, p99 {wait.get('p99', '-')} ms")
    return lines


async def replica_wait_over_sftp(pairs: int, stakers: int) -> list[str]:
    """Phase 3 again with the replica on a real OpenSSH server on 127.0.0.1, as production would use SFTP."""
    import os
    import subprocess
    from replicas import SSHD, SSHServer
    if not os.path.exists(SSHD):
        return ["  over SFTP: skipped, no OpenSSH server (.ci/run installs openssh-server)"]
    root = Path(tempfile.mkdtemp(prefix="vspd-durability-sftp-"))
    sshd = SSHServer(root / "ssh")
    sshd.start()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    net = await Network.create(root / "home", nvoters=1, extra_args=[
        f"--backupreplica=sftp://{user}@127.0.0.1:{sshd.port}{root / 'offsite'}",
        f"--backupsftpkey={root / 'ssh' / 'client'}", f"--backupsftphostkey={sshd.host_key}",
        "--loglevel=info", "--healthinterval=1"])
    try:
        await net.voters_ready()
        await start(net)
        return [line.replace("  ", "  over SFTP: ", 1) for line in await replica_wait(net, pairs, stakers)]
    finally:
        await net.close()
        sshd.stop()


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI")
    ap.add_argument("--cycles", type=int, default=60, help="kill -9 cycles")
    ap.add_argument("--stakers", type=int, default=6, help="concurrent stakers")
    ap.add_argument("--pairs", type=int, default=10_000, help="feeaddress -> payfee pairs of phase 2")
    args = ap.parse_args()
    cycles, pairs = (3, 300) if args.short else (args.cycles, args.pairs)
    net = await Network.create(Path(tempfile.mkdtemp(prefix="vspd-durability-")), nvoters=1,
                               extra_args=["--loglevel=info", "--healthinterval=1"])
    kill, raw = Tally(), Tally()
    try:
        await net.voters_ready()
        t0 = time.monotonic()
        restarts, problems = await campaign(net, cycles, args.stakers, kill)
        t1 = time.monotonic()
        polls = await read_after_write(net, pairs, args.stakers, raw)
        t2 = time.monotonic()
        waits = await replica_wait(net, 60 if args.short else 600, args.stakers)
        both = Tally({**kill.fee_acked, **raw.fee_acked}, {**kill.pay_acked, **raw.pay_acked})
        lost_fee, lost_pay, reused, check = check_database(net.home / "data" / "simnet" / "vspd.db", both)
    finally:
        await net.close()
    tracebacks = net.tracebacks()
    waits += await replica_wait_over_sftp(60 if args.short else 600, args.stakers)
    misses = len(kill.misses) + len(raw.misses)
    print(f"durability_bench: {args.stakers} stakers, 1 frontend and 1 voter process, loopback")
    print(f"kill -9 cycles {cycles} ({t1 - t0:.0f} s): acknowledged feeaddress {len(kill.fee_acked)}, "
          f"payfee {len(kill.pay_acked)}; restarts {min(restarts):.1f}-{max(restarts):.1f} s to /status")
    print(f"read-after-write ({t2 - t1:.0f} s without kills): {raw.pairs} feeaddress -> payfee pairs "
          f"beside {polls} ticketstatus polls, {kill.pairs} more during the kills; misses {misses}")
    print(f"acknowledged in all: feeaddress {len(both.fee_acked)}, payfee {len(both.pay_acked)}; "
          f"lost {lost_fee + lost_pay} ({lost_fee} fee addresses, {lost_pay} payments); "
          f"fee addresses reused {reused}; quick_check {check}; tracebacks in the logs {tracebacks}")
    print("acknowledged only once the off-site replica (a folder, then SFTP) holds the write:")
    for line in waits:
        print(line)
    others: dict = {}
    for t in (kill, raw):
        for k, v in t.other.items():
            others[k] = others.get(k, 0) + v
    if others:
        print("other answers: " + ", ".join(f"{w} {s}/code {c}{f' {m!r}' if m else ''}: {n}"
                                            for (w, s, c, m), n in sorted(others.items())))
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems or lost_fee or lost_pay or reused or check != "ok" or misses or tracebacks else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
