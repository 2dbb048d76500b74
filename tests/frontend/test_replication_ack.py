"""Real litestream: feeaddress and payfee answer only once the replica holds their write.

The background stream is slowed to one sync a minute, so only the
on-demand sync of an answer can put a registration in the replica before
the machine is lost right after that answer.
"""

import asyncio
import base64
import os
import shutil
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from chainbuilders import make_fee_tx
from procs import Network, status, vspadmin, wait_for
from replicas import db_files, lose_the_machine, wait_status_ok
from vspclient import VSPClient, quote_new_ticket
from vspd.chain import address
from vspd.chain.params import SIMNET

pytestmark = pytest.mark.slow
SLOW_STREAM = "--backupsyncinterval=60"
VSP_CLOSED = 2


async def admin_backup(http: aiohttp.ClientSession, net: Network) -> dict:
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:Sup3rSecretAdm1n").decode()}
    for _ in range(50):
        async with http.get(net.url + "/admin/status", headers=auth) as r:
            if r.status != 429:
                return (await r.json())["backup"]
        await asyncio.sleep(0.4)
    raise AssertionError("/admin/status kept answering 429")


def take_replica_away(tmp_path: Path) -> None:
    """The replica's disk goes away: even root cannot write under a path that is now a file."""
    replica = tmp_path / "replica" / "simnet"
    shutil.move(replica, tmp_path / "replica-away")
    replica.write_text("not a folder")


def bring_replica_back(tmp_path: Path) -> None:
    replica = tmp_path / "replica" / "simnet"
    os.unlink(replica)
    shutil.move(tmp_path / "replica-away", replica)


async def test_answer_is_sent_only_once_the_replica_holds_it(tmp_path):
    net = await Network.create(tmp_path, nvoters=1, extra_args=[SLOW_STREAM, "--healthinterval=0.3"])
    try:
        fe = await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            quoted = await quote_new_ticket(client, net.chain)  # feeaddress only
            assert quoted.reply.status == 200, quoted.reply.json
            paid = await quote_new_ticket(client, net.chain)
            assert paid.reply.status == 200, paid.reply.json
            fee = make_fee_tx(address.decode(paid.reply.json["feeaddress"], SIMNET), paid.reply.json["feeamount"])
            p = await client.payfee(paid.commitment.secret, paid.hash, fee.serialize().hex(), paid.voting.wif)
            assert p.status == 200, p.json
            # the answers' own syncs are syncs: the status shows one, though litestream's loop made none yet
            assert (await admin_backup(http, net))["last_sync_age"] is not None
            fe.kill()  # at once: the next background sync was a minute away
        lose_the_machine(tmp_path)
        datadir = tmp_path / "data" / "simnet"
        safe = tmp_path / "safe-storage.key"  # the key file lives off the machine; the data folder is gone
        shutil.copy2(datadir / "vspd.key", safe)
        shutil.rmtree(datadir)
        r = vspadmin(tmp_path, "restore")
        assert r.returncode == 2 and f"to {datadir / 'vspd.key'} (mode 600, its folder created first)" in r.stderr
        r = vspadmin(tmp_path, "restore", f"--keyfile={safe}")
        assert r.returncode == 0, r.stderr
        assert f"key file installed as {datadir / 'vspd.key'}" in r.stdout
        assert (datadir / "vspd.key").read_bytes() == safe.read_bytes()
        assert oct((datadir / "vspd.key").stat().st_mode & 0o777) == "0o600"
        con = sqlite3.connect(db_files(tmp_path)[0])
        rows = {h: (a, s, f) for h, a, s, f in con.execute(
            "SELECT hash, fee_address, fee_tx_status, fee_tx_hash FROM tickets")}
        con.close()
        assert rows.get(quoted.hash) == (quoted.reply.json["feeaddress"], "none", "")
        assert rows.get(paid.hash) == (paid.reply.json["feeaddress"], "received", fee.txid())
    finally:
        await net.close()


async def test_unreachable_replica_turns_intake_off_and_back_on(tmp_path):
    net = await Network.create(tmp_path, nvoters=1, extra_args=[SLOW_STREAM, "--healthinterval=0.3",
                                                                "--backupackwait=2"])
    try:
        await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            ok = await quote_new_ticket(client, net.chain)
            assert ok.reply.status == 200, ok.reply.json
            take_replica_away(tmp_path)
            fee = make_fee_tx(address.decode(ok.reply.json["feeaddress"], SIMNET), ok.reply.json["feeamount"])
            p = await client.payfee(ok.commitment.secret, ok.hash, fee.serialize().hex(), ok.voting.wif)
            assert p.status == 400 and p.code == VSP_CLOSED and "replica" in p.json["message"], p.json
            con = sqlite3.connect(f"file:{db_files(tmp_path)[0]}?mode=ro", uri=True)
            row = con.execute("SELECT fee_tx_status, fee_tx_hash, fee_tx_hex, voting_wif FROM tickets WHERE hash = ?",
                              (ok.hash,)).fetchone()
            con.close()
            assert row == ("none", "", "", ""), row  # the refused payfee left the row as it was
            refused = await quote_new_ticket(client, net.chain)  # refused up front now, without a wait
            assert refused.reply.status == 400 and refused.reply.code == VSP_CLOSED, refused.reply.json
            assert "unreachable or behind" in refused.reply.json["message"], refused.reply.json
            code, body = await status(http, net)
            assert code == 503 and any("not accepting tickets: the backup replica is unreachable" in p
                                       for p in body["problems"]), body
            backup = await admin_backup(http, net)
            assert backup["behind"], backup

            bring_replica_back(tmp_path)
            await wait_status_ok(http, net, 30, "intake back on after the replica returned")
            back = await quote_new_ticket(client, net.chain)
            assert back.reply.status == 200, back.reply.json
            p = await client.payfee(ok.commitment.secret, ok.hash, fee.serialize().hex(), ok.voting.wif)
            assert p.status == 200, p.json  # the wallet's retry of the refused payfee
    finally:
        await net.close()


async def test_a_litestream_left_by_kill_9_is_stopped_on_start(tmp_path):
    """kill -9 of the frontend leaves its litestream running; the next start stops it before its own."""
    net = await Network.create(tmp_path, nvoters=1, extra_args=["--healthinterval=0.3"])
    pidfile = tmp_path / "data" / "simnet" / "litestream.pid"
    try:
        fe = await net.start_frontend(wait_healthy=1)
        old = int(pidfile.read_text())
        fe.kill()
        assert os.path.exists(f"/proc/{old}"), "litestream died with the frontend: nothing left behind"
        await net.start_frontend(wait_healthy=1)

        def gone() -> bool:  # no such process, or only a zombie its dead parent left unreaped
            try:
                return "State:\tZ" in Path(f"/proc/{old}/status").read_text()
            except OSError:
                return True
        assert gone(), "the old litestream still runs beside the new one"
        assert int(pidfile.read_text()) != old
        assert "left behind by an earlier run" in fe.output() + net.frontend.output()
        async with aiohttp.ClientSession() as http:  # and the new one acknowledges registrations
            client = VSPClient(http, net.url)
            await client.vspinfo()
            nt = await quote_new_ticket(client, net.chain)
            assert nt.reply.status == 200, nt.reply.json
    finally:
        await net.close()


async def test_an_idle_replica_outage_reaches_status_without_a_registration(tmp_path):
    """Nothing to replicate, replica away: the frontend's probe write finds it, and finds it back."""
    net = await Network.create(tmp_path, nvoters=1, extra_args=[SLOW_STREAM, "--healthinterval=0.5",
                                                                "--backupackwait=2"])
    try:
        await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            await wait_status_ok(http, net, 30, "a healthy start")
            take_replica_away(tmp_path)

            async def reported():
                code, body = await status(http, net)
                return code == 503 and any("backup replica is unreachable" in p for p in body["problems"])
            await wait_for(reported, 20, "/status to report the replica away, no registration made")
            bring_replica_back(tmp_path)
            await wait_status_ok(http, net, 30, "/status back to 200 after the replica returned")
    finally:
        await net.close()
