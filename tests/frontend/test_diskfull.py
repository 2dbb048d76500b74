"""A real frontend whose data folder (and log folder) fills up: it keeps running and comes back by itself.

The data and log folders live on a small tmpfs of the test's own, filled
to ENOSPC with a file: block passes and feeaddress fail cleanly (an error
code, nothing acknowledged), /status says why, the process stays up; the
file removed, the next pass and a new feeaddress succeed, litestream
catches up, and every fee address acknowledged before is still there.
"""

import asyncio
import errno
import sqlite3
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest

from procs import Network, Proc, status, wait_for
from replicas import wait_status_ok
from vspclient import VSPClient, quote_new_ticket
from vspd.frontend.replication import litestream_binary

pytestmark = pytest.mark.slow
TMPFS_SIZE = "24m"
VSP_CLOSED = 2  # the intake-refused code


def mount_tmpfs(where: Path) -> bool:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")
    return True


@asynccontextmanager
async def small_disk(tmp_path: Path, litestream_only: bool = False) -> AsyncIterator[tuple[Network, Path]]:
    """A one-voter network whose frontend's data and log folders (the default layout), or litestream's
    folder alone, are on a small tmpfs; yields the network and that filesystem's root."""
    disk = tmp_path / "data" / "simnet" / ".vspd.db-litestream" if litestream_only else tmp_path / "disk"
    net, mounted = None, False
    try:
        if not litestream_only:
            mounted = mount_tmpfs(disk)
            for sub in ("data", "logs"):
                (disk / sub).mkdir()
                (tmp_path / sub).symlink_to(disk / sub)
        net = await Network.create(tmp_path, nvoters=1, extra_args=["--healthinterval=0.3"])
        if litestream_only:
            mounted = mount_tmpfs(disk)
        yield net, disk
    finally:
        if net is not None:
            await net.close()
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


async def registered(client: VSPClient, net: Network):
    """A new ticket's feeaddress, acknowledged."""
    q = await quote_new_ticket(client, net.chain)
    assert q.reply.status == 200, q.reply.json
    return q


def fill(path: Path, byte: bytes = b"\0") -> int:
    """Append to `path` until the filesystem has no byte left; its size."""
    chunk = byte * (1 << 16)
    with open(path, "ab", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
        return f.tell()


async def space_returns(http: aiohttp.ClientSession, net: Network, client: VSPClient, filler: Path, what: str):
    """The filler removed (no restart, no operator, no block): /status 200 again, a registration acknowledged."""
    filler.unlink()
    await wait_status_ok(http, net, 60, f"/status back to 200 after {what}")
    q = await quote_new_ticket(client, net.chain)
    assert q.reply.status == 200, q.reply.json
    return q


def stored_fee_addresses(db: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT hash, fee_address FROM tickets"))
    finally:
        con.close()


async def test_full_disk_fails_writes_cleanly_and_recovers(tmp_path):
    async with small_disk(tmp_path) as (net, disk):
        fe = await net.start_frontend(wait_healthy=1)
        acked: dict[str, str] = {}  # ticket -> fee address, as answered to the wallet
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()  # the VSP's public key, to check every answer's signature
            for _ in range(3):
                q = await registered(client, net)
                acked[q.hash] = q.reply.json["feeaddress"]

            filler = disk / "filler"
            await asyncio.to_thread(fill, filler)
            # tmpfs counts whole pages: the log's last one may still have room, so it is filled too (blank lines).
            await asyncio.to_thread(fill, tmp_path / "logs" / "simnet" / "vspd.log", b"\n")

            async def says(what: str) -> bool:
                code, body = await status(http, net)
                return code == 503 and any(what in p for p in body["problems"])
            # Seen within the health interval, before any write fails on it (no block, no request meanwhile).
            await wait_for(lambda: says("database: the database's disk is full"), 10, "/status: disk full",
                           interval=0.4)
            q = await quote_new_ticket(client, net.chain)  # refused before anything is written
            assert (q.reply.status, q.reply.json["code"]) == (400, VSP_CLOSED), q.reply.json
            assert "disk is full" in q.reply.json["message"]
            assert (await client.vspinfo()).status == 200  # what needs no write is still answered

            async def pass_failed() -> bool:
                """One block per try (each pass writes its scanned height); true once a write failed."""
                assert fe.running, fe.output()[-3000:]
                await net.mine(1)
                await asyncio.sleep(0.2)
                return await says("database: writes failing")
            await wait_for(pass_failed, 60, "a block pass failing to write", interval=0.3)
            await net.mine(2)  # more passes that fail to write
            await asyncio.sleep(1)
            assert fe.running, fe.output()[-3000:]
            assert "block pass stopped, redone at the next block: the database's disk is full" in fe.output()

            q = await space_returns(http, net, client, filler, "space returned")
            acked[q.hash] = q.reply.json["feeaddress"]
            before = (await status(http, net))[1]["blockheight"]
            await net.mine(1)

            async def passed() -> bool:
                return (await status(http, net))[1]["blockheight"] > before
            await wait_for(passed, 30, "a block pass after space returned", interval=0.5)
        assert fe.running
        assert await fe.halt() == 0, fe.output()[-3000:]
        stored = stored_fee_addresses(tmp_path / "data" / "simnet" / "vspd.db")
        assert {h: stored.get(h) for h in acked} == acked  # nothing acknowledged lost
        assert len(set(stored.values())) == len(stored)  # no fee address given out twice
        con = sqlite3.connect(f"file:{tmp_path / 'data' / 'simnet' / 'vspd.db'}?mode=ro", uri=True)
        scanned = con.execute("SELECT value FROM pipeline_state WHERE name = 'last_scanned_height'").fetchone()
        con.close()
        assert scanned == (net.chain.height,)  # the passes that failed were redone
        out = fe.output()
        assert "Traceback" not in out and "Logging error" not in out, out[-3000:]
        assert out.count("cannot write the log file") == 1  # said once, not per line, nor a traceback
        log = (tmp_path / "logs" / "simnet" / "vspd.log").read_text()
        assert " log lines lost: the log file could not be written" in log and "frontend stopped" in log


async def test_litestream_on_a_full_disk_refuses_acknowledgments_then_catches_up(tmp_path):
    """Only litestream's own folder full (its LTX files, beside the database in the default layout): the
    database still takes writes, but nothing is acknowledged that the replica does not hold; space back,
    litestream catches up by itself and the replica holds every row written meanwhile."""
    async with small_disk(tmp_path, litestream_only=True) as (net, meta):
        fe = await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            await registered(client, net)
            filler = meta / "filler"
            await asyncio.to_thread(fill, filler)
            q = await quote_new_ticket(client, net.chain)  # written locally, not acknowledged: no replica
            assert (q.reply.status, q.reply.json["code"]) == (400, VSP_CLOSED), q.reply.json
            assert "no space left on device" in q.reply.json["message"]
            written_while_full = q.hash
            code, body = await status(http, net)
            assert code == 503 and any("backup replica" in p and "no space left" in p for p in body["problems"]), body
            assert fe.running, fe.output()[-3000:]
            q = await space_returns(http, net, client, filler, "litestream's space returned")
        assert await fe.halt() == 0, fe.output()[-3000:]
        restored = tmp_path / "restored.db"
        r = subprocess.run([litestream_binary(), "restore", "-o", str(restored),
                            f"file://{tmp_path / 'replica' / 'simnet'}"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert {written_while_full, q.hash} <= set(stored_fee_addresses(restored))  # the replica caught up


async def test_a_frontend_started_on_a_full_disk_says_so_and_starts_once_there_is_room(tmp_path):
    """A restart (systemd's, the operator's) while the disk is full: a clear one-line refusal, not a
    bare "disk I/O error"; the same start once space is back serves every registration made before."""
    async with small_disk(tmp_path) as (net, disk):
        fe = await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            q = await registered(client, net)
        assert await fe.halt() == 0
        filler = disk / "filler"
        await asyncio.to_thread(fill, filler)
        refused = Proc("frontend-full", net.frontend_args(), tmp_path).start()
        await asyncio.to_thread(refused.proc.wait, 60)
        assert refused.proc.returncode != 0
        assert "its disk is full (0 bytes free)" in refused.output(), refused.output()[-3000:]
        filler.unlink()
        await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            r = await client.ticketstatus(q.commitment.secret, q.hash)
            assert r.status == 200 and r.json["feetxstatus"] == "none", r.json
