"""The voter service over gRPC with mutual TLS: who gets in, and honest health."""

import ast
import datetime
import pathlib
import subprocess
import sys

import grpc
import pytest

from conftest import served_voter
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable
from vspd import certs
from vspd.chain.params import SIMNET
from vspd.voters import judge

ROOT = pathlib.Path(__file__).resolve().parents[1]


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


@pytest.fixture
async def voter(tmp_path):
    async with served_voter(tmp_path) as (port, d, chain, wallet, _):
        yield port, d, chain, wallet


def client(port, d, name="v1", ca=None, cert=None, key=None):
    return VoterClient(VoterAddress(name, "127.0.0.1", port), ca or (d / "ca.pem").read_bytes(),
                       cert or (d / "frontend.pem").read_bytes(), key or (d / "frontend.key").read_bytes())


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


def good_add(chain) -> tuple:
    """(voting key, commitment key, ticket, a valid AddTicket request as add_ticket's keywords)."""
    from chainbuilders import Key, make_ticket
    voting, commit = Key(SIMNET), Key(SIMNET)
    t = make_ticket(voting, commit)
    return voting, commit, t, dict(ticket_hash=t.txid(), ticket_hex=t.serialize().hex(),
                                   block_hash=chain.block_hash(190), block_height=190, voting_wif=voting.wif,
                                   choices={})


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
