"""The simnet harness's own parts, without the peers: finding binaries, children that die with it, its CLI."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vspd.simnet import main as cli
from vspd.simnet import stateroot
from vspd.simnet import peers

SENTINEL = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")


def fake_go_binary(path: Path, version_line: str, module: str, module_version: str) -> Path:
    """A script that answers --version like a peer and carries Go-style build info."""
    info = f"path\t{module}\nmod\t{module}\t{module_version}\th1:abc=\ndep\tx\tv1\n"
    path.write_bytes(f"#!/bin/sh\necho '{version_line} (Go version go1.26)'\nexit 0\n# ".encode()
                     + b"\x00" * 8 + SENTINEL + info.encode())
    path.chmod(0o755)
    return path


def test_module_version_is_read_from_the_build_info(tmp_path):
    b = fake_go_binary(tmp_path / "exccwallet", "exccwallet version 2.7.6-pre", peers.EXCCWALLET.module,
                       "v2.7.7-simnet.1")
    assert peers.module_version(b, peers.EXCCWALLET.module) == "v2.7.7-simnet.1"
    assert peers.module_version(b, peers.EXCCD.module) is None
    assert peers.module_version(tmp_path / "missing", peers.EXCCD.module) is None


def test_a_plain_2_7_6_wallet_is_not_the_simnet_one(tmp_path):
    """Both print 2.7.6-pre; only the build info tells the wallet whose votes simnet accepts."""
    plain = fake_go_binary(tmp_path / "plain", "exccwallet version 2.7.6-pre", peers.EXCCWALLET.module, "v2.7.6")
    why = peers.check_binary(peers.EXCCWALLET, plain, strict=True)
    assert why and "v2.7.6" in why and "v2.7.7-simnet.1" in why
    good = fake_go_binary(tmp_path / "good", "exccwallet version 2.7.6-pre", peers.EXCCWALLET.module,
                          "v2.7.7-simnet.1")
    assert peers.check_binary(peers.EXCCWALLET, good, strict=True) is None
    other = fake_go_binary(tmp_path / "other", "exccwallet version 2.8.5", peers.EXCCWALLET.module, "v2.8.5")
    assert "2.8.5" in peers.check_binary(peers.EXCCWALLET, other, strict=False)


def test_a_named_binary_wins_and_a_wrong_one_is_refused(tmp_path, monkeypatch):
    good = fake_go_binary(tmp_path / "exccd", "exccd version 2.7.6+release.local", peers.EXCCD.module,
                          peers.EXCCD.version)
    assert peers.find(peers.EXCCD, str(good), cache=tmp_path / "cache", build_missing=False) == good
    monkeypatch.setenv("EXCCD_BIN", str(tmp_path / "nothing-here"))
    with pytest.raises(peers.PeerError, match="EXCCD_BIN.*not an executable"):
        peers.find(peers.EXCCD, cache=tmp_path / "cache", build_missing=False)


def test_missing_toolchain_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no go, gcc or g++ here
    monkeypatch.delenv("EXCCD_BIN", raising=False)
    with pytest.raises(peers.PeerError) as e:
        peers.find(peers.EXCCD, cache=tmp_path / "cache", progress=lambda _: None)
    msg = str(e.value)
    assert "\n" not in msg and "go, gcc, g++" in msg and "EXCCD_BIN" in msg


@pytest.mark.parametrize("command,death_signal", [
    (["sleep", "600"], "TERM"),
    (["sh", "-c", "trap '' TERM; exec sleep 600"], "KILL"),  # deaf to SIGTERM, as exccwallet can be mid-start
])
def test_children_die_with_a_harness_killed_with_9(tmp_path, command, death_signal):
    """kill -9 of the harness leaves no child behind (PR_SET_PDEATHSIG through the orphan guard)."""
    script = tmp_path / "harness.py"
    pidfile = tmp_path / "child.pid"
    script.write_text(textwrap.dedent(f"""
        import asyncio, pathlib
        from vspd.simnet.children import Child
        async def main():
            c = await Child("sleeper", {command!r}, pathlib.Path({str(tmp_path / 'sleeper.log')!r}),
                            death_signal={death_signal!r}).start()
            pathlib.Path({str(pidfile)!r}).write_text(str(c.pid))
            await asyncio.sleep(600)
        asyncio.run(main())
    """))
    harness = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pidfile.read_text())
        time.sleep(0.3)  # the guard has exec'ed sleep by now
        time.sleep(0.2)
        assert Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"sleep"), "the guard became the command"
        harness.kill()
        harness.wait()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its harness"
    finally:
        harness.kill()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie waiting for its (gone) parent's reaper is dead


def test_state_folder_is_never_one_it_did_not_make(tmp_path):
    mine = tmp_path / "mine"
    stateroot.prepare_root(mine, keep=False)
    (mine / "chain").mkdir()
    stateroot.prepare_root(mine, keep=True)
    assert (mine / "chain").exists()  # kept
    stateroot.prepare_root(mine, keep=False)
    assert not (mine / "chain").exists() and (mine / stateroot.MARKER).exists()  # wiped, marked again
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit, match="was not made by vspd-simnet"):
        stateroot.prepare_root(foreign, keep=False)
    assert (foreign / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("argv,message", [
    (["--block-interval=-1"], "--block-interval"),
    (["--voters=0"], "--voters"),
    (["--vspfee=0"], "--vspfee"),
    (["--goproxy-mirror=/no/such/folder"], "--goproxy-mirror"),
])
def test_bad_arguments_stop_before_anything_starts(argv, message):
    args = cli.build_parser().parse_args(argv)
    with pytest.raises(SystemExit, match=message):
        cli.validate(args)


def test_orphan_guard_refuses_when_its_parent_is_already_gone():
    guard = [sys.executable, "-m", "vspd.simnet.orphanguard"]
    r = subprocess.run([*guard, "1", "TERM", "--", "true"], capture_output=True)
    assert r.returncode == 1  # pid 1 is not its parent: it must not run an unguarded child
    r = subprocess.run([*guard, str(os.getpid()), "KILL", "--", "true"])
    assert r.returncode == 0
    for bad in ([], [str(os.getpid()), "--", "true"], [str(os.getpid()), "HUP", "--", "true"]):
        r = subprocess.run([*guard, *bad], capture_output=True, text=True)
        assert r.returncode != 0 and "usage" in r.stderr


def test_a_second_start_refuses_and_leaves_the_running_ones_folder(tmp_path):
    """Issue 21: a second vspd-simnet on the same folder wiped it under the running one."""
    root = tmp_path / "simnet"
    lock = cli.claim_root(root, keep=False)  # this test process plays the running network
    try:
        (root / "chain").mkdir()
        for keep in ([], ["--keep"]):
            r = subprocess.run([sys.executable, "-m", "vspd.simnet.main", f"--root={root}", *keep],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode != 0 and r.stdout == ""
            assert r.stderr.count("\n") == 1 and f"vspd-simnet (pid {os.getpid()}) is using {root}" in r.stderr, \
                r.stderr
        assert (root / "chain").is_dir() and (root / stateroot.MARKER).exists()
    finally:
        lock.release()
    lock = cli.claim_root(root, keep=False)  # once the first is gone, the next one may start (and wipe)
    lock.release()
    assert not (root / "chain").exists() and (root / stateroot.MARKER).exists()


def test_keep_keeps_the_site_port_and_the_passwords_handed_out(tmp_path):
    """A --keep restart gives the same site, admin password and staker wallet RPC address and password."""
    from vspd.simnet.network import SimnetVSP
    from vspd.simnet.peers import PeerBinaries

    binaries = PeerBinaries(tmp_path / "exccd", tmp_path / "exccwallet")
    root = tmp_path / "simnet"

    def handed_out() -> tuple:
        net = SimnetVSP(binaries, root, progress=lambda _: None)
        return net.vsp.url, net.vsp.adminpass, net.staker.rpc_address, net.staker.user, net.staker.password

    stateroot.prepare_root(root, keep=False)
    first = handed_out()
    stateroot.prepare_root(root, keep=True)
    assert handed_out() == first
    assert oct((root / "kept.json").stat().st_mode & 0o777) == "0o600"  # it holds passwords
    stateroot.prepare_root(root, keep=False)  # a fresh network: fresh ports and passwords
    fresh = handed_out()
    assert fresh[1] != first[1] and fresh[4] != first[4]


async def test_keeper_buys_what_its_matured_coins_pay_for_and_says_nothing(tmp_path):
    """Every fresh start printed 'keeper could not buy 20 tickets at height 19: insufficient balance'."""
    from rpcclient.errors import RPCError
    from vspd.simnet.chain import Chain
    from vspd.simnet.peers import PeerBinaries

    class Wallet:  # as exccwallet answers when only a coinbase or two has matured
        def __init__(self):
            self.bought = []

        async def call(self, method, *params, timeout=None):
            if method == "getstakeinfo":
                return {"live": 0, "immature": 0, "ownmempooltix": 0}
            if method == "getbalance":
                return {"balances": [{"spendable": 3.0}]}
            if method == "purchaseticket":
                if params[4] * 0.2 > 3.0:
                    raise RPCError(-4, "wallet.PurchaseTickets: insufficient balance")
                self.bought.append(params[4])
                return ["00" * 32] * params[4]
            raise AssertionError(method)

    class Node:
        async def call(self, method, *params, timeout=None):
            assert method == "getstakedifficulty"
            return {"current": 0.2, "next": 0.2}

    said = []
    chain = Chain(PeerBinaries(tmp_path / "exccd", tmp_path / "exccwallet"), tmp_path, said.append)
    chain.keeper.rpc, chain.miner.rpc = Wallet(), Node()
    assert await chain._keep_ticket_stock(19) == 14  # 3 coins at 0.2 each and 0.01 for fees
    assert chain.keeper.rpc.bought == [14] and said == []
