"""The frontend as a real process: restart, kill -9 mid-traffic, signals, logs."""

import asyncio
import sqlite3

import aiohttp
import pytest

from procs import Network, Proc, free_port, status, vspadmin, wait_for
from vspclient import VSPClient, quote_new_ticket

pytestmark = pytest.mark.slow


@pytest.fixture
async def net(tmp_path):
    n = await Network.create(tmp_path, nvoters=1)
    yield n
    await n.close()


async def request_fee_address(client, chain):
    nt = await quote_new_ticket(client, chain)
    return nt.hash, nt.reply


async def test_restart_continues_fee_index_and_sigterm_is_clean(net):
    fe = await net.start_frontend(wait_healthy=1)
    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, net.url)
        await client.vspinfo()
        first = [await request_fee_address(client, net.chain) for _ in range(3)]
    assert all(r.status == 200 for _, r in first), [r.json for _, r in first]
    # One frontend per data folder, and nothing pulls the key or the database from under it.
    key_before = (net.home / "data" / "simnet" / "vspd.key").read_bytes()
    second = Proc("second", net.frontend_args(f"--listen=127.0.0.1:{free_port()}"), net.home).start()
    assert second.proc.wait(timeout=60) == 1
    assert f"vspd frontend (pid {fe.proc.pid}) is using" in second.output()
    for args in (["rotatekey"], ["restore", "--force"]):
        r = vspadmin(net.home, *args)
        assert r.returncode == 2 and f"vspd frontend (pid {fe.proc.pid})" in r.stderr and "stop it first" in r.stderr
    assert (net.home / "data" / "simnet" / "vspd.key").read_bytes() == key_before
    assert await fe.halt() == 0, fe.output()
    out = fe.output()
    assert "frontend stopped" in out
    assert "Sup3rSecretAdm1n" not in out and "rpcPa55-xyz" not in out
    log = (net.home / "logs" / "simnet" / "vspd.log").read_text()
    assert "frontend stopped" in log and "Sup3rSecretAdm1n" not in log
    await net.start_frontend(wait_healthy=1)
    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, net.url)
        await client.vspinfo()
        _, r = await request_fee_address(client, net.chain)
    addrs = {x[1].json["feeaddress"] for x in first}
    assert r.status == 200 and r.json["feeaddress"] not in addrs and len(addrs) == 3
    voter = net.voters[0].proc
    assert await voter.halt() == 0 and "voter stopped" in voter.output()  # SIGTERM: clean, owned shutdown
    assert "wpass" not in voter.output()


async def test_kill_9_mid_traffic_loses_nothing_acknowledged(net):
    fe = await net.start_frontend(wait_healthy=1)
    acknowledged: dict[str, str] = {}

    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, net.url)
        await client.vspinfo()

        async def one():
            try:
                h, r = await request_fee_address(client, net.chain)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return
            if r.status == 200:
                acknowledged[h] = r.json["feeaddress"]

        async def traffic():
            for _ in range(30):  # bounded
                await asyncio.gather(*(one() for _ in range(10)))

        task = asyncio.create_task(traffic())
        for _ in range(3000):
            if len(acknowledged) >= 40 or task.done():
                break
            await asyncio.sleep(0.01)
        fe.kill()
        await asyncio.gather(task, return_exceptions=True)
    assert len(acknowledged) >= 40

    await net.start_frontend(wait_healthy=1)
    async with aiohttp.ClientSession() as http:
        client = VSPClient(http, net.url)
        await client.vspinfo()
        new_hash, r = await request_fee_address(client, net.chain)
    con = sqlite3.connect(net.home / "data" / "simnet" / "vspd.db")
    rows = dict(con.execute("SELECT hash, fee_address FROM tickets").fetchall())
    con.close()
    for h, addr in acknowledged.items():  # every acknowledged quote survived the kill
        assert rows.get(h) == addr
    assert rows[new_hash] == r.json["feeaddress"]
    assert len(set(rows.values())) == len(rows)  # no fee address was handed out twice


async def test_status_says_starting_until_the_first_pass_and_poll(net):
    """Never an age counted from 0, nor 200 with blockheight 0: 'starting' and 503 until it knows."""
    port = net.exccd.port
    await net.exccd.stop()  # the first pass cannot run before the node is back
    await net.start_frontend()
    seen = []
    async with aiohttp.ClientSession() as http:
        for _ in range(6):  # ~2 s of polls while the node is away
            seen.append(await status(http, net))
        await net.exccd.start(port)

        async def ok():
            code, body = await status(http, net)
            seen.append((code, body))
            return code == 200
        await wait_for(ok, 60, "status ok after the node returned", interval=0.4)
    for code, body in seen[:6]:
        assert code == 503 and body["status"] == "starting", body
        assert any(p.startswith("starting: waiting for the first block pass") for p in body["problems"]), body
    for code, body in seen:
        assert not any("no health report" in p for p in body["problems"]), body
        assert code != 200 or body["blockheight"] == net.chain.height, body
