"""The voter service over gRPC with mutual TLS: who gets in, and honest health."""

import ast
import datetime
import pathlib
import signal
import subprocess
import sys
import time

import grpc
import pytest

from procs import Network, free_port
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable
from voterlink import client, good_add, voter  # noqa: F401 (voter is a fixture)
from vspd.base import tls as certs
from vspd.chain.params import SIMNET
from vspd.frontend.voterpool import judge

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _serialized(text: str) -> bytes:
    """The serialized FileDescriptorProto literal inside a generated _pb2 module."""
    start = text.index("AddSerializedFile(") + len("AddSerializedFile(")
    end = text.index(")\n", start)
    return ast.literal_eval(text[start:end])


def test_stubs_are_in_step_with_the_proto(tmp_path):
    out = tmp_path / "gen"
    (out / "schema").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}", f"--python_out={out}",
                    f"--grpc_python_out={out}", str(ROOT / "schema" / "voter.proto")], check=True)
    from schema import voter_pb2
    assert _serialized((out / "schema" / "voter_pb2.py").read_text()) == voter_pb2.DESCRIPTOR.serialized_pb

    def strip(text: str) -> str:  # the generator stamps its own version; the rest must match
        return "\n".join(line for line in text.splitlines() if "GRPC_GENERATED_VERSION =" not in line)
    assert strip((out / "schema" / "voter_pb2_grpc.py").read_text()) == \
        strip((ROOT / "schema" / "voter_pb2_grpc.py").read_text())


async def test_frontend_certificate_gets_honest_health(voter):
    port, d, chain, wallet = voter
    c = client(port, d)
    h = await c.health()
    assert h.node_connected and h.node_synced and h.node_height == 200 and h.wallet_unlocked
    assert h.wallet_voting and not h.wallet_spv and h.wallet_lag == 0 and h.wallet_version == "8.9.0"
    assert judge(h, "", 200, 6, "simnet") == []
    wallet.unlocked, wallet.lag = False, 9
    h = await c.health()
    assert judge(h, "", 200, 6, "simnet") == ["wallet locked", "lagging 9 blocks"]
    await c.close()


@pytest.mark.parametrize("case", ["other CA", "expired", "voter cert as client", "wrong server name"])
async def test_wrong_certificates_are_refused(voter, case):
    port, d, chain, wallet = voter
    ca = certs.Issued((d / "ca.pem").read_bytes(), (d / "ca.key").read_bytes())
    if case == "other CA":
        other = certs.make_ca()
        bad = certs.issue(other, "frontend", server=False)
        c = client(port, d, cert=bad.cert_pem, key=bad.key_pem)
    elif case == "expired":
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
        bad = certs.issue(ca, "frontend", server=False, days=10, not_before=old)
        c = client(port, d, cert=bad.cert_pem, key=bad.key_pem)
    elif case == "voter cert as client":
        c = client(port, d, cert=(d / "voter-v2" / "voter.pem").read_bytes(),
                   key=(d / "voter-v2" / "voter.key").read_bytes())
    else:  # the frontend expects v2 at this address, but v1 answers
        c = client(port, d, name="v2")
    with pytest.raises(VoterUnavailable):
        await c.health(timeout=3)
    await c.close()


async def test_plaintext_and_certless_clients_are_refused(voter):
    port, d, _, _ = voter
    from schema import voter_pb2 as pb
    from schema import voter_pb2_grpc as pbg
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError):
            await pbg.VoterStub(ch).Health(pb.HealthRequest(), timeout=3)
    creds = grpc.ssl_channel_credentials(root_certificates=(d / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds,
                                       options=[("grpc.ssl_target_name_override", "v1")]) as ch:
        with pytest.raises(grpc.aio.AioRpcError):
            await pbg.VoterStub(ch).Health(pb.HealthRequest(), timeout=3)


async def test_add_ticket_is_idempotent_and_waits_for_the_wallet(voter):
    port, d, chain, wallet = voter
    from chainbuilders import Key, make_ticket
    voting, commit = Key(SIMNET), Key(SIMNET)
    t = make_ticket(voting, commit)
    c = client(port, d)
    with pytest.raises(VoterUnavailable, match="FAILED_PRECONDITION"):
        await c.add_ticket(t.txid(), t.serialize().hex(), chain.block_hash(250), 250, voting.wif, {})
    known = await c.add_ticket(t.txid(), t.serialize().hex(), chain.block_hash(190), 190, voting.wif, {})
    assert not known and voting.wif in wallet.keys and t.txid() in wallet.tickets
    assert await c.add_ticket(t.txid(), t.serialize().hex(), chain.block_hash(190), 190, voting.wif, {})
    listed = await c.list_tickets(0)
    assert [x.hash for x in listed] == [t.txid()] and listed[0].status == "immature"  # 10 blocks old
    wallet.tickets[t.txid()].status = "voted"
    assert [x.hash for x in await c.outcomes(0)] == [t.txid()]
    # EXCC has no agendas: a non-empty choice set is refused by the wallet, and said so
    with pytest.raises(VoterUnavailable, match="no agendas"):
        await c.set_vote_choices(t.txid(), {"x": "yes"})
    await c.set_vote_choices(t.txid(), {})  # empty: no wallet call at all
    await c.close()


async def test_malformed_requests_are_refused_before_the_wallet(voter):
    port, d, chain, wallet = voter
    from chainbuilders import Key, make_ticket
    voting, commit, t, good = good_add(chain)
    c = client(port, d)
    for change in (dict(ticket_hash="zz"), dict(block_hash="x" * 64), dict(block_height=-1),
                   dict(ticket_hex="00"), dict(voting_wif="nonsense"), dict(voting_wif=Key(SIMNET).wif),
                   dict(ticket_hash=make_ticket(voting, commit).txid())):
        with pytest.raises(VoterUnavailable, match="INVALID_ARGUMENT"):
            await c.add_ticket(**(good | change))
    assert wallet.keys == set() and wallet.tickets == {}  # nothing reached the wallet
    with pytest.raises(VoterUnavailable, match="INVALID_ARGUMENT"):
        await c.set_vote_choices("nope", {})
    with pytest.raises(VoterUnavailable, match="INVALID_ARGUMENT"):
        await c.list_tickets(-5)
    await c.close()


FORK_WHILE_CALLING = """
import asyncio, sys
import rpcclient  # what vspd imports before grpc
import grpc, uvloop

async def main():
    channel = grpc.aio.insecure_channel(sys.argv[1])  # the frontend keeps one open to each voter

    async def call():  # and has calls in flight
        try:
            await channel.unary_unary("/voter.Voter/Health")(b"", timeout=2)
        except grpc.RpcError:
            pass
    calls = [asyncio.create_task(call()) for _ in range(4)]
    await asyncio.sleep(0.2)
    for _ in range(4):  # the frontend starting litestream: uvloop forks, then execs
        p = await asyncio.create_subprocess_exec("true")
        await p.wait()
    await asyncio.gather(*calls)

uvloop.run(main())
"""


def test_spawning_litestream_beside_grpc_calls_logs_nothing():
    """uvloop forks to spawn; gRPC's fork handlers logged 'skipping fork() handlers' into frontend.log."""
    r = subprocess.run([sys.executable, "-c", FORK_WHILE_CALLING, f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "fork" not in r.stderr, r.stderr


async def test_health_tells_a_hung_wallet_from_a_hung_voter(tmp_path):
    """A hung wallet or node is reported by the voter within the deadline; only a hung voter times out."""
    net = await Network.create(tmp_path, nvoters=1)
    v = net.voters[0]
    c = VoterClient(VoterAddress(v.name, "127.0.0.1", v.port), *((tmp_path / "certs" / f).read_bytes()
                                                                 for f in ("ca.pem", "frontend.pem", "frontend.key")))
    try:
        await net.voters_ready()
        tip = net.chain.height
        for fake, words in ((v.wallet, "exccwallet not answering: no answer within 3 s (exccwallet hung"),
                            (v.exccd, "exccd not answering: no answer within 3 s (exccd hung")):
            fake.paused = True  # the connection stays up; nothing is answered
            try:
                started = time.monotonic()
                h = await c.health()  # the frontend's own deadline: 5 s
                problems = judge(h, "", tip, 6, "simnet")
            finally:
                fake.paused = False
            assert time.monotonic() - started < 5
            assert any(p.startswith(words) for p in problems), problems
            assert not any("unreachable" in p for p in problems), problems
        v.proc.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(VoterUnavailable) as hung:
                await c.health()
        finally:
            v.proc.proc.send_signal(signal.SIGCONT)
        assert judge(None, str(hung.value), tip, 6, "simnet")[0].startswith(
            "voter process not answering (hung or overloaded; its wallet and node are not the cause)")
        assert judge(None, "v1: Health: UNAVAILABLE: failed to connect", tip, 6, "simnet")[0].startswith(
            "unreachable: ")
        await net.voters_ready()  # and all is well again
    finally:
        await c.close()
        await net.close()
