"""This VSP deployed on a simnet as in production: a frontend, voters beside voting wallets, a fee wallet.

Each voter has its own exccd (peered to the miner) and its own voting
exccwallet (`--enablevoting --manualtickets`, unlocked, RPC mode); the
frontend uses the miner's exccd as its own node; the fee wallet's account
xpub is the VSP's fee xpub, so fees arrive in a real wallet. Every vspd
process reads its options from a vspd.conf in its home, as an operator's would.
"""

import asyncio
import json
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .chain import Chain
from .children import Child, ChildError, run_once, tail
from .kept import Kept
from .nodes import HOST, ExccdNode, WalletNode, free_port, wait_until
from .peers import PeerBinaries
from .ports import log_since, log_size, start_with_fresh_ports

FEE_SEED = "fe" * 32
VOTER_SEEDS = ("a1" * 32, "a2" * 32, "a3" * 32, "a4" * 32, "a5" * 32)
VOTER_SERVING = "voter serving gRPC on"  # vspd/roles/voter.py, once it listens
VOTER_START_TIMEOUT = 60.0


def vspd_command(*args) -> list:
    return [sys.executable, "-m", "vspd.main", *args]


def vspadmin_command(*args) -> list:
    return [sys.executable, "-m", "vspd.admin.vspadmin", *args]


def write_conf(path: Path, options: dict) -> None:
    lines = ["[Application Options]"] + [f"{k} = {v}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


@dataclass
class VoterSite:
    name: str
    node: ExccdNode
    wallet: WalletNode
    home: Path
    grpc_port: int
    vspd: Child
    started: bool = False  # once up, its address is in the frontend's conf: the port stays

    @property
    def address(self) -> str:
        return f"{self.name}@{HOST}:{self.grpc_port}"


class Deployment:
    name = "vspd"  # as it appears in the chain's diagnostics

    def __init__(self, chain: Chain, binaries: PeerBinaries, root: Path, *, voters: int = 3, vspfee: float = 3.0,
                 own_voter_nodes: bool = True, minvoters: int = 2, healthinterval: float = 1.0,
                 kept: Kept | None = None):
        if not 1 <= voters <= len(VOTER_SEEDS):
            raise ValueError(f"voters must be between 1 and {len(VOTER_SEEDS)}")
        self.chain = chain
        self.root = root
        self.home = root / "vsp"
        self.logdir = chain.logdir
        self.vspfee, self.minvoters, self.healthinterval = vspfee, minvoters, healthinterval
        kept = kept or Kept(root)  # the same site and password after a --keep restart
        self.adminpass = kept.get("adminpass", lambda: secrets.token_hex(8))
        self.kept = kept
        self.port = kept.get("site_port", free_port)
        self.site_started = False  # a site port drawn by this run may move until the frontend first starts
        self.fee_wallet = WalletNode("feewallet", binaries.exccwallet, root / "wallets" / "fee", self.logdir,
                                     chain.miner, seed=FEE_SEED, passphrase="fee-pass", flags=("--gaplimit=200",))
        self.voters: list[VoterSite] = []
        for i in range(1, voters + 1):
            name = f"v{i}"
            node = (ExccdNode(f"{name}-exccd", binaries.exccd, root / "nodes" / name, self.logdir, connect=chain.miner)
                    if own_voter_nodes else chain.miner)
            wallet = WalletNode(f"{name}-wallet", binaries.exccwallet, root / "wallets" / name, self.logdir, node,
                                seed=VOTER_SEEDS[i - 1], passphrase=f"{name}-pass",
                                flags=("--enablevoting", "--manualtickets"))
            home = root / "vsp" / f"voter-{name}"
            vspd = Child(f"{name}-vspd", vspd_command("--role=voter", f"--homedir={home}"), self.logdir / f"{name}-vspd.log")
            self.voters.append(VoterSite(name, node, wallet, home, free_port(), vspd))
        self.frontend = Child("frontend", vspd_command("--role=frontend", f"--homedir={self.home}"),
                              self.logdir / "frontend.log")
        self.pubkey = ""
        chain.nodes += [self.fee_wallet] + [n for v in self.voters for n in (v.node, v.wallet)
                                            if n is not chain.miner] + [self]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.logdir

    def tail(self, lines: int = 12) -> str:
        return "\n".join(f"[{c.name}] {line}" for c in [self.frontend] + [v.vspd for v in self.voters]
                         for line in tail(c.log_path, lines).splitlines())

    async def admin(self, *args, home: Path | None = None, check: bool = True) -> str:
        return await run_once("vspadmin", vspadmin_command(f"--homedir={home or self.home}", "--network=simnet", *args),
                              self.logdir / "vspadmin.log", check=check)

    # -- start ---------------------------------------------------------------
    async def start(self) -> None:
        await self.start_peers()
        await self.start_vspd()

    def wallets(self) -> list[WalletNode]:
        return [self.fee_wallet] + [v.wallet for v in self.voters]

    async def start_peers(self) -> None:
        """The fee wallet and each voter's exccd and voting wallet."""
        await self.fee_wallet.start()
        await asyncio.gather(*(self._start_voter_peers(v) for v in self.voters))

    async def start_vspd(self) -> None:
        """Certificates and database (once), then the voters and the frontend."""
        if not (self.home / "data" / "simnet" / "vspd.db").exists():
            xpub = await self.fee_wallet.rpc.call("getmasterpubkey", "default")
            await self.admin("gencerts", f"--voters={','.join(v.name for v in self.voters)}")
            await self.admin("createdatabase", xpub)
        await asyncio.gather(*(self.start_voter(v) for v in self.voters))
        self.write_frontend_conf()
        await self.start_frontend()

    async def start_voter(self, v: VoterSite) -> None:
        """Its vspd, serving gRPC; again on a fresh port (bounded) if its port was taken meanwhile."""
        async def once() -> None:
            self._write_voter_conf(v)
            mark = log_size(v.vspd.log_path)
            await v.vspd.start()

            async def serving() -> bool:
                return VOTER_SERVING in log_since(v.vspd.log_path, mark)
            await wait_until(serving, VOTER_START_TIMEOUT, f"{v.vspd.name} to serve gRPC", v.vspd.check_alive)

        async def move() -> bool:
            if v.started:
                return False
            v.grpc_port = free_port()
            return True
        await start_with_fresh_ports(once, lambda: v.vspd, v.vspd.log_path, move)
        v.started = True

    async def _start_voter_peers(self, v: VoterSite) -> None:
        if v.node is not self.chain.miner:
            await v.node.start()
            await self.chain.wait_for_peers(v.node)
        await v.wallet.start()

    def _write_voter_conf(self, v: VoterSite) -> None:
        certs = v.home / "certs"
        if not certs.exists():
            shutil.copytree(self.home / "certs" / f"voter-{v.name}", certs)
        write_conf(v.home / "vspd.conf", {
            "network": "simnet", "loglevel": "info", "exccdhost": v.node.rpc_address, "exccduser": v.node.user,
            "exccdpass": v.node.password, "exccdcert": v.node.cert_path, "wallethost": v.wallet.rpc_address,
            "walletuser": v.wallet.user, "walletpass": v.wallet.password, "walletcert": v.wallet.cert_path,
            "grpclisten": f"{HOST}:{v.grpc_port}"})

    def write_frontend_conf(self, home: Path | None = None, port: int | None = None) -> None:
        """The frontend's vspd.conf: this deployment's, or another frontend's (its own home and port)."""
        miner = self.chain.miner
        write_conf((home or self.home) / "vspd.conf", {
            "network": "simnet", "loglevel": "info", "exccdhost": miner.rpc_address, "exccduser": miner.user,
            "exccdpass": miner.password, "exccdcert": miner.cert_path, "listen": f"{HOST}:{port or self.port}",
            "supportemail": "operator@localhost", "adminpass": self.adminpass, "vspfee": self.vspfee,
            "designation": "simnet VSP", "voters": ",".join(v.address for v in self.voters),
            "minvoters": self.minvoters, "healthinterval": self.healthinterval, "ticketpage": True})

    def other_frontend(self, name: str, home: Path, port: int) -> Child:
        """A second frontend on these voters (same voter-link certificates), e.g. over an imported database."""
        if not (home / "certs").exists():
            shutil.copytree(self.home / "certs", home / "certs")
        self.write_frontend_conf(home, port)
        return Child(name, vspd_command("--role=frontend", f"--homedir={home}"), self.logdir / f"{name}.log")

    async def start_frontend(self, timeout: float = 60.0) -> None:
        """Start it, again on a fresh site port (bounded) if this run drew the port and found it taken."""
        async def move() -> bool:
            if self.site_started or "site_port" not in self.kept.drawn:
                return False
            self.port = free_port()
            self.kept.put("site_port", self.port)
            self.write_frontend_conf()
            return True
        await start_with_fresh_ports(lambda: self._start_frontend_once(timeout), lambda: self.frontend,
                                     self.frontend.log_path, move)
        self.site_started = True

    async def _start_frontend_once(self, timeout: float) -> None:
        await self.frontend.start()
        await self.wait_status(lambda s: s.get("status") == "ok", timeout, "the frontend to report ok")
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/api/v3/vspinfo") as r:
                self.pubkey = (await r.json())["pubkey"]

    async def status(self) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/status", timeout=aiohttp.ClientTimeout(total=10)) as r:
                text = await r.text()
                return r.status, (json.loads(text) if r.status != 429 else {})

    async def wait_status(self, check, timeout: float, what: str) -> dict:
        seen: dict = {}

        async def ok() -> bool:
            nonlocal seen
            try:
                code, body = await self.status()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                return False
            if body:
                seen = body
            return bool(body) and check(body)
        try:
            await wait_until(ok, timeout, what, self.frontend.check_alive, interval=0.4)
        except ChildError as e:
            raise ChildError(f"{e}; last /status: {seen}\n{self.tail()}") from None
        return seen

    # -- stop ----------------------------------------------------------------
    async def stop(self) -> None:
        await self.frontend.stop()
        await asyncio.gather(*(v.vspd.stop() for v in self.voters))
        await asyncio.gather(*(v.wallet.stop() for v in self.voters))
        await asyncio.gather(*(v.node.stop() for v in self.voters if v.node is not self.chain.miner))
        await self.fee_wallet.stop()
