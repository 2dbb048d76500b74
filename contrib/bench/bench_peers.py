"""The real peers of the side-by-side benchmark: where their binaries are, and a simnet exccd.

Small on purpose and meant to be replaced by vspd.simnet (which finds or
builds the pinned peers into ~/.cache/vspd/peers and starts real simnet
nodes) once that lands. Until then: binaries from EXCCD_BIN and
VSPD_GO_BIN, else /tmp/peerbuild/bin; the Go vspd's templates from its
module source (VSPD_GO_SRC, else the Go module cache).
"""

import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp

GO_VSPD_MODULE = "github.com/!e!x!c!coin/vspd@v0.0.0-20230404182008-faf87dabebf0"
LOCAL_BIN = Path("/tmp/peerbuild/bin")


class PeerMissing(Exception):
    """A binary or source folder the benchmark needs is not there; the message says which."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(env: str, name: str) -> Path:
    path = Path(os.environ.get(env) or LOCAL_BIN / name).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise PeerMissing(f"{name}: {path} is not an executable (set {env})")
    return path


def go_vspd_source() -> Path:
    """The EXCCoin/vspd module source: its webapi/templates and webapi/public are read at run time."""
    named = os.environ.get("VSPD_GO_SRC")
    if named:
        src = Path(named).expanduser()
    else:
        modcache = ""
        if shutil.which("go"):
            modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                                      timeout=60).stdout.strip()
        src = Path(modcache or Path.home() / "go" / "pkg" / "mod") / GO_VSPD_MODULE
    if not (src / "webapi" / "templates").is_dir():
        raise PeerMissing(f"Go vspd module source not found at {src} (set VSPD_GO_SRC)")
    return src


class SimnetExccd:
    """One real exccd on simnet, mining to a throw-away address with `generate`."""

    def __init__(self, binary: Path, home: Path, miningaddr: str):
        self.binary, self.home, self.miningaddr = binary, home, miningaddr
        self.user, self.password = "bench-rpc", secrets.token_hex(12)
        self.rpc_port, self.p2p_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def cert(self) -> Path:
        return self.home / "rpc.cert"

    @property
    def rpc_address(self) -> str:
        return f"127.0.0.1:{self.rpc_port}"

    async def start(self, timeout: float = 60) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "exccd.out", "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "--simnet", f"--appdata={self.home}", f"--rpcuser={self.user}",
                 f"--rpcpass={self.password}", f"--rpclisten={self.rpc_address}",
                 f"--listen=127.0.0.1:{self.p2p_port}", "--txindex", "--nofilelogging",
                 f"--miningaddr={self.miningaddr}"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PeerMissing(f"exccd exited: {(self.home / 'exccd.out').read_text()[-2000:]}")
            if self.cert.exists():
                try:
                    await self.call("getblockcount")
                    return
                except (aiohttp.ClientError, OSError, RuntimeError):
                    pass
            await asyncio.sleep(0.2)
        raise PeerMissing("exccd did not answer in time")

    async def call(self, method: str, *params, timeout: float = 120):
        ctx = ssl.create_default_context(cadata=self.cert.read_text())
        auth = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(f"https://{self.rpc_address}", data=body, ssl=ctx,
                                 headers={"Authorization": auth, "Content-Type": "application/json"}) as r:
                reply = json.loads(await r.read())
        if reply.get("error"):
            raise RuntimeError(f"exccd {method}: {reply['error']}")
        return reply["result"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
