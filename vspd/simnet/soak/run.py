"""`vspd-simnet soak`: the whole VSP on the real peers under load, with faults drawn from a seed (issue 21).

Two or more real staker exccwallets buy tickets through the VSP all the
time; the soak's signed client sets vote choices and alternate signing
addresses on some; a block is mined about every second; faults from
soakplan, done by soakfaults, arrive one at a time. What it sees of the
chain, the wallets and the VSP goes into soakchecks.Facts, judged there as
it runs and at the end. One task group owns every loop; the network and
the soak's own mounts are always taken down, and no process is left behind.
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp

from rpcclient.errors import NodeUnavailable, RPCError
from rpcclient.exccwallet import holds_transaction
from vspd.chain import wif as wifmod
from vspd.chain.params import COIN, SIMNET
from vspd.simnet.children import ChildError
from vspd.simnet.network import SimnetVSP
from vspd.simnet.nodes import WalletNode
from vspd.simnet.peers import PeerError, find_peers
from vspd.simnet.reorg import ReorgError
from vspd.simnet.soak.checks import RECOVER_WITHIN, Facts, FaultRecord, Record, Sample, Ticket, chain_spends, counts, \
    follow, height_at, record_vs_chain, table, wall_time
from vspd.simnet.soak.faults import DATA_SIZE, REPLICA_SIZE, Faults, mount_tmpfs, unmount
from vspd.simnet.soak.plan import KINDS, schedule
from vspd.simnet.stateroot import default_root, prepare_root
from vspd.simnet.vspclient import BadServerSignature, VSPClient

SHORT_MINUTES = 6.0
PROCESSED = re.compile(rb"^(\S+ \S+) \[INF\] VSPC: successfully processed ([0-9a-f]{64})", re.M)
VOTING = re.compile(rb"^\S+ (\S+) \[INF\] WLLT: Voting on block \S+ \(height (\d+)\) using ticket ([0-9a-f]{64})",
                    re.M)
PUBLISHED = re.compile(rb"^(\S+ \S+) \[INF\] WLLT: Published ticket purchase ([0-9a-f]{64})", re.M)
VSP_ERROR = re.compile(rb"^(\S+ \S+) \[ERR\] VSPC: ticket ([0-9a-f]{64}): (.{0,300})", re.M)
ENDED = ("voted", "missed", "revoked", "expired")
# Faults during which the VSP refuses new tickets (or is away): the buyers wait them out. A ticket bought
# then is paid only when its wallet's VSP client tries again, minutes later, after it has most likely been
# called; on this chain's pool of about 320 tickets a few dozen such tickets make 3 of a block's 5 winners
# unvotable, and no block can follow, ever (finding 13 in docs/reliability.md). Tickets bought just before
# still meet the refusal, so the wallets' retries are still exercised.
REFUSING = ("replica-down", "disk-full", "frontend-kill", "frontend-lost")
RPC_ERRORS = (NodeUnavailable, RPCError, ChildError, OSError, asyncio.TimeoutError)
# A staker wallet not answering, or this many blocks behind the miner, for STAKER_HUNG_AFTER seconds is hung
# for good: exccwallet 2.7 deadlocks in its own database (finding 17 in docs/reliability.md), and the load
# of the soak stops with it. Longer than the frontend's exccd restart (up to ~25 s, plus a 5 s reconnect).
STAKER_BEHIND = 5
STAKER_HUNG_AFTER = 60.0
STAKER_POLL = 5.0
RECORD_FOLLOWS_WITHIN = 60.0  # at the end, the frontend's record must have read the tip within this
CHAIN_READS = 3               # getblock calls at once to the miner (exccd drops clients beyond 10)


async def address(wallet: WalletNode, policy: str = "ignore") -> str:
    """A new address past the wallet's gap limit ("ignore"), or one reused within it ("wrap")."""
    return await wallet.rpc.call("getnewaddress", "default", policy)


def progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vspd-simnet soak", description="A chaos soak of this VSP on the real "
                                "exccd and exccwallet: load, random faults from a seed, invariants checked.")
    p.add_argument("--minutes", type=float, default=60.0, help="minutes of load and faults (default %(default)s)")
    p.add_argument("--short", action="store_true",
                   help=f"CI mode: {SHORT_MINUTES} minutes, shorter faults, every kind once, at least 100 called")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: drawn, printed)")
    p.add_argument("--root", type=Path, default=default_root().parent / "soak",
                   help="state folder (default %(default)s)")
    p.add_argument("--block-interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between blocks (default %(default)s: about as fast as a small machine mines)")
    p.add_argument("--stakers", type=int, default=2, help="staker wallets buying tickets (default %(default)s)")
    return p


class Soak:
    def __init__(self, net: SimnetVSP, stakers: list[WalletNode], args: argparse.Namespace, seed: int):
        self.net, self.vsp, self.chain = net, net.vsp, net.chain
        self.stakers, self.args, self.seed = stakers, args, seed
        # a staker wallet's ticketinfo never beside our writes to it (the bbolt hang, rpcclient/exccwallet.py)
        self.apart = {s.name: asyncio.Lock() for s in stakers}
        self.minutes = SHORT_MINUTES if args.short else args.minutes
        self.facts = Facts(warmup=60.0 if args.short else 300.0)
        self.mine_gate = asyncio.Event()  # cleared by a reorganisation while it looks at the last blocks
        self.mine_gate.set()
        self.t0 = time.monotonic()
        self.done = asyncio.Event()
        self.start_height = 0
        self.current: FaultRecord | None = None
        self.status_ok = True
        self.rng = random.Random(seed ^ 0x5EED)
        self.log_offsets: dict[Path, int] = {}
        self.log_start: dict[str, int] = {}
        self.share: list[float] = []
        self.block_times: list[tuple[float, int]] = []  # (wall time, height) of each block the soak mined
        self.client_ops = {"setvotechoices": 0, "setaltsignaddr": 0, "refused": 0, "unreachable": 0}
        root = net.root
        self.data_mount, self.replica_mount = root / "vsp" / "data", root / "vsp" / "replica"
        self.faults = Faults(self.vsp, self.data_mount, self.replica_mount, root / "soak" / "vspd.key",
                             self.clock, progress, self.acknowledged_payfee, self.chain._mining,
                             self.probe_status, net=net, mine_gate=self.mine_gate, vsp_known=self.vsp_known)
        self.http: aiohttp.ClientSession | None = None
        self.client: VSPClient | None = None

    def clock(self) -> float:
        return time.monotonic() - self.t0

    def soak_time(self, stamp: str) -> float | None:
        """A wallet log line's time on the soak's clock (the one the fault log uses)."""
        wall = wall_time(stamp)
        return None if wall is None else wall - (time.time() - self.clock())

    def vspd_children(self) -> dict:
        return {"frontend": self.vsp.frontend, **{v.vspd.name: v.vspd for v in self.vsp.voters}}

    def log_files(self, name: str) -> list[Path]:
        home = self.vsp.home if name == "frontend" else self.vsp.home / f"voter-{name.split('-')[0]}"
        return [self.vsp.logdir / f"{name}.log", *(home / "logs" / "simnet").glob("*.log")]

    def log_size(self, name: str) -> int:
        return sum(p.stat().st_size for p in self.log_files(name) if p.exists())

    # -- the run -------------------------------------------------------------
    async def run(self) -> int:
        self.start_height = await self.chain.height()
        self.log_start = {n: self.log_size(n) for n in self.vspd_children()}
        progress(f"soak: seed {self.seed}, {self.minutes:g} minutes, {len(self.stakers)} staker wallets, "
                 f"a block every {self.args.block_interval:g} s, from height {self.start_height}")
        async with aiohttp.ClientSession() as self.http:
            self.client = VSPClient(self.http, self.vsp.url)
            await self.client.vspinfo()  # pins the pubkey every later answer is checked against
            async with asyncio.TaskGroup() as tg:
                loops = [tg.create_task(c) for c in (
                    self.mine_loop(), *(self.buyer(s) for s in self.stakers), self.client_loop(),
                    *(self.staker_watch(s) for s in self.stakers),
                    self.status_loop(), self.sample_loop(), self.track_loop(), self.progress_loop(),
                    self.faults.supervise(self.exited))]
                await self.fault_loop()
                self.done.set()
                for t in loops:
                    t.cancel()
            await self.settle()
            await self.gather()

    def report(self) -> int:
        """The end table and the last line; 1 on any violation."""
        lines, found = table(self.facts, [v.name for v in self.vsp.voters])
        print("\n".join(["", f"soak seed {self.seed}, root {self.net.root}, client requests {self.client_ops}"]
                        + lines), flush=True)
        return 1 if found else 0

    def exited(self, what: str) -> None:
        """A part exited without a fault asking it to: a violation, and a progress line."""
        progress(f"VIOLATION {what}")
        self.facts.extra.append(f"exit: {what}")

    async def mine_loop(self) -> None:
        last_block = time.monotonic()
        while True:
            await self.mine_gate.wait()
            t = time.monotonic()
            try:
                height = await self.chain.mine(1)
                self.block_times.append((time.time(), height))
                self.facts.blocks += 1
                last_block = time.monotonic()
            except RPC_ERRORS as e:
                if time.monotonic() - last_block > 180:
                    self.facts.extra.append(f"chain stalled for 180 s at {self.clock():.0f} s: {str(e)[:300]}")
                    last_block = time.monotonic()
                await asyncio.sleep(1.0)
            await asyncio.sleep(max(0.0, self.args.block_interval - (time.monotonic() - t)))

    def intake_refused(self) -> bool:
        return self.current is not None and self.current.end is None and self.current.kind in REFUSING

    async def buyer(self, staker: WalletNode) -> None:
        """Buys all the time, but not while a fault makes the VSP refuse or miss new tickets (see REFUSING)."""
        while True:
            if self.intake_refused():
                await asyncio.sleep(0.5)
                continue
            try:
                async with self.apart[staker.name]:
                    hashes = await staker.rpc.call("purchaseticket", "default", 0, 1, "", 2)
                for h in hashes:  # the wallet's log may have been read first: keep what it said
                    self.facts.tickets.setdefault(h, Ticket(h, staker.name))
                self.facts.bought += len(hashes)
            except RPC_ERRORS:
                self.facts.buy_errors += 1
            await asyncio.sleep(1.0 + self.rng.random())

    async def staker_behind(self, staker: WalletNode) -> int | None:
        """Blocks the staker wallet is behind the miner; None when the miner cannot say (it is restarting)."""
        try:
            tip = await self.chain.height()
        except RPC_ERRORS:
            return None
        try:
            return tip - int((await staker.rpc.call("getbestblock", timeout=10))["height"])
        except (*RPC_ERRORS, KeyError, TypeError, ValueError):
            return tip + 1  # not answering counts as behind

    async def staker_watch(self, staker: WalletNode) -> None:
        """A staker wallet hung for good is restarted, as its owner would, so the load goes on (finding 17).

        SIGQUIT first: Go prints every goroutine into the wallet's log, the evidence of which deadlock it was.
        The start holds the staker's lock until the wallet says it is ready: no purchase or address request
        meets its address discovery (finding 14).
        """
        hung_since = None
        while True:
            await asyncio.sleep(STAKER_POLL)
            behind = await self.staker_behind(staker)
            if behind is None or behind <= STAKER_BEHIND:
                hung_since = None
                continue
            hung_since = self.clock() if hung_since is None else hung_since
            if self.clock() - hung_since < STAKER_HUNG_AFTER:
                continue
            line = (f"{staker.name} at {self.clock():.0f} s: {behind} blocks behind or not answering for "
                    f"{self.clock() - hung_since:.0f} s; goroutines in {staker.log_path.name}, restarted")
            progress(f"staker {line}")
            if staker.child is not None:
                await staker.child.stop(timeout=10.0, sig=signal.SIGQUIT)
            async with self.apart[staker.name]:
                try:
                    await staker.start()
                except RPC_ERRORS as e:  # still hung or not ready: the next rounds try again
                    line += f" (the start failed: {type(e).__name__}: {str(e)[:200]})"
            self.facts.staker_restarts.append(line)
            hung_since = None

    async def commitment_key(self, staker: WalletNode, tx: dict) -> bytes:
        address = tx["vout"][1]["scriptPubKey"]["addresses"][0]
        return wifmod.decode(await staker.rpc.call("dumpprivkey", address), SIMNET).privkey

    async def client_loop(self) -> None:
        """Some tickets get setvotechoices and setaltsignaddr through the signed client, as a wallet would."""
        while True:
            await asyncio.sleep(8.0)
            open_ = [t for t in self.facts.tickets.values() if t.fate in ("immature", "live") and t.wallet != "client"]
            if not open_:
                continue
            t = self.rng.choice(open_)
            staker = next(s for s in self.stakers if s.name == t.wallet)
            try:
                tx = await self.chain.miner.rpc.call("getrawtransaction", t.hash, 1)
                parent = await self.chain.miner.rpc.call("getrawtransaction", tx["vin"][0]["txid"], 0)
                key = await self.commitment_key(staker, tx)
                choices: dict = {}  # simnet's vote version has no agendas: the only valid choices are none
                r = await self.client.setvotechoices(key, t.hash, choices)
                self.client_ops["setvotechoices" if r.status == 200 else "refused"] += 1
                if r.status == 200:
                    t.choices_set = choices
                async with self.apart[staker.name]:
                    alt = await address(staker, "wrap")
                r = await self.client.setaltsignaddr(key, t.hash, tx["hex"], parent, alt)
                self.client_ops["setaltsignaddr" if r.status == 200 else "refused"] += 1
            except BadServerSignature as e:
                self.facts.extra.append(f"c: the VSP's answer failed the client's check: {e}")
            except (aiohttp.ClientError, asyncio.TimeoutError, *RPC_ERRORS):
                self.client_ops["unreachable"] += 1

    async def acknowledged_payfee(self) -> str:
        """A ticket registered through the signed client up to an acknowledged payfee (frontend-lost's trigger).

        The keeper buys and pays it: a staker wallet may be held up inside its own purchase meanwhile.
        """
        payer = self.chain.keeper
        try:
            voting = await address(payer)
            wif = await payer.rpc.call("dumpprivkey", voting)
            bought = await self.chain.buy_ticket_for(voting)
            r = await self.client.feeaddress(bought.commitment_key, bought.hash, bought.hex, bought.parent_hex)
            if r.status != 200:
                return f"feeaddress refused ({r.status} {r.json.get('message')}); no payfee acknowledged"
            fee = await payer.signed_payment({r.json["feeaddress"]: round(r.json["feeamount"] / COIN, 8)})
            p = await self.client.payfee(bought.commitment_key, bought.hash, fee, wif)
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError, *RPC_ERRORS) as e:
            return f"no payfee acknowledged: {type(e).__name__}: {e}"
        if p.status != 200:
            return f"payfee refused ({p.status} {p.json.get('message')})"
        self.facts.tickets[bought.hash] = Ticket(bought.hash, "client", fate="client", wallet_paid=True)
        return f"payfee of {bought.hash[:16]}… acknowledged"

    async def look_at_status(self) -> tuple[int, dict]:
        try:
            return await self.vsp.status()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            return 0, {"problems": [f"no answer: {type(e).__name__}"]}

    async def probe_status(self, r: FaultRecord) -> None:
        """One look at /status as a fault takes its part down, as a monitor polling then would see it."""
        code, body = await self.look_at_status()
        if code not in (200, 429) and r.detected_at is None:
            r.detected_at, r.problems = self.clock(), "; ".join(body.get("problems", []))[:400]

    async def status_loop(self) -> None:
        while True:
            code, body = await self.look_at_status()
            if code != 429:
                self.status_ok = code == 200
                said = "; ".join(body.get("problems", []))[:400]
                now = self.clock()
                for r in self.facts.faults:
                    if not self.status_ok and r.detected_at is None and r.end is None:
                        r.detected_at, r.problems = now, said
                    if not self.status_ok and r.end is not None and r.healthy_at is None:
                        r.problems = said
                    if self.status_ok and r.end is not None and r.healthy_at is None:
                        r.healthy_at = now
            await asyncio.sleep(1.0)

    async def sample_loop(self) -> None:
        while True:
            for name, child in self.vspd_children().items():
                if child.running:
                    try:
                        rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{child.pid}/status").read_text())[1])
                        fds = len(os.listdir(f"/proc/{child.pid}/fd"))
                        self.facts.samples.setdefault(name, []).append(Sample(self.clock(), rss, fds))
                    except (OSError, TypeError):
                        pass
            try:
                answer = await self.chain.miner.rpc.call("livetickets")  # {"tickets": [...]}
                live = set(answer.get("tickets") or [] if isinstance(answer, dict) else answer or [])
                if live:
                    self.share.append(len(live & self.facts.tickets.keys()) / len(live))
            except RPC_ERRORS:
                pass
            await asyncio.sleep(10.0)

    async def track(self) -> None:
        """The staker wallets' own view: each ticket's status, and which fees they say they paid."""
        for s in self.stakers:
            try:
                async with self.apart[s.name]:
                    infos = await s.rpc.call("ticketinfo", self.start_height)
            except RPC_ERRORS:
                continue
            for info in infos:
                t = self.facts.tickets.setdefault(info["hash"], Ticket(info["hash"], s.name))
                if follow(t, info["status"], self.clock(), ENDED) and info["status"] in ("missed", "revoked"):
                    progress(f"ticket {t.hash} {info['status']} (wallet says fee paid: "
                             f"{'yes' if t.wallet_paid else 'no'})")
                t.vote_txid = info.get("vote", "")
                t.spender = info.get("vote") or info.get("revocation") or ""
            path = s.log_path
            try:
                with open(path, "rb") as f:
                    f.seek(self.log_offsets.get(path, 0))
                    data = f.read()
            except OSError:
                continue
            cut = data.rfind(b"\n") + 1
            self.log_offsets[path] = self.log_offsets.get(path, 0) + cut
            for stamp, h in PROCESSED.findall(data[:cut]):
                t = self.facts.tickets.setdefault(h.decode(), Ticket(h.decode(), s.name))
                if not t.wallet_paid:
                    t.wallet_paid, t.paid_height = True, height_at(self.block_times, stamp.decode())
                    t.paid_at = self.soak_time(stamp.decode())
            for stamp, h in PUBLISHED.findall(data[:cut]):
                t = self.facts.tickets.setdefault(h.decode(), Ticket(h.decode(), s.name))
                t.bought_at = self.soak_time(stamp.decode())
            for stamp, h, what in VSP_ERROR.findall(data[:cut]):
                t = self.facts.tickets.setdefault(h.decode(), Ticket(h.decode(), s.name))
                if not t.refused and not t.wallet_paid:
                    t.refused = f"{stamp.decode()[11:23]} {what.decode(errors='replace').strip()}"


    async def track_loop(self) -> None:
        while True:
            await self.track()
            await asyncio.sleep(5.0)

    async def progress_loop(self) -> None:
        while True:
            await asyncio.sleep(30.0)
            c = counts(self.facts)
            paid = sum(t.wallet_paid for t in self.facts.tickets.values())
            now = self.current.kind + "@" + self.current.target if self.current and self.current.end is None else "-"
            progress(f"soak {self.clock() / 60:.1f} min: {self.facts.blocks} blocks, {c['bought']} bought, "
                     f"{paid} paid (wallets), {c['voted']} voted, {c['missed'] + c['revoked']} missed or revoked, "
                     f"{len(self.facts.faults)} faults, now {now}, /status {'200' if self.status_ok else 'not 200'}")

    async def fault_loop(self) -> None:
        deadline = self.minutes * 60
        await asyncio.sleep(30.0 if self.args.short else 120.0)  # tickets bought and live before the first fault
        for p in schedule(self.seed, 10000, [v.name for v in self.vsp.voters], short=self.args.short):
            if self.clock() + p.down + 20 > deadline:
                break
            self.current = r = FaultRecord(p.kind, p.target, self.clock())
            self.facts.faults.append(r)
            try:
                await self.faults.run(p, r)
            except (ChildError, ReorgError, OSError, *RPC_ERRORS) as e:
                self.facts.extra.append(f"soak: fault {p.kind} on {p.target} could not be done or repaired: {e}")
            await self.wait_healthy(min(RECOVER_WITHIN, max(0.0, deadline - self.clock())))
            await asyncio.sleep(min(p.gap, max(0.0, deadline - self.clock())))
        await asyncio.sleep(max(0.0, deadline - self.clock()))

    async def wait_healthy(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        await asyncio.sleep(2.0)
        while time.monotonic() < end and not self.status_ok:
            await asyncio.sleep(1.0)

    # -- the end -------------------------------------------------------------
    async def settle(self) -> None:
        """Every part running, a few blocks for the repairs, then the last look."""
        progress("soak: load and faults over; repairing, mining a few blocks, checking")
        self.faults.release()
        for v in self.vsp.voters:
            try:
                await self.faults.repair(v)
            except (ChildError, *RPC_ERRORS) as e:
                self.facts.extra.append(f"soak: {v.name} could not be repaired at the end: {e}")
        if not self.vsp.frontend.running:
            await self.vsp.frontend.start()
        for _ in range(4):
            try:
                await asyncio.wait_for(self.chain.mine(1), 30.0)  # a stalled chain must not hold the end
                self.facts.blocks += 1
            except RPC_ERRORS as e:
                self.facts.extra.append(f"soak: no block could be mined at the end: {type(e).__name__} {e}"[:400])
                break
            await asyncio.sleep(2.0)
        await self.wait_healthy(30.0)
        await self.track()

    def vsp_rows(self) -> list[tuple]:
        db = self.data_mount / "simnet" / "vspd.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
            return c.execute("SELECT hash, fee_address, fee_tx_hash, fee_tx_status, vote_choices, confirmed "
                             "FROM tickets").fetchall()

    async def vsp_known(self) -> tuple[set[str], dict[str, str]]:
        """The VSP's tickets and {fee txid: ticket}, from its database (a reorganisation looks for them)."""
        try:
            rows = await asyncio.to_thread(self.vsp_rows)
        except sqlite3.Error:
            return set(self.facts.tickets), {}
        return {r[0] for r in rows}, {r[2]: r[0] for r in rows if r[2]}

    def vsp_record(self) -> tuple[tuple[int, str] | None, dict[str, Record], int]:
        """The frontend's last scanned block, each ticket's outcome and spend, the lowest purchase height."""
        db = self.data_mount / "simnet" / "vspd.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
            top = c.execute("SELECT height, hash FROM scanned_blocks ORDER BY height DESC LIMIT 1").fetchone()
            last = c.execute("SELECT value FROM pipeline_state WHERE name = 'last_scanned_height'").fetchone()
            rows = c.execute("SELECT t.hash, t.outcome, t.purchase_height, s.spender, s.height FROM tickets t "
                             "LEFT JOIN ticket_spends s ON s.ticket_hash = t.hash").fetchall()
        scanned = (top[0], top[1]) if top and last and top[0] == last[0] else None
        low = min((r[2] for r in rows if r[2]), default=0)
        return scanned, {h: Record(o or "", s or "", ht) for h, o, _p, s, ht in rows}, low

    async def compare_with_chain(self) -> None:
        """f: every VSP ticket's outcome and spender in the frontend's record against the main chain's blocks,
        once the record has read the tip (one pass over the blocks from the first VSP ticket's)."""
        f, miner = self.facts, self.chain.miner.rpc
        deadline = time.monotonic() + RECORD_FOLLOWS_WITHIN
        while True:
            best = await miner.call("getbestblock")
            tip = (int(best["height"]), str(best["hash"]))
            scanned, records, low = await asyncio.to_thread(self.vsp_record)
            if scanned == tip or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        if scanned is None or scanned[0] > tip[0] or await miner.call("getblockhash", scanned[0]) != scanned[1]:
            f.chain_mismatches.append(f"f: the frontend's record had not followed the main chain "
                                      f"{RECORD_FOLLOWS_WITHIN:.0f} s after the last block: its last block read "
                                      f"{scanned}, the tip {tip}")
            return
        at = scanned[0]
        if scanned != tip:  # behind but on the main chain: compared at the block it had read
            progress(f"soak: the frontend's record is at {at}, the tip at {tip[0]}: compared at {at}")
        start = min(low or self.start_height, self.start_height)
        gate = asyncio.Semaphore(CHAIN_READS)

        async def block_at(h: int) -> tuple[int, dict]:
            async with gate:
                return h, await miner.call("getblock", await miner.call("getblockhash", h), True, True)
        blocks = await asyncio.gather(*(block_at(h) for h in range(start, at + 1)))
        chain = chain_spends(sorted(blocks, key=lambda b: b[0]), set(records))
        revoked = sorted(h for h, s in chain.items() if not s.vote)
        expired = set()
        if revoked:
            bits = bytes.fromhex(await miner.call("existsexpiredtickets", revoked) or "")
            expired = {h for i, h in enumerate(revoked) if i // 8 < len(bits) and bits[i // 8] >> (i % 8) & 1}
        f.chain_mismatches += record_vs_chain(records, chain, at, expired)
        f.chain_compared = (len(records), start, at, sum(s.vote for s in chain.values()), len(revoked))

    async def gather(self) -> None:
        f = self.facts
        f.seconds = self.clock()
        f.vsp_share = sum(self.share) / len(self.share) if self.share else 0.0
        miner = self.chain.miner.rpc
        try:
            rows = await asyncio.to_thread(self.vsp_rows)
        except sqlite3.Error as e:
            f.extra.append(f"soak: the VSP's database could not be read: {e}")
            rows = []
        confirmed = []
        for h, address, txid, status, _choices, conf in rows:
            f.recorded_fee_txids.add(txid or "")
            if h in f.tickets:
                t = f.tickets[h]
                t.vsp_fee, t.fee_address, t.fee_txid = status or "", address or "", txid or ""
            if conf and status == "confirmed":
                confirmed.append(h)
        revoked = [t for t in f.tickets.values() if t.fate == "revoked"]
        if revoked:  # a revocation follows a miss or an expiry: the chain says which
            bits = bytes.fromhex(await miner.call("existsexpiredtickets", [t.hash for t in revoked]) or "")
            for i, t in enumerate(revoked):
                t.fate = "expired" if i // 8 < len(bits) and bits[i // 8] >> (i % 8) & 1 else "missed"
        for t in f.tickets.values():  # a: how late a missed ticket's fee came, against its revocation's height
            if t.fate == "missed" and t.spender:
                try:
                    t.spent_height = (await miner.call("getrawtransaction", t.spender, 1)).get("blockheight")
                except RPC_ERRORS:
                    pass
        missed = {t.hash: t for t in f.tickets.values() if t.fate == "missed"}
        for v in self.vsp.voters if missed else ():  # a: did our voting wallets cast the missed ones' votes?
            try:
                text = v.wallet.log_path.read_bytes()
            except OSError:
                continue
            for at, height, h in VOTING.findall(text):
                if h.decode() in missed:
                    t = missed[h.decode()]
                    t.vote_cast += f"{', ' if t.vote_cast else ''}{v.name} at {at.decode()} on block {height.decode()}"
        for t in f.tickets.values():  # c: the vote's bits against the choices last set
            if t.fate == "voted" and t.choices_set is not None and getattr(t, "vote_txid", ""):
                try:
                    vote = await miner.call("getrawtransaction", t.vote_txid, 1)
                except RPCError:  # a vote in a block the chain has left since (a reorganisation)
                    continue
                script = vote["vout"][1]["scriptPubKey"]["hex"]
                t.votebits = int.from_bytes(bytes.fromhex(script[4:8]), "little")
                t.expected_votebits = 1  # no agendas on simnet's vote version: bit 0 alone
        receipts = await self.vsp.fee_wallet.rpc.call("listtransactions", "*", 100000)
        f.fee_receipts = [(x["txid"], x["address"]) for x in receipts if x.get("category") == "receive"
                          and x.get("txtype", "regular") == "regular"]
        if confirmed:  # b: every confirmed live ticket in every voting wallet
            live_bits = bytes.fromhex(await miner.call("existslivetickets", confirmed) or "")
            live = {h for i, h in enumerate(confirmed) if i // 8 < len(live_bits) and live_bits[i // 8] >> (i % 8) & 1}
            for v in self.vsp.voters:
                try:  # gettransaction, not ticketinfo: the wallet still takes blocks in (rpcclient/exccwallet.py)
                    have = {h for h in sorted(live) if await holds_transaction(v.wallet.rpc, h)}
                except RPC_ERRORS as e:
                    f.missing_on_voters.append(f"{v.name}'s wallet unreachable at the end: {e}")
                    continue
                f.missing_on_voters += [f"confirmed live ticket {h} not in {v.name}'s voting wallet"
                                        for h in sorted(live - have)]
        try:
            await self.compare_with_chain()
        except (sqlite3.Error, *RPC_ERRORS) as e:
            f.chain_mismatches.append(f"f: the record could not be compared with the chain: {type(e).__name__}: {e}")
        f.log_bytes = {n: self.log_size(n) - self.log_start.get(n, 0) for n in self.vspd_children()}
        if self.args.short:
            missing = sorted(set(KINDS) - {r.kind for r in f.faults})
            if missing:
                f.extra.append(f"soak --short: fault kinds not run: {', '.join(missing)}")
            c = counts(f)
            if c["called"] < 100:
                f.extra.append(f"soak --short: only {c['called']} VSP tickets called (at least 100 wanted)")


def ancestors() -> set[int]:
    """This process and those that started it (a shell that ran `vspd-simnet soak --root DIR` names DIR too)."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


SECRET_FLAG = re.compile(r"(--\w*pass\w*=)\S+")  # --pass=, --password=, --exccdpassword=, --rpcpass=


def leftovers(root: Path) -> list[tuple[int, str]]:
    """Processes whose command line names the soak's folder (none should outlive it), passwords masked: the
    line goes into the printed table."""
    out, mine = [], ancestors()
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) not in mine:
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if re.search(re.escape(str(root)) + r"(/|\s|$)", cmd):  # not a sibling such as DIR2
                out.append((int(d.name), SECRET_FLAG.sub(r"\1<redacted>", cmd)[:160]))
    return out


async def fund(net: SimnetVSP, stakers: list[WalletNode], outputs: int = 25, coins: float = 4.0) -> None:
    """Many outputs each: a purchase locks the coins it spends until a block confirms its change."""
    txids = []
    for s in stakers:
        for _ in range(outputs):
            txids.append(await net.chain.send(await address(s), coins))

    async def confirmed() -> bool:
        return all([await net.chain.confirmations(t) >= 1 for t in txids])
    await net.chain.mine_until(confirmed, "staker funds confirmed", max_blocks=10)


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    progress(f"soak seed {seed} (replay with --seed {seed})")
    binaries = await asyncio.to_thread(find_peers, None, None, None, None, progress)
    root = args.root.resolve()
    data_mount, replica_mount = root / "vsp" / "data", root / "vsp" / "replica"
    for m in (data_mount, replica_mount):  # an earlier soak cut short (kill -9) left its mounts
        unmount(m)
    prepare_root(root, keep=False)
    mount_tmpfs(data_mount, DATA_SIZE)
    mount_tmpfs(replica_mount, REPLICA_SIZE)
    net = SimnetVSP(binaries, root, progress=progress)
    stakers = [net.staker]
    for i in range(2, args.stakers + 1):
        s = WalletNode(f"staker{i}", binaries.exccwallet, root / "wallets" / f"staker{i}", net.chain.logdir,
                       net.chain.miner, seed=f"{0x50 + i:02x}" * 32, passphrase=f"staker{i}-pass")
        net.chain.nodes.append(s)
        stakers.append(s)
    soak: Soak | None = None
    interrupted = False
    try:
        async with asyncio.TaskGroup() as tg:
            async def body() -> None:
                nonlocal soak
                await net.start()
                for s in stakers[1:]:
                    s.flags = list(net.staker.flags)
                    await s.start()
                await fund(net, stakers)
                (root / "soak").mkdir(mode=0o700, exist_ok=True)
                shutil.copy2(data_mount / "simnet" / "vspd.key", root / "soak" / "vspd.key")  # the operator's safe copy
                soak = Soak(net, stakers, args, seed)
                await soak.run()
            work = tg.create_task(body())
            stopping = tg.create_task(stop.wait())
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
                progress("soak: interrupted")
                interrupted = True
            stopping.cancel()
    finally:
        if soak is not None:
            soak.faults.release()
        progress("soak: stopping the network")
        for s in stakers[1:]:
            await s.stop()
        await net.stop()
        unmount(data_mount)
        unmount(replica_mount)
        for pid, cmd in leftovers(root):
            if soak is not None:
                soak.facts.extra.append(f"process left behind (killed): {pid} {cmd}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if interrupted:
        return 130
    return soak.report() if soak is not None else 1


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.stakers <= 4 or not 0 < args.minutes <= 24 * 60 or not 0.2 <= args.block_interval <= 60:
        raise SystemExit("vspd-simnet soak: --stakers 1-4, --minutes up to 1440, --block-interval 0.2-60 s")
    try:
        return asyncio.run(run(args))
    except (PeerError, ChildError) as e:
        print(f"vspd-simnet soak: {e}", file=sys.stderr)
        return 1
    except ExceptionGroup as eg:
        for e in eg.exceptions:
            print(f"vspd-simnet soak: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
