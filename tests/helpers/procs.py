"""Real vspd processes (frontend and voters) around protocol-level fakes, on 127.0.0.1.

Each child writes its output to a file (a pipe could fill and block it) and
is stopped, and waited for, by whoever started it.
"""

import asyncio
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from chainbuilders import make_fee_tx
from conftest import SIMNET_XPUB, make_certs
from fakes.exccd import FakeChain, FakeExccd
from fakes.exccwallet import FakeWallet
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable
from vspclient import VSPClient, quote_new_ticket
from vspd.chain import address
from vspd.chain.params import SIMNET
from vspd.frontend.voterpool import judge

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vspadmin(home: Path, *args, network: str | None = "simnet") -> subprocess.CompletedProcess:
    """Run the real vspadmin command on a home folder."""
    net = [f"--network={network}"] if network else []
    return subprocess.run([BIN / "vspadmin", f"--homedir={home}", *net, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


class Proc:
    def __init__(self, name: str, args: list, logdir: Path):
        self.name, self.args = name, [str(a) for a in args]
        self.out = logdir / f"{name}-{time.monotonic_ns()}.out"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Proc":
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(self.args, stdout=f, stderr=subprocess.STDOUT)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        if self.running:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else 0

    async def halt(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        """stop(), without blocking the event loop: the fakes it serves must answer the child's goodbyes."""
        return await asyncio.to_thread(self.stop, sig, timeout)

    def kill(self) -> None:
        if self.running:
            self.proc.kill()
            self.proc.wait()


async def wait_for(predicate, timeout: float = 30, what: str = "condition", interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class VoterNode:
    name: str
    exccd: FakeExccd
    wallet: FakeWallet
    port: int
    proc: Proc


@dataclass
class Network:
    """A chain, the frontend's fake exccd, N voters (process + fake exccd + fake wallet)."""
    home: Path
    chain: FakeChain
    exccd: FakeExccd
    voters: list[VoterNode] = field(default_factory=list)
    frontend: Proc | None = None
    port: int = 0
    extra_args: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def create(cls, home: Path, nvoters: int = 3, extra_args=()) -> "Network":
        chain = FakeChain(SIMNET)
        exccd = FakeExccd(chain, password="rpcPa55-xyz")
        await exccd.start()
        names = ",".join(f"v{i}" for i in range(1, nvoters + 1))
        make_certs(home, names)
        assert vspadmin(home, "createdatabase", SIMNET_XPUB).returncode == 0
        net = cls(home, chain, exccd, extra_args=list(extra_args))
        for i in range(1, nvoters + 1):
            vexccd, wallet = FakeExccd(chain), FakeWallet(chain)
            await vexccd.start()
            await wallet.start()
            net.voters.append(VoterNode(f"v{i}", vexccd, wallet, free_port(), None))
        for v in net.voters:
            v.proc = net.voter_proc(v).start()
        net.port = free_port()
        return net

    def voter_proc(self, v: VoterNode) -> Proc:
        vdir = self.home / "certs" / f"voter-{v.name}"
        vhome = self.home / f"home-{v.name}"
        vhome.mkdir(exist_ok=True)
        return Proc(v.name, [
            BIN / "vspd", "--role=voter", f"--homedir={vhome}", "--network=simnet",
            f"--exccdhost=127.0.0.1:{v.exccd.port}", "--exccduser=user", "--exccdpass=pass",
            f"--exccdcert={v.exccd.cert_path}", f"--wallethost=127.0.0.1:{v.wallet.port}", "--walletuser=wuser",
            "--walletpass=wpass", f"--walletcert={v.wallet.cert_path}", f"--grpclisten=127.0.0.1:{v.port}",
            f"--voterca={vdir}/ca.pem", f"--tlscert={vdir}/voter.pem", f"--tlskey={vdir}/voter.key",
            "--loglevel=debug"], self.home)

    def frontend_args(self, *extra) -> list:
        voters = ",".join(f"{v.name}@127.0.0.1:{v.port}" for v in self.voters)
        return [BIN / "vspd", "--role=frontend", f"--homedir={self.home}", "--network=simnet",
                f"--exccdhost=127.0.0.1:{self.exccd.port}", "--exccduser=user",
                f"--exccdpass={self.exccd.password}", f"--exccdcert={self.exccd.cert_path}",
                f"--listen=127.0.0.1:{self.port}", "--supportemail=ops@example.org",
                "--adminpass=Sup3rSecretAdm1n", f"--voters={voters}", "--loglevel=debug",
                *self.extra_args, *extra]

    def write_frontend_conf(self) -> None:
        """The frontend's options as {homedir}/vspd.conf, for vspadmin commands that read it."""
        lines = ["[Application Options]"]
        for arg in map(str, self.frontend_args()[1:]):
            name, _, value = arg[2:].partition("=")
            if name not in ("homedir", "role"):
                lines.append(f"{name} = {value}")
        (self.home / "vspd.conf").write_text("\n".join(lines) + "\n")

    async def start_frontend(self, *extra, wait_healthy: int | None = None) -> Proc:
        self.frontend = Proc("frontend", self.frontend_args(*extra), self.home).start()
        async with aiohttp.ClientSession() as http:
            async def up():
                assert self.frontend.running, self.frontend.output()
                try:
                    async with http.get(self.url + "/status") as r:
                        if r.status == 429:  # /status is rate limited, as it should be
                            return False
                        body = await r.json()
                        return wait_healthy is None or (body["voters"]["healthy"] >= wait_healthy
                                                        and body["status"] == "ok")
                except aiohttp.ClientError:
                    return False
            await wait_for(up, 60, "frontend", interval=0.4)
        return self.frontend

    async def voters_ready(self, timeout: float = 30) -> None:
        """Every voter process answers Health and judges itself healthy (asked with the frontend's certificate)."""
        certdir = self.home / "certs"
        ca, cert, key = ((certdir / f).read_bytes() for f in ("ca.pem", "frontend.pem", "frontend.key"))
        for v in self.voters:
            client = VoterClient(VoterAddress(v.name, "127.0.0.1", v.port), ca, cert, key)

            async def healthy() -> bool:
                assert v.proc.running, v.proc.output()
                try:
                    h = await client.health(timeout=2)
                except VoterUnavailable:
                    return False
                return judge(h, "", self.chain.height, 6, "simnet") == []
            try:
                await wait_for(healthy, timeout, f"voter {v.name} ready", interval=0.2)
            finally:
                await client.close()

    def tracebacks(self) -> int:
        """Tracebacks in the output of every process this network started (their logs go there too)."""
        return sum(p.read_text(errors="replace").count("Traceback") for p in self.home.glob("*.out"))

    async def close(self) -> None:
        if self.frontend is not None:
            await self.frontend.halt()
        await asyncio.gather(*(v.proc.halt() for v in self.voters if v.proc is not None))
        for v in self.voters:
            await v.exccd.stop()
            await v.wallet.stop()
        await self.exccd.stop()

    async def mine(self, n: int = 1) -> None:
        """Blocks on the shared chain; only the frontend's exccd notifies (voters poll)."""
        await self.exccd.mine(n)


# The helpers below take any `net` with .url, .chain and async .mine(n): a Network or a walk of the guide.

class Staker:
    def __init__(self, net, http: aiohttp.ClientSession):
        self.net = net
        self.client = VSPClient(http, net.url)

    async def buy(self):
        nt = await quote_new_ticket(self.client, self.net.chain)
        return nt.voting, nt.commitment, nt.tx, nt.parent, nt.reply

    async def buy_and_pay(self):
        voting, commit, t, parent, r = await self.buy()
        assert r.status == 200, r.json
        fee = make_fee_tx(address.decode(r.json["feeaddress"], SIMNET), r.json["feeamount"])
        p = await self.client.payfee(commit.secret, t.txid(), fee.serialize().hex(), voting.wif)
        assert p.status == 200, p.json
        return commit, t

    async def fee_status(self, commit, t) -> str:
        r = await self.client.ticketstatus(commit.secret, t.txid())
        return r.json["feetxstatus"]

    async def mine_until_confirmed(self, commit, t) -> None:
        """Blocks until the VSP says the ticket's fee is confirmed."""
        async def confirmed():
            return await self.fee_status(commit, t) == "confirmed"
        await mine_until(self.net, confirmed, "fee confirmed", blocks=20)


async def mine_until(net, predicate, what: str, blocks: int = 30) -> None:
    for _ in range(blocks):
        if await predicate():
            return
        await net.mine(1)
        try:
            await wait_for(predicate, 1.0, what, interval=0.05)
            return
        except AssertionError:
            continue
    await wait_for(predicate, 10, what)


async def status(http: aiohttp.ClientSession, net) -> tuple[int, dict]:
    """GET /status, waiting out its rate limit (3 per second per client)."""
    for _ in range(20):
        async with http.get(net.url + "/status") as r:
            if r.status != 429:
                return r.status, await r.json()
        await asyncio.sleep(0.35)
    raise AssertionError("/status kept answering 429")
