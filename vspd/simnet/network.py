"""The whole local VSP on simnet: chain, this VSP, and a funded staker wallet that uses it.

Start order (../shared/spec/simnet.md §0, §1.7): the chain and the VSP's
own peers first; mine past stake validation height (the VSP fee is zero
below 143); start the frontend and read its pubkey; only then the staker
wallet, whose `--vsp.url` and `--vsp.pubkey` are read once at its start.
"""

import time
from pathlib import Path
from typing import Callable

from .chain import SVH, Chain
from .deployment import Deployment
from .kept import Kept
from .nodes import HOST, Daemon, ExccdNode, WalletNode, credential, free_port
from .reorg import NodeRef, Topology, write_topology
from .peers import PeerBinaries

STAKER_SEED = "5a" * 32
READY_HEIGHT = SVH + 6       # past SVH with some votes behind it: fees are non-zero, voting works
STAKER_FUNDS = (50.0, 50.0, 50.0, 50.0)  # several outputs, so a purchase needs no split transaction


class SimnetVSP:
    def __init__(self, binaries: PeerBinaries, root: Path, *, voters: int = 3, vspfee: float = 3.0,
                 own_voter_nodes: bool = True, progress: Callable[[str], None] = print):
        self.root = root
        self.binaries = binaries
        self.progress = progress
        self.chain = Chain(binaries, root, progress)
        kept = Kept(root)  # what the banner printed last time stays true after a --keep restart
        self.vsp = Deployment(self.chain, binaries, root, voters=voters, vspfee=vspfee,
                              own_voter_nodes=own_voter_nodes, kept=kept)
        self.staker = WalletNode("staker", binaries.exccwallet, root / "wallets" / "staker", self.chain.logdir,
                                 self.chain.miner, seed=STAKER_SEED, passphrase="staker-pass",
                                 rpc_port=kept.get("staker_rpc_port", free_port),
                                 password=kept.get("staker_rpc_password", credential))
        if "staker_rpc_port" in kept.drawn:  # new this run: it may move if found taken at the first start
            self.staker.rpc_port_movable = True
            self.staker.on_move = lambda: kept.put("staker_rpc_port", self.staker.rpc_port)
        self.chain.nodes.append(self.staker)
        self.timings: dict[str, float] = {}
        self.up = False  # start() completed

    def _lap(self, what: str, t0: float) -> float:
        now = time.monotonic()
        self.timings[what] = now - t0
        self.progress(f"{what}: {now - t0:.1f} s")
        return now

    async def start(self) -> None:
        t = t0 = time.monotonic()
        self.progress("starting the miner exccd and the keeper wallet")
        await self.chain.start()
        miner, keeper = self.chain.miner, self.chain.keeper
        self.progress(f"exccd JSON-RPC API {'.'.join(map(str, miner.api))}, "
                      f"exccwallet JSON-RPC API {'.'.join(map(str, keeper.api))}")
        t = self._lap("chain started", t)
        self.progress("starting the fee wallet, and each voter's exccd and voting wallet")
        await self.vsp.start_peers()
        t = self._lap("VSP peers started", t)
        write_topology(self.root, self.topology())  # for `vspd-simnet reorg`, another process
        # At least one new block: a kept chain's old tip makes exccd report itself still syncing.
        target = max(READY_HEIGHT, await self.chain.height() + 1)
        await self.chain.mine_to(target)
        await self.chain.wait_synced(self.vsp.wallets())
        t = self._lap(f"mined to height {target}, wallets synced", t)  # a kept chain starts above READY_HEIGHT
        self.progress("starting the voters and the frontend")
        await self.vsp.start_vspd()
        t = self._lap("VSP started", t)
        await self.start_staker()
        await self.fund_staker()
        self._lap("staker funded", t)
        self._lap("network up", t0)
        self.up = True

    def exccd_nodes(self) -> list[ExccdNode]:
        """The network's exccd nodes, the miner first."""
        nodes = [self.chain.miner]
        return nodes + [v.node for v in self.vsp.voters if v.node not in nodes]

    def voting_wallets(self) -> list[WalletNode]:
        """The wallets that vote: the keeper (its own tickets) first, then the VSP's voting wallets."""
        return [self.chain.keeper] + [v.wallet for v in self.vsp.voters]

    def topology(self) -> Topology:
        def ref(n: Daemon) -> NodeRef:
            return NodeRef(n.name, HOST, n.rpc_port, n.user, n.password, str(n.cert_path))
        return Topology(str(self.binaries.exccd), self.chain.miner.miningaddr,
                        tuple(ref(n) for n in self.exccd_nodes()), tuple(ref(w) for w in self.voting_wallets()))

    async def start_staker(self) -> None:
        self.staker.flags = [f"--vsp.url={self.vsp.url}", f"--vsp.pubkey={self.vsp.pubkey}"]
        await self.staker.start()

    async def fund_staker(self, minimum: float = 100.0) -> None:
        if await self.staker.spendable() >= minimum:
            return
        address = await self.staker.new_address()
        txids = [await self.chain.send(address, coins) for coins in STAKER_FUNDS]

        async def confirmed() -> bool:
            return all([await self.chain.confirmations(t) >= 1 for t in txids]) and \
                await self.staker.spendable() >= minimum
        await self.chain.mine_until(confirmed, "staker funds confirmed", max_blocks=10)

    async def stop(self) -> None:
        """Everything it started. Stopped during start-up (Ctrl-C), the peers get SIGKILL: as quick as a stop
        after start-up (about 6 s) instead of up to 30 s waiting on a wallet still discovering addresses."""
        if not self.up:
            for node in self.chain.nodes:
                if isinstance(node, Daemon):
                    node.hurry = True
        await self.staker.stop()
        await self.vsp.stop()
        await self.chain.stop()
