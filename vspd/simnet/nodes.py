"""One real exccd or exccwallet on simnet: its folder, ports, credentials, process and RPC.

Start-up follows ../shared/spec/simnet.md §0: a node is ready when its
rpc.cert exists and an RPC call succeeds; a wallet reads the node's CA file
once, so it starts only after its node is ready, and it is ready when it
is connected to that node and has caught up with it.
"""

import asyncio
import re
import secrets
import time
from pathlib import Path
from typing import Awaitable, Callable

from rpcclient.errors import NodeUnavailable, RPCError

from .children import Child, ChildError, run_once, tail
from .ports import HOST, free_port, start_with_fresh_ports
from .rpc import JSONRPC

START_TIMEOUT = 90.0
WALLET_READY = b"wallet ready for general usage"  # exccwallet's rpcsyncer, once per start (and reconnect)
_MINING_ADDRESS = re.compile(r"Mining address: (S[1-9A-HJ-NP-Za-km-z]{25,40})")


def credential() -> str:
    return secrets.token_hex(12)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str,
                     alive: Callable[[], None] = lambda: None, interval: float = 0.25) -> None:
    """Poll `check` until true; `alive` raises if the process behind it died; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        alive()
        try:
            if await check():
                return
        except (NodeUnavailable, RPCError) as e:
            last = str(e)
        await asyncio.sleep(interval)
    raise ChildError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Daemon:
    """What a simnet exccd and exccwallet share: a folder, a port, credentials, a process and its RPC.

    A subclass names its API version key and range, the ready check, and its command line.
    """
    api_key = ""
    api_major, api_min_minor = 0, 0
    needs = ""  # the release the harness was built against, for the refusal message

    def __init__(self, name: str, binary: Path, home: Path, logdir: Path, rpc_timeout: float, *,
                 rpc_port: int | None = None, password: str | None = None):
        self.name = name
        self.binary = binary
        self.appdata = home
        self.log_path = logdir / f"{name}.log"
        # its own password, so a port clash fails to authenticate; both given where a kept network reuses them
        self.user, self.password = f"{name}-rpc", password or credential()
        self.rpc_port = rpc_port or free_port()
        # ports may move only until the first start succeeds (no one has them yet), and a given one never
        self.rpc_port_movable = rpc_port is None
        self.started = False
        self.on_move: Callable[[], None] = lambda: None  # e.g. to save the new port where a --keep run reads it
        self.child: Child | None = None
        self.hurry = False  # stop with SIGKILL: set while the network is still starting (see SimnetVSP.stop)
        self.api: tuple[int, int, int] | None = None
        self.rpc_timeout = rpc_timeout
        self.rpc = self._new_rpc()

    def _new_rpc(self) -> JSONRPC:
        return JSONRPC(self.name, HOST, self.rpc_port, self.user, self.password, self.cert_path,
                       timeout=self.rpc_timeout)

    async def move_ports(self) -> bool:
        """Fresh ports after a start found one taken; False if none may move."""
        if self.started or not self.rpc_port_movable:
            return False
        await self.rpc.close()
        self.rpc_port = free_port()
        self.rpc = self._new_rpc()
        self.on_move()
        return True

    @property
    def cert_path(self) -> Path:
        return self.appdata / "rpc.cert"

    @property
    def rpc_address(self) -> str:
        return f"{HOST}:{self.rpc_port}"

    def args(self) -> list:
        raise NotImplementedError

    async def ready(self) -> bool:
        raise NotImplementedError

    async def _start(self, what: str) -> None:
        """Start it, again on fresh ports (bounded) if a port of its was taken meanwhile."""
        await start_with_fresh_ports(lambda: self._start_once(what), lambda: self.child, self.log_path,
                                     self.move_ports)
        self.started = True

    async def _start_once(self, what: str) -> None:
        self.appdata.mkdir(parents=True, exist_ok=True)
        self.rpc.forget_certificate()
        self.child = await Child(self.name, self.args(), self.log_path, death_signal="KILL").start()

        async def ready() -> bool:
            return self.cert_path.exists() and await self.ready()
        await wait_until(ready, START_TIMEOUT, f"{self.name} to {what}", self.child.check_alive)
        answer = await self.rpc.call("version")
        try:
            v = answer[self.api_key]
            self.api = int(v["major"]), int(v["minor"]), int(v["patch"])
        except (KeyError, TypeError, ValueError):
            await self.stop()
            raise ChildError(f"{self.name} does not report {self.api_key} in its version answer: {answer}") from None
        if self.api[0] != self.api_major or self.api[1] < self.api_min_minor:
            await self.stop()
            raise ChildError(f"{self.binary} answers {self.api_key} {'.'.join(map(str, self.api))}; this harness "
                             f"needs {self.api_major}.x from {self.api_major}.{self.api_min_minor} ({self.needs})")

    async def stop(self) -> None:
        """SIGTERM, or SIGKILL in a hurry: a new exccwallet busy discovering its addresses answered SIGTERM
        only after 27 s (a Ctrl-C during start-up took that long). Their databases survive a kill."""
        if self.child is not None:
            if self.hurry:
                await self.child.kill()
            else:
                await self.child.stop()
        await self.rpc.close()

    def tail(self, lines: int = 15) -> str:
        return tail(self.log_path, lines)


class ExccdNode(Daemon):
    """A simnet exccd. The miner has a mining address; others connect to the miner only."""
    api_key, api_major, needs = "exccdjsonrpcapi", 7, "exccd 2.7.6 answers 7.0.0"

    def __init__(self, name: str, binary: Path, home: Path, logdir: Path, *, miningaddr: str = "",
                 connect: "ExccdNode | None" = None):
        super().__init__(name, binary, home, logdir, rpc_timeout=60.0)
        self.p2p_port = free_port()
        self.miningaddr = miningaddr
        self.connect = connect

    async def move_ports(self) -> bool:
        if self.started:
            return False
        await super().move_ports()  # the RPC port, if it may; the P2P port always may before the first start
        self.p2p_port = free_port()
        return True

    def args(self) -> list:
        args = [self.binary, "--simnet", f"--appdata={self.appdata}", f"--rpcuser={self.user}",
                f"--rpcpass={self.password}", f"--rpclisten={self.rpc_address}",
                f"--listen={HOST}:{self.p2p_port}", "--txindex", "--nofilelogging", "--maxsameip=0",
                "--nobanning", "--debuglevel=info"]
        # --nobanning: blocks mined a second apart often hold transactions a peer asked for and the miner's
        # mempool no longer has; each "not found" adds 10 to the ban score, and at 100 a voter's exccd banned
        # the miner for 24 h, stuck at height 24 (seen in CI)
        if self.miningaddr:
            args.append(f"--miningaddr={self.miningaddr}")
        if self.connect is not None:
            args.append(f"--connect={HOST}:{self.connect.p2p_port}")
        return args

    async def ready(self) -> bool:
        return isinstance(await self.rpc.call("getblockcount", timeout=5), int)

    async def start(self) -> None:
        await self._start("answer RPC")

    async def height(self) -> int:
        return int(await self.rpc.call("getblockcount"))


class WalletNode(Daemon):
    """A simnet exccwallet in RPC mode (never SPV), on its own node, created from a seed."""
    api_key, api_major, api_min_minor, needs = "exccwalletjsonrpcapi", 8, 8, "exccwallet 2.7.6 answers 8.9.0"

    def __init__(self, name: str, binary: Path, home: Path, logdir: Path, node: ExccdNode, *, seed: str,
                 passphrase: str, flags: tuple = (), rpc_port: int | None = None, password: str | None = None):
        super().__init__(name, binary, home, logdir, rpc_timeout=120.0, rpc_port=rpc_port, password=password)
        self.node = node
        self.seed, self.passphrase = seed, passphrase
        self.flags = list(flags)
        self.mining_address = ""
        self.log_mark = 0  # where this start's lines begin in the log (the log is appended to across starts)

    @property
    def created(self) -> bool:
        return (self.appdata / "simnet" / "wallet.db").exists()

    async def create(self) -> str:
        """Create the wallet offline from its seed (once); the first external address it prints."""
        if not self.created:
            answers = f"y\nn\ny\n{self.seed}\n\n".encode()  # use --pass; no public pass; existing seed (hex)
            out = await run_once(f"{self.name} --create", [
                self.binary, "--simnet", f"--appdata={self.appdata}", f"--pass={self.passphrase}", "--create"],
                self.log_path.with_suffix(".create.log"), stdin=answers)
            m = _MINING_ADDRESS.search(out)
            if not m:
                raise ChildError(f"{self.name} --create printed no mining address:\n{out[-1000:]}")
            self.mining_address = m[1]
            (self.appdata / "mining-address").write_text(self.mining_address)
        else:
            self.mining_address = (self.appdata / "mining-address").read_text().strip()
        return self.mining_address

    def args(self) -> list:
        return [self.binary, "--simnet", f"--appdata={self.appdata}", f"--pass={self.passphrase}",
                f"--username={self.user}", f"--password={self.password}",
                f"--exccdusername={self.node.user}", f"--exccdpassword={self.node.password}",
                f"--rpcconnect={self.node.rpc_address}", f"--cafile={self.node.cert_path}",
                f"--rpclisten={self.rpc_address}", "--nogrpc", "--tlscurve=P-256", "--nofilelogging",
                "--debuglevel=info", *self.flags]

    async def ready(self) -> bool:
        return bool((await self.rpc.call("walletinfo", timeout=10))["daemonconnected"])

    async def start(self, wait_synced: bool = True) -> None:
        if not self.created:
            await self.create()
        self.log_mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        await self._start(f"connect to {self.node.name}")
        if wait_synced:
            await self.wait_synced()

    def says_ready(self) -> bool:
        """Whether this start's log says the sync is done: the tip is reached before address discovery ends,
        and a getnewaddress sent during discovery's database update hung a new staker wallet for good."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_mark)
                return WALLET_READY in f.read()
        except OSError:
            return False

    async def wait_synced(self, timeout: float = START_TIMEOUT) -> None:
        async def synced() -> bool:
            return (self.says_ready() and (await self.rpc.call("getbestblock"))["height"]
                    >= await self.node.height())
        await wait_until(synced, timeout, f"{self.name} to catch up with {self.node.name}",
                         self.child.check_alive if self.child else lambda: None)

    async def new_address(self) -> str:
        return await self.rpc.call("getnewaddress", "default")

    async def spendable(self) -> float:
        return float((await self.rpc.call("getbalance", "default", 1))["balances"][0]["spendable"])

    async def signed_payment(self, pay: dict[str, float], fee: float = 0.001) -> str:
        """A transaction paying `pay` (address: coins), change to itself, signed but not published.

        Its coin is locked first, so that the wallet's own ticket buying cannot spend it meanwhile.
        """
        need = sum(pay.values()) + fee + 0.01
        coins = [u for u in await self.rpc.call("listunspent", 1) if u.get("tree", 0) == 0 and u["amount"] >= need]
        if not coins:
            raise RuntimeError(f"{self.name} has no spendable output of {need} EXCC or more")
        u = coins[0]
        outpoint = {"txid": u["txid"], "vout": u["vout"], "tree": 0}
        await self.rpc.call("lockunspent", False, [outpoint])
        outputs = dict(pay)
        outputs[await self.new_address()] = round(u["amount"] - sum(pay.values()) - fee, 8)
        raw = await self.rpc.call("createrawtransaction", [{**outpoint, "amount": u["amount"]}], outputs)
        signed = await self.rpc.call("signrawtransaction", raw)
        if not signed.get("complete"):
            raise RuntimeError(f"{self.name} could not sign its transaction: {signed}")
        return signed["hex"]
