"""`vspadmin preflight`: every listing rule passing and failing; voters faked at the gRPC level."""

import asyncio
import dataclasses
import subprocess

import pytest

from conftest import MAINNET_XPUB, SIMNET_XPUB, make_certs
from procs import BIN, Network, free_port, vspadmin
from rpcclient.voterclient import VoterAddress
from vspd.voter.service import serve, server_credentials
from schema import voter_pb2 as pb
from schema import voter_pb2_grpc as pbg
from vspd.chain.params import MAINNET
from vspd.frontend.feecap import quotes
from vspd.frontend.preflight import Facts, evaluate, render
from vspd.base.tls import self_signed


COIN = 100_000_000


def healthy(i: int, **kw) -> pb.HealthReply:
    h = dict(voter_version="1.3.0", network="mainnet", node_connected=True, node_synced=True, node_height=1000,
             node_version="7.0.0", wallet_connected=True, wallet_daemon_connected=True, wallet_unlocked=True,
             wallet_voting=True, wallet_manual_tickets=True, wallet_height=1000, wallet_version="8.9.0",
             node_id=f"node{i}", host_id=f"host{i}", cert_days_left=400)
    h.update(kw)
    return pb.HealthReply(**h)


def good_facts(**kw) -> Facts:
    f = Facts("mainnet", 3, 6, "frontendhost", local_height=1000,
              voters=[(VoterAddress(f"v{i}", f"10.0.{i}.1", 9113), healthy(i), "") for i in range(3)],
              frontend_cert_days=800, ca_days=3000, xpub="xpub661My", closed=True, own_voted=1, own_total=1,
              replica_age=5, fee_quotes=quotes(100_000, 50 * COIN, 50 * COIN, 3.0, MAINNET))
    return dataclasses.replace(f, **kw)


def state(checks, rule):
    return next(c for c in checks if c.rule == rule).ok


def test_all_pass():
    checks = evaluate(good_facts())
    assert all(c.ok for c in checks), render(checks)


def voters_with(i, **kw):
    v = good_facts().voters
    v[i] = (v[i][0], healthy(i, **kw), "")
    return v


@pytest.mark.parametrize("change,rule", [
    (dict(voters=good_facts().voters[:2]), "voters configured"),
    (dict(voters=voters_with(1, wallet_unlocked=False)), "voter v1 healthy"),
    (dict(voters=voters_with(1, wallet_voting=False)), "voter v1 healthy"),
    (dict(voters=voters_with(1, wallet_spv=True)), "voter v1 healthy"),
    (dict(voters=voters_with(1, wallet_height=900)), "voter v1 healthy"),
    (dict(voters=voters_with(1, wallet_version="8.7.0")), "voter v1 healthy"),
    (dict(voters=voters_with(1, node_version="6.1.0")), "voter v1 healthy"),
    (dict(voters=voters_with(1, cert_days_left=3)), "voter v1 healthy"),
    (dict(voters=voters_with(1, wallet_unlocked=False)), "voters healthy"),
    (dict(voters=voters_with(2, node_id="node0")), "each voter has its own exccd"),
    (dict(voters=voters_with(2, host_id="host0")), "voters on distinct hosts"),
    (dict(voters=voters_with(2, host_id="frontendhost")), "frontend apart from the voters"),
    (dict(frontend_cert_days=10), "voter-link certificates valid"),
    (dict(xpub=""), "fee xpub set"),
    (dict(replica_age=None, replica_error="no matching backup files"), "backups replicating"),
    (dict(replica_age=7200), "backups replicating"),
    (dict(closed=False, own_voted=0), "mainnet test mode (closed) until an own ticket voted"),
    (dict(own_voted=0), "an operator ticket has voted"),
    (dict(fee_quotes="exccd cannot tell the ticket price: connection lost"), "fee within exccwallet's limit"),
    # 30 % of a mainnet vote's subsidy (~1.8 EXCC at this height) at a 300 EXCC price: above the 0.2 EXCC
    # that exccwallet pays; and the same only at the next price.
    (dict(fee_quotes=quotes(100_000, 300 * COIN, 300 * COIN, 30.0, MAINNET)), "fee within exccwallet's limit"),
    (dict(fee_quotes=quotes(100_000, COIN // 5, 300 * COIN, 30.0, MAINNET)), "fee within exccwallet's limit"),
])
def test_each_rule_fails(change, rule):
    checks = evaluate(good_facts(**change))
    assert state(checks, rule) is False, render(checks)


def test_one_machine_fails_say_they_are_expected_on_simnet_or_loopback():
    """On simnet every part shares one machine: the two FAILs it must give carry a note saying so."""
    one_host = [(VoterAddress(f"v{i}", "127.0.0.1", 9113 + i), healthy(i, host_id="frontendhost"), "")
                for i in range(3)]
    rules = ("voters on distinct hosts", "frontend apart from the voters")
    for network, note in (("simnet", True), ("testnet", True), ("mainnet", False)):  # testnet: all on loopback
        checks = evaluate(good_facts(network=network, voters=one_host))
        for rule in rules:
            c = next(c for c in checks if c.rule == rule)
            assert not c.ok and ("expected here" in c.note) == note and c.note in render(checks), render(checks)
    real = evaluate(good_facts(voters=voters_with(2, host_id="host0")))  # a real mistake on mainnet: no excuse
    assert [c.note for c in real if c.rule in rules] == ["", ""]
    assert all(c.note == "" for c in evaluate(good_facts(network="simnet")))  # nothing to excuse


def test_unreachable_voter_and_testnet_rules():
    f = good_facts()
    f.voters[0] = (f.voters[0][0], None, "UNAVAILABLE: connection refused")
    checks = evaluate(f)
    assert not state(checks, "voter v0 healthy") and "unreachable" in render(checks)
    t = good_facts(network="testnet", min_voters=1, uptime_hours_7d=168, outcomes_7d={"voted": 40})
    t.voters = [(a, healthy(i, network="testnet"), "") for i, (a, _, _) in enumerate(t.voters)]
    checks = evaluate(t)
    assert state(checks, "a week on testnet") and state(checks, "no missed votes on testnet")
    assert "mainnet test mode (closed) until an own ticket voted" not in render(checks)
    checks = evaluate(dataclasses.replace(t, uptime_hours_7d=30, outcomes_7d={"voted": 3, "missed": 1}))
    assert not state(checks, "a week on testnet") and not state(checks, "no missed votes on testnet")


async def run_preflight(home) -> subprocess.CompletedProcess:
    """The real command, in a thread: the voters it asks may be served by this test's event loop."""
    return await asyncio.to_thread(subprocess.run, [BIN / "vspadmin", f"--homedir={home}", "preflight"],
                                   capture_output=True, text=True, timeout=120)


class FakeVoter(pbg.VoterServicer):
    def __init__(self, reply):
        self.reply = reply

    async def Health(self, request, context):
        return self.reply


async def test_preflight_command_against_grpc_voters(tmp_path):
    d = make_certs(tmp_path, "v1,v2,v3")
    servers, voters = [], []
    for i, name in enumerate(("v1", "v2", "v3")):
        port = free_port()
        reply = healthy(i, network="simnet", node_height=5, wallet_height=5,
                        host_id="same" if name == "v3" else f"host{i}")
        server = await serve(FakeVoter(reply), f"127.0.0.1:{port}", server_credentials(
            (d / f"voter-{name}" / "ca.pem").read_bytes(), (d / f"voter-{name}" / "voter.pem").read_bytes(),
            (d / f"voter-{name}" / "voter.key").read_bytes()))
        servers.append(server)
        voters.append(f"{name}@127.0.0.1:{port}")
    cert = tmp_path / "rpc.cert"
    cert.write_bytes(self_signed("x", ["127.0.0.1"])[0])
    (tmp_path / "vspd.conf").write_text(
        "[Application Options]\nnetwork = simnet\nexccduser = u\nexccdpass = p\n"
        f"exccdcert = {cert}\nsupportemail = ops@example.org\nadminpass = adminadmin\n"
        f"voters = {','.join(voters)}\n")
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    try:
        r = await run_preflight(tmp_path)
    finally:
        for s in servers:
            await s.stop(0)
    out = r.stdout
    assert r.returncode == 0, r.stderr  # simnet: reported, not fatal
    for name in ("v1", "v2", "v3"):
        assert f"voter {name} healthy" in out and "PASS" in out.split(f"voter {name} healthy")[1].splitlines()[0]
    assert "frontend apart from the voters" in out and "FAIL" in out.split("frontend apart from the voters")[1][:10]
    assert "fee xpub set" in out and "backups replicating" in out


async def test_preflight_against_a_running_deployment(tmp_path):
    """Real voter processes (their nodes and wallets faked): the truth about a one-host set-up."""
    net = await Network.create(tmp_path, nvoters=3, extra_args=["--healthinterval=0.3"])

    async def preflight() -> str:
        r = await run_preflight(tmp_path)
        assert r.returncode == 0, r.stderr  # simnet: reported, not fatal
        return r.stdout
    try:
        net.write_frontend_conf()
        await net.start_frontend(wait_healthy=3)
        await asyncio.sleep(2)  # let litestream ship its first snapshot
        out = await preflight()
        # Then deliberately broken: a locked wallet, an SPV wallet, a voter stopped.
        net.voters[0].wallet.unlocked = False
        net.voters[1].wallet.spv = True
        await net.voters[2].proc.halt()
        broken = await preflight()
    finally:
        await net.close()

    def state(text, rule):
        return text.split(rule, 1)[1].split()[0]
    for name in ("v1", "v2", "v3"):
        assert state(out, f"voter {name} healthy") == "PASS", out
    assert state(out, "voters configured") == "PASS"
    assert state(out, "each voter has its own exccd") == "PASS"  # each voter has its own (fake) exccd certificate
    assert state(out, "voters on distinct hosts") == "FAIL"  # all on this machine: the truth
    assert state(out, "frontend apart from the voters") == "FAIL"
    assert state(out, "fee xpub set") == "PASS" and state(out, "backups replicating") == "PASS", out

    def row(rule):
        line = next(x for x in broken.splitlines() if x.startswith(rule + " "))
        return tuple(line[len(rule):].split(None, 1))
    assert row("voter v1 healthy") == ("FAIL", "wallet locked"), broken
    assert row("voter v2 healthy") == ("FAIL", "wallet in SPV mode"), broken
    assert row("voter v3 healthy")[0] == "FAIL" and row("voter v3 healthy")[1].startswith("unreachable"), broken
    assert row("voters healthy") == ("FAIL", "0 of 3 healthy"), broken
    assert state(broken, "voters configured") == "PASS" and state(broken, "fee xpub set") == "PASS"


def test_preflight_on_mainnet_exits_1_while_a_rule_fails(tmp_path):
    """Nothing listening where the voters should be: the table is still printed, and the exit status is 1."""
    make_certs(tmp_path, "v1,v2,v3")
    cert = tmp_path / "rpc.cert"
    cert.write_bytes(self_signed("x", ["127.0.0.1"])[0])
    voters = ",".join(f"v{i}@127.0.0.1:{free_port()}" for i in (1, 2, 3))
    (tmp_path / "vspd.conf").write_text(
        "[Application Options]\nnetwork = mainnet\nexccduser = u\nexccdpass = rpc-pass-long\n"
        f"exccdcert = {cert}\nsupportemail = ops@example.org\nadminpass = adminadmin\nvoters = {voters}\n")
    assert vspadmin(tmp_path, "createdatabase", MAINNET_XPUB, network=None).returncode == 0
    r = vspadmin(tmp_path, "preflight", network=None)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "listing rule(s) fail on mainnet" in r.stdout and "voter v1 healthy" in r.stdout
    assert "an operator ticket has voted" in r.stdout
    test_mode = next(line for line in r.stdout.splitlines() if line.startswith("mainnet test mode"))
    assert "PASS" in test_mode and "VSP closed" in test_mode  # a new mainnet database starts closed


def test_fee_cap_names_the_price_and_the_cure():
    from vspd.chain.fees import WALLET_MAX_FEE
    q = quotes(100_000, 300 * COIN, COIN // 5, 30.0, MAINNET)
    assert q.fee_now > WALLET_MAX_FEE >= q.fee_next
    problem = q.problem()
    assert "0.2 EXCC" in problem and "current price 300 EXCC" in problem and "next price" not in problem
    assert "lower vspfee" in problem
    ok = quotes(100_000, 50 * COIN, 50 * COIN, 3.0, MAINNET)
    assert ok.problem() is None and "exccwallet pays at most 0.2 EXCC" in ok.detail()
