"""The frontend as a real process: restart, kill -9 mid-traffic, signals, logs."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from chainbuilders import Key, make_parent, make_ticket
from conftest import SIMNET_XPUB
from fakes.exccd import FakeChain, FakeExccd
from vspclient import VSPClient
from vspd.chain.params import SIMNET

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Frontend:
    def __init__(self, home: Path, node: FakeExccd):
        self.home, self.node, self.port = home, node, free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def args(self):
        return [BIN / "vspd", "--role=frontend", f"--homedir={self.home}", "--network=simnet",
                f"--exccdhost=127.0.0.1:{self.node.port}", "--exccduser=user", f"--exccdpass={self.node.password}",
                f"--exccdcert={self.node.cert_path}", f"--listen=127.0.0.1:{self.port}",
                "--supportemail=ops@example.org", "--adminpass=Sup3rSecretAdm1n", "--loglevel=debug"]

    async def start(self):
        self.out = self.home / f"stdout-{time.monotonic_ns()}.log"  # a file: a pipe could fill and block
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(self.args(), stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 40
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.out.read_text()
                try:
                    async with http.get(self.url + "/api/v3/vspinfo") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        raise AssertionError("frontend did not start")

    def stop(self, sig=signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=20)
        return self.proc.returncode, self.out.read_text()


@pytest.fixture
async def node():
    n = FakeExccd(FakeChain(SIMNET), password="rpcPa55-xyz")
    await n.start()
    yield n
    await n.stop()


@pytest.fixture
def home(tmp_path):
    subprocess.run([BIN / "vspadmin", f"--homedir={tmp_path}", "--network=simnet", "createdatabase",
                    SIMNET_XPUB], check=True, capture_output=True)
    return tmp_path


def new_ticket(node):
    voting, commit = Key(SIMNET), Key(SIMNET)
    parent = make_parent()
    node.chain.add(parent, block=150)
    t = make_ticket(voting, commit, parent)
    return commit, t, parent


async def request_fee_address(client, node):
    commit, t, parent = new_ticket(node)
    r = await client.feeaddress(commit.secret, t.txid(), t.serialize().hex(), parent.serialize().hex())
    return t.txid(), r


async def test_restart_continues_fee_index_and_sigterm_is_clean(home, node):
    fe = Frontend(home, node)
    await fe.start()
    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, fe.url)
        await client.vspinfo()
        first = [await request_fee_address(client, node) for _ in range(3)]
    rc, out = fe.stop()
    assert rc == 0, out
    assert "frontend stopped" in out
    assert "Sup3rSecretAdm1n" not in out and "rpcPa55-xyz" not in out
    log = (home / "logs" / "simnet" / "vspd.log").read_text()
    assert "frontend stopped" in log and "Sup3rSecretAdm1n" not in log
    await fe.start()
    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, fe.url)
        await client.vspinfo()
        _, r = await request_fee_address(client, node)
    fe.stop()
    addrs = {x[1].json["feeaddress"] for x in first}
    assert r.status == 200 and r.json["feeaddress"] not in addrs and len(addrs) == 3


async def test_kill_9_mid_traffic_loses_nothing_acknowledged(home, node):
    fe = Frontend(home, node)
    await fe.start()
    acknowledged: dict[str, str] = {}

    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, fe.url)
        await client.vspinfo()

        async def one():
            try:
                h, r = await request_fee_address(client, node)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return
            if r.status == 200:
                acknowledged[h] = r.json["feeaddress"]

        async def traffic():
            for _ in range(30):  # bounded
                await asyncio.gather(*(one() for _ in range(10)))

        task = asyncio.create_task(traffic())
        while len(acknowledged) < 40:
            await asyncio.sleep(0.01)
        fe.proc.kill()
        fe.proc.wait()
        await asyncio.gather(task, return_exceptions=True)
    assert len(acknowledged) >= 40

    await fe.start()
    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, fe.url)
        await client.vspinfo()
        new_hash, r = await request_fee_address(client, node)
    fe.stop()
    import sqlite3
    con = sqlite3.connect(home / "data" / "simnet" / "vspd.db")
    rows = dict(con.execute("SELECT hash, fee_address FROM tickets").fetchall())
    con.close()
    for h, addr in acknowledged.items():  # every acknowledged quote survived the kill
        assert rows.get(h) == addr
    assert rows[new_hash] == r.json["feeaddress"]
    assert len(set(rows.values())) == len(rows)  # no fee address was handed out twice
