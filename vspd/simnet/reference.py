"""The reference Go vspd (EXCCoin/vspd, what EXCC VSPs run today) on this simnet, as a peer to compare with.

Used by the side-by-side benchmark and by the test of moving a deployment
from it to this VSP. It runs from its module source folder, where it finds
its HTML templates, with its own home, the given exccd and voting wallets.
"""

from pathlib import Path

import aiohttp

from .children import Child, ChildError, run_once, tail
from .nodes import HOST, ExccdNode, WalletNode, free_port, wait_until
from .peers import VSPD_GO, find, module_source
from .ports import start_with_fresh_ports


class ReferenceVSP:
    def __init__(self, home: Path, logdir: Path, exccd: ExccdNode, wallets: list[WalletNode], *,
                 name: str = "go-vspd", vspfee: float = 3.0, binary: Path | None = None, source: Path | None = None,
                 stats_every_second: bool = False):
        self.name = name
        self.home = home
        self.log_path = logdir / f"{name}.log"
        self.exccd, self.wallets = exccd, wallets
        self.vspfee = vspfee
        self.stats_every_second = stats_every_second  # its webserverdebug: /vspinfo counts otherwise lag a minute
        self.binary = binary or find(VSPD_GO, build_missing=False)
        self.source = source or module_source(VSPD_GO)
        self.port = free_port()
        self.adminpass = "go-vspd-admin"
        self.child: Child | None = None
        self.started = False  # once up, its URL is handed out: the port stays
        self.pubkey = ""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def db(self) -> Path:
        return self.home / "data" / "simnet" / "vspd.db"

    def write_conf(self) -> None:
        w = self.wallets
        options = {"network": "simnet", "loglevel": "info", "listen": f"{HOST}:{self.port}", "vspfee": self.vspfee,
                   "exccdhost": self.exccd.rpc_address, "exccduser": self.exccd.user, "exccdpass": self.exccd.password,
                   "exccdcert": self.exccd.cert_path, "wallethost": ",".join(x.rpc_address for x in w),
                   "walletuser": ",".join(x.user for x in w), "walletpass": ",".join(x.password for x in w),
                   "walletcert": ",".join(str(x.cert_path) for x in w), "supportemail": "go@localhost",
                   "adminpass": self.adminpass, "designation": "reference vspd",
                   "webserverdebug": "true" if self.stats_every_second else "false"}
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "vspd.conf").write_text(
            "[Application Options]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))

    async def create(self, fee_xpub: str) -> None:
        """`vspd --feexpub`: the database, with a new signing key, then it exits."""
        self.write_conf()
        await run_once(f"{self.name} --feexpub", [self.binary, f"--homedir={self.home}", f"--feexpub={fee_xpub}"],
                       self.log_path.with_suffix(".create.log"), cwd=self.source)

    async def start(self, timeout: float = 60.0) -> None:
        """Start it, again on a fresh port (bounded) if its port was taken before its first start."""
        async def move() -> bool:
            if self.started:
                return False
            self.port = free_port()
            return True
        await start_with_fresh_ports(lambda: self._start_once(timeout), lambda: self.child, self.log_path, move)
        self.started = True

    async def _start_once(self, timeout: float) -> None:
        self.write_conf()
        self.child = await Child(self.name, [self.binary, f"--homedir={self.home}"], self.log_path,
                                 cwd=self.source, death_signal="KILL").start()

        async def answers() -> bool:
            try:
                async with aiohttp.ClientSession() as http:
                    async with http.get(self.url + "/api/v3/vspinfo", timeout=aiohttp.ClientTimeout(total=5)) as r:
                        self.pubkey = (await r.json())["pubkey"]
                        return True
            except (aiohttp.ClientError, OSError):
                return False
        try:
            await wait_until(answers, timeout, f"{self.name} to answer /vspinfo", self.child.check_alive)
        except ChildError as e:
            raise ChildError(f"{e}\n{tail(self.log_path)}") from None

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()

    def tail(self, lines: int = 12) -> str:
        return tail(self.log_path, lines)

