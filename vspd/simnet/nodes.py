"""One real exccd or exccwallet on simnet: its folder, ports, credentials, process and RPC.

Start-up follows ../shared/spec/simnet.md §0: a node is ready when its
rpc.cert exists and an RPC call succeeds; a wallet reads the node's CA file
once, so it starts only after its node is ready, and it is ready when it
is connected to that node and has caught up with it.
"""

import asyncio
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Awaitable, Callable

from rpcclient.errors import NodeUnavailable, RPCError

from .children import Child, ChildError, run_once, tail
from .rpc import JSONRPC

HOST = "127.0.0.1"
START_TIMEOUT = 90.0
_MINING_ADDRESS = re.compile(r"Mining address: (S[1-9A-HJ-NP-Za-km-z]{25,40})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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


# What the harness was built against; others are refused with a clear message.
EXCCD_API_MAJOR = 7             # exccdjsonrpcapi 7.x (exccd 2.7.6 answers 7.0.0)
WALLET_API_MIN = (8, 8)         # exccwalletjsonrpcapi 8.x from 8.8 (exccwallet 2.7.6 answers 8.9.0)


def api_version(answer: dict, key: str, who: str) -> tuple[int, int, int]:
    try:
        v = answer[key]
        return int(v["major"]), int(v["minor"]), int(v["patch"])
    except (KeyError, TypeError, ValueError):
        raise ChildError(f"{who} does not report {key} in its version answer: {answer}") from None


class ExccdNode:
    """A simnet exccd. The miner has a mining address; others connect to the miner only."""

    def __init__(self, name: str, binary: Path, home: Path, logdir: Path, *, miningaddr: str = "",
                 connect: "ExccdNode | None" = None):
        self.name = name
        self.binary = binary
        self.appdata = home
        self.log_path = logdir / f"{name}.log"
        self.user, self.password = f"{name}-rpc", credential()
        self.rpc_port, self.p2p_port = free_port(), free_port()
        self.miningaddr = miningaddr
        self.connect = connect
        self.child: Child | None = None
        self.api: tuple[int, int, int] | None = None
        self.rpc = JSONRPC(name, HOST, self.rpc_port, self.user, self.password, self.cert_path)

    @property
    def cert_path(self) -> Path:
        return self.appdata / "rpc.cert"

    @property
    def rpc_address(self) -> str:
        return f"{HOST}:{self.rpc_port}"

    def args(self) -> list:
        args = [self.binary, "--simnet", f"--appdata={self.appdata}", f"--rpcuser={self.user}",
                f"--rpcpass={self.password}", f"--rpclisten={self.rpc_address}",
                f"--listen={HOST}:{self.p2p_port}", "--txindex", "--nofilelogging", "--maxsameip=0",
                "--debuglevel=info"]
        if self.miningaddr:
            args.append(f"--miningaddr={self.miningaddr}")
        if self.connect is not None:
            args.append(f"--connect={HOST}:{self.connect.p2p_port}")
        return args

    async def start(self) -> None:
        self.appdata.mkdir(parents=True, exist_ok=True)
        self.rpc.forget_certificate()
        self.child = await Child(self.name, self.args(), self.log_path).start()

        async def answers() -> bool:
            return self.cert_path.exists() and isinstance(await self.rpc.call("getblockcount", timeout=5), int)
        await wait_until(answers, START_TIMEOUT, f"{self.name} to answer RPC", self.child.check_alive)
        self.api = api_version(await self.rpc.call("version"), "exccdjsonrpcapi", self.name)
        if self.api[0] != EXCCD_API_MAJOR:
            await self.stop()
            raise ChildError(f"{self.binary} answers exccdjsonrpcapi {'.'.join(map(str, self.api))}; this harness "
                             f"needs {EXCCD_API_MAJOR}.x (exccd 2.7.6)")

    async def height(self) -> int:
        return int(await self.rpc.call("getblockcount"))

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()
        await self.rpc.close()

    def tail(self, lines: int = 15) -> str:
        return tail(self.log_path, lines)


class WalletNode:
    """A simnet exccwallet in RPC mode (never SPV), on its own node, created from a seed."""

    def __init__(self, name: str, binary: Path, home: Path, logdir: Path, node: ExccdNode, *, seed: str,
                 passphrase: str, flags: tuple = ()):
        self.name = name
        self.binary = binary
        self.appdata = home
        self.log_path = logdir / f"{name}.log"
        self.node = node
        self.seed, self.passphrase = seed, passphrase
        self.flags = list(flags)
        self.user, self.password = f"{name}-rpc", credential()
        self.rpc_port = free_port()
        self.mining_address = ""
        self.child: Child | None = None
        self.api: tuple[int, int, int] | None = None
        self.rpc = JSONRPC(name, HOST, self.rpc_port, self.user, self.password, self.cert_path, timeout=120)

    @property
    def cert_path(self) -> Path:
        return self.appdata / "rpc.cert"

    @property
    def rpc_address(self) -> str:
        return f"{HOST}:{self.rpc_port}"

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

    async def start(self, wait_synced: bool = True) -> None:
        if not self.created:
            await self.create()
        self.rpc.forget_certificate()
        self.child = await Child(self.name, self.args(), self.log_path).start()

        async def connected() -> bool:
            return self.cert_path.exists() and bool((await self.rpc.call("walletinfo", timeout=10))["daemonconnected"])
        await wait_until(connected, START_TIMEOUT, f"{self.name} to connect to {self.node.name}",
                         self.child.check_alive)
        self.api = api_version(await self.rpc.call("version"), "exccwalletjsonrpcapi", self.name)
        if self.api[0] != WALLET_API_MIN[0] or self.api[1] < WALLET_API_MIN[1]:
            await self.stop()
            raise ChildError(f"{self.binary} answers exccwalletjsonrpcapi {'.'.join(map(str, self.api))}; this "
                             f"harness needs {WALLET_API_MIN[0]}.x from {WALLET_API_MIN[0]}.{WALLET_API_MIN[1]} "
                             f"(exccwallet 2.7.6)")
        if wait_synced:
            await self.wait_synced()

    async def wait_synced(self, timeout: float = START_TIMEOUT) -> None:
        async def synced() -> bool:
            return (await self.rpc.call("getbestblock"))["height"] >= await self.node.height()
        await wait_until(synced, timeout, f"{self.name} to catch up with {self.node.name}",
                         self.child.check_alive if self.child else lambda: None)

    async def new_address(self) -> str:
        return await self.rpc.call("getnewaddress", "default")

    async def spendable(self) -> float:
        return float((await self.rpc.call("getbalance", "default", 1))["balances"][0]["spendable"])

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()
        await self.rpc.close()

    def tail(self, lines: int = 15) -> str:
        return tail(self.log_path, lines)
