"""The simnet chain itself: a mining exccd and a keeper wallet that keeps the chain alive.

Blocks are mined on demand with `generate 1`. From height 127 exccd refuses
a block that would leave the ticket pool exhausted at stake validation
height (144), and from 144 every block needs at least 3 votes; so before
every block the keeper wallet, which votes its own tickets, buys enough to
hold its stock of live, immature and unmined tickets at TICKET_STOCK. With
that stock the live pool stays near 15 tickets (the rest are immature), so
any ticket, ours included, is called within a few blocks of going live.
"""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from rpcclient.errors import NodeUnavailable, RPCError
from vspd.chain import wif as wifmod
from vspd.chain.params import SIMNET

from .children import ChildError
from .nodes import ExccdNode, WalletNode, wait_until
from .peers import PeerBinaries

SVH = 144                 # simnet stake validation height: votes from here on
FIRST_TICKET_HEIGHT = 18  # the keeper's first coinbase (block 2) is spendable from here
TICKET_STOCK = 110        # > 5 + 18 blocks x 5 votes: what the exhaustion rule needs ahead, with room
MAX_BUY_PER_BLOCK = 20    # MaxFreshStakePerBlock on simnet
TICKET_FEE_MARGIN = 0.01  # coins per ticket beyond its price: its fee and its share of the split transaction
GENERATE_TIMEOUT = 90.0
PREMINED = 2               # blocks mined before the keeper wallet first starts
KEEPER_SEED = "6b" * 32   # simnet only: fixed so that a kept folder can be rebuilt


class StalledChain(ChildError):
    """A block could not be mined in time; the message carries the end of every peer's log."""


@dataclass(frozen=True)
class BoughtTicket:
    """A ticket as a wallet registers it with a VSP: its transaction, its parent's, and the commitment key."""
    hash: str
    hex: str
    parent_hex: str
    commitment_key: bytes  # signs the wallet's requests to the VSP


async def keep_ticket_stock(keeper, miner, height: int, progress: Callable[[str], None]) -> int:
    """The keeper wallet buys enough tickets to hold its stock at TICKET_STOCK (what each block needs; also used
    by `vspd-simnet reorg` before its side branch); how many it bought."""
    if height < FIRST_TICKET_HEIGHT:
        return 0
    info = await keeper.call("getstakeinfo")
    have = info.get("live", 0) + info.get("immature", 0) + info.get("ownmempooltix", 0)
    want = min(MAX_BUY_PER_BLOCK, TICKET_STOCK - have)
    if want <= 0:
        return 0
    # In a new chain only a coinbase or two has matured: buy what that pays for, the rest next block
    # (asking for all of it failed with "insufficient balance" at every fresh start, read as an error).
    sdiff = await miner.call("getstakedifficulty")
    price = max(float(sdiff["current"]), float(sdiff["next"])) + TICKET_FEE_MARGIN
    spendable = float((await keeper.call("getbalance", "default", 1))["balances"][0]["spendable"])
    want = min(want, int(spendable // price))
    if want <= 0:
        return 0
    try:
        await keeper.call("purchaseticket", "default", 0, 1, "", want)
        return want
    except RPCError as e:  # too early or short of funds: the next block tries again
        progress(f"keeper could not buy {want} tickets at height {height} (it tries again next block): "
                 f"{e.message}")
        return 0


class Chain:
    def __init__(self, binaries: PeerBinaries, root: Path, progress: Callable[[str], None] = print):
        self.root = root
        self.logdir = root / "logs"
        self.progress = progress
        self.miner = ExccdNode("miner", binaries.exccd, root / "miner", self.logdir)
        self.keeper = WalletNode("keeper", binaries.exccwallet, root / "wallets" / "keeper", self.logdir,
                                 self.miner, seed=KEEPER_SEED, passphrase="keeper-pass", flags=("--enablevoting",))
        self.nodes: list = [self.miner, self.keeper]  # everything whose log tells a story when a block stalls
        self._mining = asyncio.Lock()
        self.blocks_mined = 0
        self.mining_seconds = 0.0

    async def start(self) -> None:
        self.miner.miningaddr = await self.keeper.create()
        await self.miner.start()
        if await self.height() < PREMINED:
            # A new wallet that finds its addresses unused on first sync moves to another coin type
            # and stops owning the mining address: it must find coinbases paid to it.
            await self.miner.rpc.call("generate", PREMINED, timeout=GENERATE_TIMEOUT)
        await self.keeper.start()

    async def stop(self) -> None:
        await self.keeper.stop()
        await self.miner.stop()

    async def height(self) -> int:
        return await self.miner.height()

    async def _keep_ticket_stock(self, height: int) -> int:
        return await keep_ticket_stock(self.keeper.rpc, self.miner.rpc, height, self.progress)

    async def mine(self, blocks: int = 1) -> int:
        """Mine `blocks` blocks, keeping the ticket stock before each; the new height."""
        async with self._mining:
            height = await self.height()
            for _ in range(blocks):
                await self._keep_ticket_stock(height)
                t0 = time.monotonic()
                try:
                    await self.miner.rpc.call("generate", 1, timeout=GENERATE_TIMEOUT)
                except (NodeUnavailable, RPCError) as e:
                    raise StalledChain(f"block {height + 1} was not mined: {e}\n{self.diagnostics()}") from None
                self.mining_seconds += time.monotonic() - t0
                self.blocks_mined += 1
                height += 1
            return height

    async def mine_to(self, target: int, every: int = 25) -> int:
        height = await self.height()
        while height < target:
            height = await self.mine(min(every, target - height))
            self.progress(f"mined to height {height} of {target}")
        return height

    async def mine_until(self, predicate: Callable[[], Awaitable[bool]], what: str, max_blocks: int = 60,
                         settle: float = 1.5) -> int:
        """Mine one block at a time until `predicate()` holds; StalledChain after `max_blocks`."""
        for n in range(max_blocks + 1):
            deadline = time.monotonic() + settle
            while True:  # give the VSP and the wallets a moment to act on the last block
                if await predicate():
                    return n
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.2)
            if n < max_blocks:
                await self.mine(1)
        raise StalledChain(f"{what}: not reached after {max_blocks} blocks\n{self.diagnostics()}")

    async def buy_ticket_for(self, voting_address: str) -> BoughtTicket:
        """A ticket the keeper buys whose votes belong to `voting_address`, a key of the caller's own."""
        ticket = (await self.keeper.rpc.call("purchaseticket", "default", 0, 1, voting_address, 1))[0]
        tx = await self.miner.rpc.call("getrawtransaction", ticket, 1)
        parent = await self.miner.rpc.call("getrawtransaction", tx["vin"][0]["txid"], 1)
        commitment = tx["vout"][1]["scriptPubKey"]["addresses"][0]
        key = wifmod.decode(await self.keeper.rpc.call("dumpprivkey", commitment), SIMNET).privkey
        return BoughtTicket(ticket, tx["hex"], parent["hex"], key)

    async def send(self, address: str, coins: float) -> str:
        return await self.keeper.rpc.call("sendtoaddress", address, coins)

    async def wait_synced(self, wallets: list[WalletNode], timeout: float = 60.0) -> None:
        await asyncio.gather(*(w.wait_synced(timeout) for w in wallets))

    async def confirmations(self, txid: str) -> int:
        try:
            return int((await self.miner.rpc.call("getrawtransaction", txid, 1)).get("confirmations", 0))
        except RPCError:
            return -1

    async def wait_for_peers(self, node: ExccdNode, timeout: float = 60.0) -> None:
        """A node connected to the miner has its chain."""
        async def caught_up() -> bool:
            return await node.height() >= await self.height()
        await wait_until(caught_up, timeout, f"{node.name} to sync from the miner")

    def diagnostics(self, lines: int = 12) -> str:
        return "\n".join(f"--- {n.name} ({n.log_path}):\n{n.tail(lines)}" for n in self.nodes)
