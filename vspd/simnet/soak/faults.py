"""The soak's faults, done to the real processes and filesystems of a running simnet VSP, and repaired.

Each fault takes one part down, keeps it down for the planned time, and
repairs it (restart, SIGCONT, space freed, replica writable again). The
frontend's data folder and its replica each sit on a small tmpfs of the
soak's own, so "out of space" and "replica unreachable" are real errors
(ENOSPC, EROFS) that vspd and litestream get from the kernel.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Awaitable, Callable

from rpcclient.errors import NodeUnavailable, RPCError
from vspd.simnet.children import ChildError
from vspd.simnet.deployment import Deployment, VoterSite
from vspd.simnet.reorg import reorg_network
from vspd.simnet.soak.checks import FaultRecord, block_spends, block_txids
from vspd.simnet.soak.plan import Planned

WALLET_ANSWER_WITHIN = 20.0
REORG_WAIT = 30.0      # seconds of blocks a reorganisation waits for one holding a VSP vote or fee among its depth
REORG_TIMEOUT = 120.0  # reorg_network's own bound (it takes 3-6 s)
BLOCK_IN_FLIGHT = 100.0  # a block being mined is waited for this long (its generate times out after 90 s)
DATA_SIZE = "256m"
REPLICA_SIZE = "256m"


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "vspd-soak", str(path)], check=True)


def unmount(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def children_of(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def fill(filler: Path) -> None:
    """Write `filler` until the kernel says ENOSPC (unbuffered: no flush left to fail at close)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            block = b"\0" * size
            while True:
                try:
                    if os.write(fd, block) < size:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)


class Faults:
    """Does planned faults to `vsp`; `before_lost` is awaited for an acknowledged payfee before frontend-lost."""

    def __init__(self, vsp: Deployment, data_mount: Path, replica_mount: Path, key_copy: Path,
                 clock: Callable[[], float], progress: Callable[[str], None],
                 before_lost: Callable[[], Awaitable[str]], mining: asyncio.Lock,
                 probe: Callable[[FaultRecord], Awaitable[None]], net=None, mine_gate: asyncio.Event | None = None,
                 vsp_known: Callable[[], Awaitable[tuple[set[str], dict[str, str]]]] | None = None):
        self.vsp = vsp
        self.data_mount, self.replica_mount, self.key_copy = data_mount, replica_mount, key_copy
        self.clock, self.progress, self.before_lost, self.mining = clock, progress, before_lost, mining
        self.probe = probe  # one /status look while the fault is on: a down time shorter than the poll is seen
        self.stopped: list[int] = []  # pids under SIGSTOP, so that the soak can SIGCONT them if cut short
        self.holding = ""  # the target a fault has down on purpose: the supervisor leaves it alone
        self.net = net  # the SimnetVSP, for reorganisations
        self.mine_gate = mine_gate  # the soak's mining loop mines only while it is set
        self.vsp_known = vsp_known  # the VSP's tickets and {fee txid: ticket}, from its database

    def site(self, name: str) -> VoterSite:
        return next(v for v in self.vsp.voters if v.name == name)

    async def run(self, p: Planned, record: FaultRecord) -> None:
        self.progress(f"fault {p.kind} on {p.target} ({p.down:.0f} s): start")
        self.holding = p.target
        try:
            await getattr(self, "_" + p.kind.replace("-", "_"))(p, record)
        finally:
            self.holding = ""
            record.end = self.clock()
            self.progress(f"fault {p.kind} on {p.target}: end after {record.end - record.start:.0f} s"
                          + (f" ({record.note})" if record.note else ""))

    # -- voter side ----------------------------------------------------------
    async def repair(self, v: VoterSite) -> None:
        """Every part of a voter site running again, in start order."""
        if v.node is not self.vsp.chain.miner and not (v.node.child and v.node.child.running):
            await v.node.start()
        if not (v.wallet.child and v.wallet.child.running):
            await v.wallet.start(wait_synced=False)
        if not v.vspd.running:
            await v.vspd.start()

    async def _voter_kill(self, p: Planned, r: FaultRecord) -> None:
        v = self.site(p.target)
        await v.vspd.kill()
        await asyncio.sleep(p.down)
        await self.repair(v)

    async def _wallet_kill(self, p: Planned, r: FaultRecord) -> None:
        v = self.site(p.target)
        await v.wallet.child.kill()
        await asyncio.sleep(p.down)
        await self.repair(v)

    async def _exccd_kill(self, p: Planned, r: FaultRecord) -> None:
        v = self.site(p.target)
        await v.node.child.kill()
        await asyncio.sleep(p.down)
        await self.repair(v)
        if not v.wallet.child.running:
            r.note = "its wallet exited with it"

    async def _hang(self, pid: int, down: float) -> None:
        os.kill(pid, signal.SIGSTOP)
        self.stopped.append(pid)
        try:
            await asyncio.sleep(down)
        finally:
            os.kill(pid, signal.SIGCONT)
            self.stopped.remove(pid)

    async def _voter_hang(self, p: Planned, r: FaultRecord) -> None:
        await self._hang(self.site(p.target).vspd.pid, p.down)

    async def _wallet_hang(self, p: Planned, r: FaultRecord) -> None:
        v = self.site(p.target)
        await self._hang(v.wallet.child.pid, p.down)
        # exccwallet 2.7.6 sometimes never answers getbestblock again after SIGCONT (it still answers
        # version): the voter's /status names it, and its operator restarts it; so does the soak.
        try:
            await asyncio.wait_for(v.wallet.rpc.call("getbestblock"), WALLET_ANSWER_WITHIN)
        except (asyncio.TimeoutError, NodeUnavailable, RPCError, OSError) as e:
            r.note = (f"the wallet did not answer getbestblock {WALLET_ANSWER_WITHIN:.0f} s after SIGCONT "
                      f"({type(e).__name__}); restarted, as its operator would")
            await v.wallet.child.kill()
            await self.repair(v)

    # -- frontend side -------------------------------------------------------
    async def kill_frontend(self, with_litestream: bool) -> None:
        f = self.vsp.frontend
        helpers = children_of(f.pid) if with_litestream and f.running else []
        await f.kill()
        for pid in helpers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def _frontend_kill(self, p: Planned, r: FaultRecord) -> None:
        await self.kill_frontend(with_litestream=False)  # its litestream is left behind, as after a crash
        await self.probe(r)
        await asyncio.sleep(p.down)
        await self.vsp.frontend.start()

    async def _frontend_lost(self, p: Planned, r: FaultRecord) -> None:
        r.note = await self.before_lost()
        await self.kill_frontend(with_litestream=True)
        await self.probe(r)
        datadir = self.data_mount / "simnet"
        shutil.rmtree(datadir, ignore_errors=True)
        # the new machine, as docs/operator-guide.md says: vspd.conf, certs/ and the key file put back, restore
        datadir.mkdir(mode=0o700)
        shutil.copy2(self.key_copy, datadir / "vspd.key")
        t0 = time.monotonic()
        out = await self.vsp.admin("restore", check=False)
        r.note += f"; restore took {time.monotonic() - t0:.1f} s: {out.strip().splitlines()[-1] if out.strip() else ''}"
        await self.vsp.frontend.start()

    async def _frontend_exccd_restart(self, p: Planned, r: FaultRecord) -> None:
        miner = self.vsp.chain.miner
        async with self.mining:  # no block while the miner is away
            await miner.child.stop()
            await asyncio.sleep(p.down)
            await miner.start()

    async def _disk_full(self, p: Planned, r: FaultRecord) -> None:
        filler = self.data_mount / "soak-filler"
        try:
            await asyncio.to_thread(fill, filler)
            r.note = f"{shutil.disk_usage(self.data_mount).free} bytes left"
            await asyncio.sleep(p.down)
        finally:
            filler.unlink(missing_ok=True)

    async def _replica_down(self, p: Planned, r: FaultRecord) -> None:
        remount(self.replica_mount, "ro")
        try:
            await asyncio.sleep(p.down)
        finally:
            remount(self.replica_mount, "rw")

    # -- the chain -----------------------------------------------------------
    async def no_block_in_flight(self) -> None:
        await asyncio.wait_for(self.mining.acquire(), BLOCK_IN_FLIGHT)
        self.mining.release()

    async def vsp_blocks(self, hashes: list[str], tickets: set[str],
                         fees: dict[str, str]) -> tuple[list[str], list[str]]:
        """The VSP tickets whose vote, and those whose fee transaction, the blocks `hashes` hold."""
        miner = self.vsp.chain.miner.rpc
        votes, paid = [], []
        for h in hashes:
            block = await miner.call("getblock", h, True, True)
            votes += [t for t, _, vote in block_spends(block) if vote and t in tickets]
            paid += [fees[x] for x in sorted(block_txids(block)) if x in fees]
        return votes, paid

    async def _reorg(self, p: Planned, r: FaultRecord) -> None:
        """The last `p.depth` blocks leave the main chain (reorg_network), once one of them holds a VSP ticket's
        vote or fee transaction: the soak's mining stops at each new block to look, for up to REORG_WAIT s."""
        miner = self.vsp.chain.miner.rpc
        tickets, fees = await self.vsp_known()
        t0 = time.monotonic()
        self.mine_gate.clear()
        try:
            await self.no_block_in_flight()
            while True:  # the chain stands still here: the blocks looked at are the ones that will leave
                tip = int(await miner.call("getblockcount"))
                tops = [await miner.call("getblockhash", h) for h in range(tip - p.depth + 1, tip + 1)]
                votes, paid = await self.vsp_blocks(tops, tickets, fees)
                if votes or paid or time.monotonic() - t0 > REORG_WAIT:
                    break
                self.mine_gate.set()  # one more block
                while int(await miner.call("getblockcount")) <= tip and time.monotonic() - t0 <= REORG_WAIT:
                    await asyncio.sleep(0.1)
                self.mine_gate.clear()
                await self.no_block_in_flight()
            waited = time.monotonic() - t0
            res = await reorg_network(self.net, p.depth, lambda line: self.progress(f"  reorg: {line}"),
                                      REORG_TIMEOUT)
        finally:
            self.mine_gate.set()
        left, h = [], res.old_tip[1]  # the blocks that left, from the old tip down to the fork point
        while h != res.fork[1] and len(left) < res.orphaned + 1:
            left.append(h)
            h = (await miner.call("getblockheader", h, True))["previousblockhash"]
        r.orphaned_votes, r.orphaned_fees = await self.vsp_blocks(left, tickets, fees)
        r.depth = res.orphaned
        caught = (f"VSP votes of {', '.join(x[:12] for x in r.orphaned_votes) or 'none'}, VSP fees of "
                  f"{', '.join(x[:12] for x in r.orphaned_fees) or 'none'} orphaned"
                  if r.orphaned_votes or r.orphaned_fees else f"no VSP vote or fee in them ({waited:.0f} s waited)")
        r.note = (f"depth {res.orphaned}, fork point {res.fork[0]} {res.fork[1][:16]}, old tip {res.old_tip[0]} "
                  f"{res.old_tip[1][:16]}, new tip {res.new_tip[0]} {res.new_tip[1][:16]}, {res.seconds:.1f} s "
                  f"after {waited:.1f} s waiting for a VSP vote or fee; {caught}")

    async def supervise(self, report: Callable[[str], None]) -> None:
        """What systemd does with Restart=on-failure (contrib/systemd): a part that exits by itself is started
        again after RestartSec (5 s vspd, 10 s exccd and exccwallet); each such exit is reported."""
        while True:
            await asyncio.sleep(2.0)
            parts = [("frontend", self.vsp.frontend, 5.0, self.vsp.frontend.start)]
            for v in self.vsp.voters:
                parts.append((v.name, v.vspd, 5.0, v.vspd.start))
                parts.append((v.name, v.wallet.child, 10.0, lambda w=v.wallet: w.start(wait_synced=False)))
                if v.node is not self.vsp.chain.miner:
                    parts.append((v.name, v.node.child, 10.0, v.node.start))
            for target, child, delay, start in parts:
                if child is None or child.running or child.proc is None or self.holding == target:
                    continue
                report(f"{child.name} exited by itself (status {child.proc.returncode}) at {self.clock():.0f} s; "
                       f"started again after {delay:.0f} s as systemd would")
                await asyncio.sleep(delay)
                if self.holding != target and not child.running:
                    try:
                        await start()
                    except (ChildError, NodeUnavailable, RPCError, OSError) as e:  # the next round tries again
                        report(f"{child.name} could not be started again: {type(e).__name__}: {e}")
                break

    def release(self) -> None:
        """SIGCONT anything a cut-short hang left stopped."""
        for pid in list(self.stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped.clear()
