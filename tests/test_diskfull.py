"""A real frontend whose data folder (and log folder) fills up: it keeps running and comes back by itself.

The data and log folders live on a small tmpfs of the test's own, filled
to ENOSPC with a file: block passes and feeaddress fail cleanly (an error
code, nothing acknowledged), /status says why, the process stays up; the
file removed, the next pass and a new feeaddress succeed, litestream
catches up, and every fee address acknowledged before is still there.
"""

import asyncio
import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from procs import Network, status, wait_for
from vspclient import VSPClient, quote_new_ticket

pytestmark = pytest.mark.slow
TMPFS_SIZE = "24m"
INTERNAL_ERROR, VSP_CLOSED = 1, 2


def mount_tmpfs(where: Path) -> None:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")


def fill(path: Path) -> int:
    """Write `path` until the filesystem has no byte left; its size."""
    chunk = b"\0" * (1 << 16)
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
        return f.tell()


def stored_fee_addresses(db: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT hash, fee_address FROM tickets"))
    finally:
        con.close()


async def test_full_disk_fails_writes_cleanly_and_recovers(tmp_path):
    disk = tmp_path / "disk"
    mount_tmpfs(disk)
    net = None
    try:
        for sub in ("data", "logs"):  # the default layout: database, litestream's files and the log together
            (disk / sub).mkdir()
            (tmp_path / sub).symlink_to(disk / sub)
        net = await Network.create(tmp_path, nvoters=1, extra_args=["--healthinterval=0.3"])
        fe = await net.start_frontend(wait_healthy=1)
        acked: dict[str, str] = {}  # ticket -> fee address, as answered to the wallet
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()  # the VSP's public key, to check every answer's signature
            for _ in range(3):
                q = await quote_new_ticket(client, net.chain)
                assert q.reply.status == 200, q.reply.json
                acked[q.hash] = q.reply.json["feeaddress"]

            filler = disk / "filler"
            await asyncio.to_thread(fill, filler)
            refused = {INTERNAL_ERROR: 0, VSP_CLOSED: 0}

            async def reports_full() -> bool:
                """One block and one feeaddress per try; true once /status names the full disk."""
                assert fe.running, fe.output()[-3000:]
                await net.mine(1)
                q = await quote_new_ticket(client, net.chain)
                if q.reply.status == 200:  # written into space the WAL already had: acknowledged, so kept
                    acked[q.hash] = q.reply.json["feeaddress"]
                else:
                    assert q.reply.json["code"] in refused, q.reply.json
                    refused[q.reply.json["code"]] += 1
                code, body = await status(http, net)
                return code == 503 and any("disk is full" in p for p in body["problems"])
            await wait_for(reports_full, 60, "/status reporting the full disk", interval=0.3)

            # Full: the process answers what it can, and refuses registrations with the intake code.
            assert fe.running
            assert (await client.vspinfo()).status == 200
            q = await quote_new_ticket(client, net.chain)
            assert (q.reply.status, q.reply.json["code"]) == (400, VSP_CLOSED), q.reply.json
            assert "disk is full" in q.reply.json["message"]
            await net.mine(2)  # passes that fail to write
            await asyncio.sleep(1)
            assert fe.running, fe.output()[-3000:]
            code, body = await status(http, net)
            assert code == 503 and any(p.startswith("database: writes failing") for p in body["problems"]), body

            filler.unlink()  # space returns: no restart, no operator
            await net.mine(1)

            async def recovered() -> bool:
                code, _ = await status(http, net)
                return code == 200
            await wait_for(recovered, 60, "/status back to 200 after space returned", interval=0.5)
            q = await quote_new_ticket(client, net.chain)
            assert q.reply.status == 200, q.reply.json
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
        out = fe.output()
        assert "Traceback" not in out and "Logging error" not in out, out[-3000:]
        assert out.count("cannot write the log file") <= 1
    finally:
        if net is not None:
            await net.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)
