"""Real litestream: streaming to a folder and over real SFTP, the disaster drill, restore refusals."""

import asyncio
import base64
import os
import shutil
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from chainbuilders import make_fee_tx
from conftest import SIMNET_XPUB
from procs import Network, vspadmin, wait_for
from replicas import db_files, lose_the_machine
from vspclient import VSPClient, quote_new_ticket
from vspd.chain import address
from vspd.chain.params import SIMNET
from vspd.frontend.replication import Replica, Replicator

pytestmark = pytest.mark.slow


async def test_drill_kill_lose_disk_restore(tmp_path):
    interval = 0.5
    net = await Network.create(tmp_path, nvoters=1, extra_args=[f"--backupsyncinterval={interval}",
                                                                "--healthinterval=0.3", "--loglevel=info"])
    try:
        fe = await net.start_frontend(wait_healthy=1)

        async def replicating():
            auth = {"Authorization": "Basic " + base64.b64encode(b"admin:Sup3rSecretAdm1n").decode()}
            async with aiohttp.ClientSession() as http:
                async with http.get(net.url + "/admin/status", headers=auth) as r:
                    return r.status != 429 and (await r.json())["backup"]["last_sync_age"] is not None
        await wait_for(replicating, 20, "first replica sync", interval=0.4)
        acked: dict[str, tuple] = {}
        wifs = []
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()

            async def register(i: int) -> None:
                nt = await quote_new_ticket(client, net.chain)
                voting, commit, t, parent, r = nt.voting, nt.commitment, nt.tx, nt.parent, nt.reply
                assert r.status == 200, r.json
                status = "none"
                if i % 2 == 0:
                    fee = make_fee_tx(address.decode(r.json["feeaddress"], SIMNET), r.json["feeamount"])
                    p = await client.payfee(commit.secret, t.txid(), fee.serialize().hex(), voting.wif)
                    assert p.status == 200, p.json
                    status = "received"
                    wifs.append(voting.wif)
                acked[t.txid()] = (r.json["feeaddress"], status, time.monotonic(), commit, t, parent)

            for i in range(40):  # bounded traffic, with a pause, then a kill in the middle of more
                await register(i)
                if i == 19:
                    await asyncio.sleep(4 * interval)
            more = asyncio.gather(*(register(100 + i) for i in range(10)), return_exceptions=True)
            await asyncio.sleep(0.05)
            fe.kill()
            killed = time.monotonic()
            await more
        lose_the_machine(tmp_path)
        r = vspadmin(tmp_path, "restore")
        assert r.returncode == 0, r.stderr
        assert "fee address index moved on by 100" in r.stdout

        con = sqlite3.connect(db_files(tmp_path)[0])
        rows = {h: (a, s) for h, a, s in con.execute("SELECT hash, fee_address, fee_tx_status FROM tickets")}
        last_index = con.execute("SELECT last_index FROM fee_xpubs").fetchone()[0]
        con.close()
        old = {h: v for h, v in acked.items() if v[2] < killed - interval - 0.5}
        missing_old = [h for h in old if rows.get(h) != acked[h][:2]]
        window = [h for h in acked if h not in rows]
        print(f"\ndrill: {len(acked)} acknowledged, {len(rows)} restored, "
              f"{len(window)} acknowledged writes fell in the unsynced window")
        log = (tmp_path / "logs" / "simnet" / "litestream.log").read_text()[-3000:]
        assert len(old) >= 20 and not missing_old, \
            f"{len(missing_old)} of {len(old)} tickets acknowledged before the last sync were lost\n{log}"

        # the restored VSP never hands out an address twice, and a lost staker just retries
        await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            # the lost ones, or (when every write reached the replica) an unpaid one, which may ask again
            for h in window or [h for h, v in acked.items() if v[1] == "none"][:1]:
                _, _, _, commit, t, parent = acked[h]
                r = await client.feeaddress(commit.secret, t.txid(), t.serialize().hex(), parent.serialize().hex())
                assert r.status == 200, r.json
                given = {a for a, *_ in acked.values()}
                assert h in rows or r.json["feeaddress"] not in given
        assert last_index >= len(rows) + 100

        # no voting key in clear text in the replica or in a database copy
        assert vspadmin(tmp_path, "backup", str(tmp_path / "copy.db")).returncode == 0
        blobs = [p.read_bytes() for p in (tmp_path / "replica").rglob("*") if p.is_file()]
        blobs.append((tmp_path / "copy.db").read_bytes())
        assert wifs and not any(w.encode() in b for w in wifs for b in blobs)
    finally:
        await net.close()


async def replicate_once(home: Path, seconds: float = 3.0) -> None:
    """Run litestream for a moment on the database of `home` (real binary)."""
    d = home / "data" / "simnet"
    rep = Replicator(d / "vspd.db", Replica.parse(str(home / "replica" / "simnet")), d / "litestream.yml",
                     home / "litestream.log", 0.2, 60)
    task = asyncio.create_task(rep.run())

    async def synced():
        return rep.last_sync > 0
    try:
        await wait_for(synced, 20, "litestream sync")
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_restore_refusals_change_nothing(tmp_path):
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    db = db_files(tmp_path)[0]
    r = vspadmin(tmp_path, "restore")
    assert r.returncode == 2 and "exists; stop vspd and add --force" in r.stderr
    r = vspadmin(tmp_path, "restore", "--force", f"--replica={tmp_path}/nothing-here")
    assert r.returncode == 2 and "litestream could not restore" in r.stderr
    assert db.exists()

    await replicate_once(tmp_path)
    before = db.read_bytes()
    kf = tmp_path / "data" / "simnet" / "vspd.key"
    good_key = kf.read_text()
    kf.write_text(os.urandom(32).hex())
    r = vspadmin(tmp_path, "restore", "--force")
    assert r.returncode == 2 and "does not belong to this database" in r.stderr
    kf.write_text(good_key)
    assert db.read_bytes() == before

    # corrupt replica: every LTX file truncated
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tmp_path / "replica" / "simnet", corrupt)
    for f in corrupt.rglob("*.ltx"):
        f.write_bytes(f.read_bytes()[:20])
    r = vspadmin(tmp_path, "restore", "--force", f"--replica={corrupt}")
    assert r.returncode == 2 and ("could not restore" in r.stderr or "unreadable" in r.stderr), r.stderr
    assert db.read_bytes() == before

    r = vspadmin(tmp_path, "restore", "--force", "--output", str(tmp_path / "restored.db"))
    assert r.returncode == 0, r.stderr


async def test_restore_refuses_a_newer_schema(tmp_path):
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    con = sqlite3.connect(db_files(tmp_path)[0])
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    await replicate_once(tmp_path)
    r = vspadmin(tmp_path, "restore", "--output", str(tmp_path / "new.db"))
    assert r.returncode == 2 and "schema version 99, newer than this vspd" in r.stderr
    assert not (tmp_path / "new.db").exists()


async def test_rotatekey_reseals_everything(tmp_path):
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    kf = tmp_path / "data" / "simnet" / "vspd.key"
    old = kf.read_text()
    r = vspadmin(tmp_path, "rotatekey")
    assert r.returncode == 0 and "re-encrypted 2 secrets" in r.stdout
    assert kf.read_text() != old and oct(kf.stat().st_mode & 0o777) == "0o600"
    assert vspadmin(tmp_path, "backup", str(tmp_path / "b.db")).returncode == 0  # opens with the new key
    kf.write_text(old)
    r = vspadmin(tmp_path, "rotatekey")
    assert r.returncode == 2 and "does not open this database" in r.stderr
