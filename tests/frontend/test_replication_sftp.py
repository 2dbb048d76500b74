"""Litestream over SFTP to a real OpenSSH server that the test starts on 127.0.0.1."""

import asyncio
import base64
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from procs import Network, status, vspadmin, wait_for
from replicas import SSHD, SSHServer, lose_the_machine, wait_status_ok
from vspclient import VSPClient, quote_new_ticket

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.path.exists(SSHD) and not os.environ.get("CI"),
    reason="OpenSSH server not installed (.ci/run installs it; in CI this test must run)")]


async def test_sftp_replica_and_restore(tmp_path):
    sshd = SSHServer(tmp_path / "ssh")
    sshd.start()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    target = tmp_path / "offsite" / "vspd"
    replica = f"sftp://{user}@127.0.0.1:{sshd.port}{target}"
    key = tmp_path / "ssh" / "client"
    net = await Network.create(tmp_path / "home", nvoters=1, extra_args=[
        f"--backupreplica={replica}", f"--backupsftpkey={key}", f"--backupsftphostkey={sshd.host_key}",
        "--backupsyncinterval=0.5", "--healthinterval=0.3", "--loglevel=info"])
    home = net.home
    (home / "vspd.conf").write_text(f"[Application Options]\nbackupreplica = {replica}\n"
                                    f"backupsftpkey = {key}\nbackupsftphostkey = {sshd.host_key}\n")
    try:
        fe = await net.start_frontend(wait_healthy=1)
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:Sup3rSecretAdm1n").decode()}

        async def backup_state():
            async with aiohttp.ClientSession() as http:
                async with http.get(net.url + "/admin/status", headers=auth) as r:
                    return None if r.status == 429 else (await r.json())["backup"]

        async def synced():
            b = await backup_state()
            return b is not None and b["last_sync_age"] is not None
        await wait_for(synced, 30, "first SFTP sync", interval=0.4)
        hashes = []
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            for _ in range(10):
                nt = await quote_new_ticket(client, net.chain)
                assert nt.reply.status == 200, nt.reply.json
                hashes.append(nt.hash)
        await asyncio.sleep(2)
        state = await backup_state()
        assert state["running"] and state["last_sync_age"] < 5 and state["replica_txid"] != "timed out"
        assert any(target.rglob("*.ltx")), "nothing arrived on the SFTP server"
        fe.kill()
        lose_the_machine(home)
        r = vspadmin(home, "restore")
        assert r.returncode == 0, r.stderr
        con = sqlite3.connect(home / "data" / "simnet" / "vspd.db")
        restored = {h for (h,) in con.execute("SELECT hash FROM tickets")}
        con.close()
        assert set(hashes) <= restored
    finally:
        await net.close()
        sshd.stop()


async def test_wrong_sftp_host_key_is_reported(tmp_path):
    sshd = SSHServer(tmp_path / "ssh")
    sshd.start()
    other = SSHServer(tmp_path / "other")  # a different host key: a man in the middle
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    replica = f"sftp://{user}@127.0.0.1:{sshd.port}{tmp_path / 'offsite'}"
    net = await Network.create(tmp_path / "home", nvoters=1, extra_args=[
        f"--backupreplica={replica}", f"--backupsftpkey={tmp_path / 'ssh' / 'client'}",
        f"--backupsftphostkey={other.host_key}", "--backupsyncinterval=0.5", "--backupmaxfailing=2",
        "--healthinterval=0.3"])
    try:
        await net.start_frontend()
        start = time.monotonic()

        async def reported():
            async with aiohttp.ClientSession() as http:
                async with http.get(net.url + "/status") as r:
                    if r.status == 429:
                        return False
                    body = await r.json()
                    return r.status == 503 and any(p.startswith("backups failing") for p in body["problems"])
        await wait_for(reported, 30, "/status reports failing backups", interval=0.5)
        assert time.monotonic() - start < 30
        assert not any((tmp_path / "offsite").rglob("*.ltx"))
    finally:
        await net.close()
        sshd.stop()


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (sshd's per-connection children), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cut_off(sshd: SSHServer) -> None:
    """The SFTP server's machine goes away: its listener and the sessions it serves (litestream's) end."""
    sessions = descendants(sshd.proc.pid)
    sshd.stop()
    for pid in sessions:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_sftp_server_down_turns_intake_off_until_it_returns(tmp_path):
    """The off-site SFTP server stops: registrations are refused (code 2) and /status says why; it returns:
    intake comes back by itself and an acknowledged registration is on the server."""
    sshd = SSHServer(tmp_path / "ssh")
    sshd.start()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    target = tmp_path / "offsite" / "vspd"
    net = await Network.create(tmp_path / "home", nvoters=1, extra_args=[
        f"--backupreplica=sftp://{user}@127.0.0.1:{sshd.port}{target}",
        f"--backupsftpkey={tmp_path / 'ssh' / 'client'}", f"--backupsftphostkey={sshd.host_key}",
        "--backupsyncinterval=60", "--backupackwait=3",
        "--healthinterval=0.3"])
    try:
        await net.start_frontend(wait_healthy=1)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            first = await quote_new_ticket(client, net.chain)
            assert first.reply.status == 200, first.reply.json
            cut_off(sshd)
            refused = await quote_new_ticket(client, net.chain)
            assert refused.reply.status == 400 and refused.reply.code == 2, refused.reply.json
            assert "replica" in refused.reply.json["message"], refused.reply.json
            code, body = await status(http, net)
            assert code == 503 and any(p.startswith("not accepting tickets: the backup replica is unreachable")
                                       for p in body["problems"]), body
            sshd.start()
            await wait_status_ok(http, net, 60, "intake back on after the SFTP server returned")
            back = await quote_new_ticket(client, net.chain)
            assert back.reply.status == 200, back.reply.json
        net.frontend.kill()
        lose_the_machine(net.home)
        (net.home / "vspd.conf").write_text(
            f"[Application Options]\nbackupreplica = sftp://{user}@127.0.0.1:{sshd.port}{target}\n"
            f"backupsftpkey = {tmp_path / 'ssh' / 'client'}\nbackupsftphostkey = {sshd.host_key}\n")
        r = vspadmin(net.home, "restore")
        assert r.returncode == 0, r.stderr
        con = sqlite3.connect(net.home / "data" / "simnet" / "vspd.db")
        restored = {h for (h,) in con.execute("SELECT hash FROM tickets")}
        con.close()
        assert {first.hash, back.hash} <= restored  # (the refused one too, later: its row keeps its address)
    finally:
        await net.close()
        sshd.stop()
