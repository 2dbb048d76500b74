"""The README's main command, `vspd-simnet`, run as a user runs it, on the session's simnet.

This file sorts last on purpose: it stops the session's network and hands
its folder to the command with `--keep` (a fresh start is what the session
fixture itself did, with the same code, in the same folder). From the banner
alone it buys a ticket with the printed curl line and waits for the vote;
then SIGTERM stops everything, and kill -9 of the command leaves nothing.
"""

import asyncio
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]
BANNER_TIMEOUT = 240


def our_processes(root: Path) -> list[int]:
    """Pids of processes whose command line names the state folder (every child of the command does)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "status").read_text()
        except OSError:
            continue
        if str(root) in cmdline and "State:\tZ" not in state:
            found.append(int(proc.name))
    return found


async def wait_for_banner(out: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + BANNER_TIMEOUT
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        if "Ctrl-C stops everything." in text:
            return text
        assert proc.poll() is None, f"vspd-simnet exited {proc.returncode}:\n{text[-3000:]}"
        await asyncio.sleep(0.5)
    raise AssertionError(f"no banner in {BANNER_TIMEOUT} s:\n{out.read_text()[-3000:]}")


def start_command(root: Path, out: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([Path(sys.executable).parent / "vspd-simnet", f"--root={root}", "--keep", *extra],
                            stdout=open(out, "w"), stderr=subprocess.STDOUT)


async def wait_gone(root: Path, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := our_processes(root)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return left


async def test_readme_command_buys_and_votes_then_stops_clean(realnet, tmp_path, scenario_timer):
    root = realnet.net.root
    await realnet.net.stop()
    assert await wait_gone(root, 30) == []

    out = tmp_path / "vspd-simnet.out"
    proc = start_command(root, out, "--block-interval=1")
    try:
        banner = await wait_for_banner(out, proc)
        site = re.search(r"site\s+(http://127\.0\.0\.1:\d+)/", banner)[1]
        # --keep keeps what was handed out: the site (the staker wallet keeps its VSP's URL), the admin
        # password, and the staker wallet's RPC address and password
        staker = realnet.staker
        assert site == realnet.vsp.url and f"password {realnet.vsp.adminpass})" in banner, banner
        assert f"https://{staker.rpc_address}/  user {staker.user}  password {staker.password}" in banner, banner
        curl = " ".join(line.strip().rstrip("\\") for line in banner.split("Buy a ticket")[1].splitlines()[1:3])
        assert curl.startswith("curl "), banner
        async with aiohttp.ClientSession() as http:
            async def voted() -> int:
                async with http.get(site + "/api/v3/vspinfo") as r:
                    return (await r.json())["voted"]
            before = await voted()
            bought = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=120)
            reply = json.loads(bought.stdout)
            assert reply["error"] is None and len(reply["result"]) == 1, bought.stdout + bought.stderr
            deadline = time.monotonic() + 400
            while await voted() == before:  # the command mines a block a second by itself
                assert time.monotonic() < deadline, f"not voted:\n{out.read_text()[-3000:]}"
                assert proc.poll() is None, out.read_text()[-3000:]
                await asyncio.sleep(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, out.read_text()[-3000:]
        assert "stopped" in out.read_text()
        assert await wait_gone(root, 10) == [], "processes left after SIGTERM"

        # kill -9 of the command: its children follow it (no orphan exccd, exccwallet or vspd).
        out2 = tmp_path / "vspd-simnet-2.out"
        proc = start_command(root, out2, "--block-interval=0")
        await wait_for_banner(out2, proc)
        children = our_processes(root)
        assert len(children) >= 14, children  # 4 exccd, 6 exccwallet, 4 vspd (and their guards' execs)
        proc.kill()
        proc.wait()
        assert await wait_gone(root, 60) == [], "orphans after kill -9 of vspd-simnet"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
