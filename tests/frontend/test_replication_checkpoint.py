"""Real litestream: the replica stays whole while the WAL passes 1000 pages and across a killed frontend.

The soak's `frontend-lost` restore failed ("row 346 missing from index
tickets_outcome"): SQLite's own autocheckpoint (PASSIVE, at 1000 WAL pages,
run by the committing connection) raced litestream 0.5.17's checkpoint,
and litestream's LTX chain missed pages. This writes many small
transactions through the Store's own connections with the real litestream
replicating, restarts as the frontend does after a kill -9 (stop the
litestream left behind, checkpoint, start another), kills litestream with
SIGKILL, loses the disk, restores with `vspadmin restore`, and checks integrity and every acknowledged row.
"""

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import SIMNET_XPUB
from procs import vspadmin, wait_for
from replicas import lose_the_machine
from vspd.base.paths import key_file
from vspd.frontend.replication import Replica, Replicator
from vspd.store.db import Store
from vspd.base.sealing import Sealer, read_key_file

pytestmark = pytest.mark.slow
ROWS = 3500  # per run of the frontend: together well past SQLite's 1000-page autocheckpoint


def replicator(home: Path) -> Replicator:
    """Laid out as the frontend's: the default replica folder, litestream.pid beside the database."""
    d = home / "data" / "simnet"
    return Replicator(d / "vspd.db", Replica.parse(str(home / "replica" / "simnet")), d / "litestream.yml",
                      home / "logs" / "litestream.log", 1.0, 60, ack_wait=10.0)


async def start(rep: Replicator) -> asyncio.Task:
    task = asyncio.create_task(rep.run())

    async def ready():
        return rep.control_ready
    await wait_for(ready, 20, "litestream's control socket")
    return task


async def write(store: Store, rep: Replicator, first: int, n: int) -> int:
    """Small transactions as the pipeline makes them; returns the last id the replica acknowledged."""
    acked = 0
    for i in range(first, first + n):
        async with store.transaction() as db:
            await db.execute("INSERT INTO scratch VALUES (?, ?, ?)", (i, i % 97, os.urandom(300)))
            await db.execute("UPDATE scratch SET k = k + 1 WHERE id IN (?, ?, ?)", (i // 2, i // 3, i // 5))
        if i % 50 == 0:
            why = await rep.durable()
            assert why is None, why
            acked = i
    return acked


async def test_replica_restores_whole_after_a_big_wal_and_a_killed_frontend(tmp_path):
    d = tmp_path / "data" / "simnet"
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    key = read_key_file(key_file(d))
    store = await Store.open(d / "vspd.db", Sealer(key))
    stores, tasks = [store], []
    try:
        async with store.transaction() as c:
            await c.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
            await c.execute("CREATE INDEX scratch_k ON scratch (k)")
        rep = replicator(tmp_path)
        tasks.append(await start(rep))
        await write(store, rep, 1, ROWS)
        # the frontend is killed: its connections vanish unclosed, its litestream runs on; the
        # frontend starting again stops that litestream, checkpoints, starts its own (vspd/roles/frontend.py)
        rep2 = replicator(tmp_path)
        await asyncio.to_thread(rep2.reap_stale)
        tasks[0].cancel()  # the dead frontend's supervisor: it must not start another litestream
        await asyncio.gather(tasks[0], return_exceptions=True)
        store2 = await Store.open(d / "vspd.db", Sealer(key))
        stores.append(store2)
        await store2.checkpoint()
        tasks.append(await start(rep2))
        acked = await write(store2, rep2, ROWS + 1, ROWS)
        # the machine is lost right after an acknowledgment: litestream with it, and the disk
        lose_the_machine(tmp_path)

        async def dead():
            return not rep2.running
        await wait_for(dead, 10, "litestream killed")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in reversed(stores):
            await s.close()
    for f in d.glob("vspd.db*"):  # what closing the connections wrote is gone with the disk too
        f.unlink()
    r = vspadmin(tmp_path, "restore")
    assert r.returncode == 0, r.stderr  # its integrity check: "row N missing from index scratch_k"
    con = sqlite3.connect(d / "vspd.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        have = {row[0] for row in con.execute("SELECT id FROM scratch")}
    finally:
        con.close()
    assert acked and all(i in have for i in range(1, acked + 1)), f"acknowledged rows missing (last {acked})"
