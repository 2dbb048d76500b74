"""Hostile sizes (#14 item 3): every field is bounded before it is decoded, on every path.

Base58 decoding is quadratic: a 200,000-character "WIF" once held a voter's
event loop for 4.7 s. Each decoder now refuses text longer than its value
could be before any arithmetic, and says so in a short message; these tests
send such values through the chain layer, the HTTP API, the voter's gRPC
service, the admin forms and vspadmin.
"""

import logging

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiflows import paid, quote
from chainbuilders import Key
from conftest import SIMNET_XPUB
from pageflows import admin, post  # noqa: F401 (admin is a fixture)
from procs import vspadmin
from rpcclient.voterclient import VoterUnavailable
from voterlink import client, good_add, voter  # noqa: F401 (voter is a fixture)
from vspclient import now
from vspd.chain import address, base58, bip32, tx, wif
from vspd.chain.errors import ChainError
from vspd.chain.params import MAINNET, NETWORKS, SIMNET
from web.api.wire import go_json

HUGE = 200_000  # characters: the size that stalled a voter for 4.7 s
SHORT = 200  # a refusal says why in fewer characters than this, whatever it was sent


@pytest.mark.parametrize("decode,needle", [
    (lambda: wif.decode("5" * HUGE, MAINNET), "base58: 200000 characters"),
    (lambda: address.decode("S" * HUGE, SIMNET), "failed to decode address: 200000 characters"),
    (lambda: bip32.decode_xpub("x" * HUGE, SIMNET), "base58: 200000 characters"),
    (lambda: base58.b58decode("2" * HUGE), "base58: 200000 characters"),
    (lambda: base58.check_decode("2" * HUGE), "base58: 200000 characters"),
    (lambda: tx.from_hex("00" * (tx.MAX_TX_BYTES + 1)), "exceeds the maximum of 1000000 bytes"),
    (lambda: tx.deserialize(b"\x00" * (tx.MAX_TX_BYTES + 1)), "exceeds the maximum of 1000000"),
], ids=["wif", "address", "xpub", "base58", "base58check", "tx hex", "tx bytes"])
def test_decoders_refuse_overlong_input_before_decoding_it(decode, needle):
    with pytest.raises(ChainError) as e:
        decode()
    assert needle in str(e.value) and len(str(e.value)) < SHORT


@given(st.binary(max_size=140))
def test_the_bound_admits_every_real_encoding(data):
    assert len(base58.b58encode(data)) <= base58.max_encoded_len(len(data))


def test_the_bounds_are_the_sizes_of_the_real_things():
    assert (base58.max_encoded_len(wif.WIF_BYTES), base58.max_encoded_len(address.ADDRESS_BYTES),
            base58.max_encoded_len(bip32.XPUB_BYTES)) == (52, 36, 112)
    for net in NETWORKS.values():
        key = Key(net)
        for compressed in (True, False):
            text = wif.WIF(net.wif_id, b"\xff" * 15 + b"\xfe" + bytes(16), compressed).encode()  # just under n
            assert wif.decode(text, net).compressed is compressed
        assert address.decode(str(key.address), net) == key.address
    assert str(bip32.decode_xpub(SIMNET_XPUB, SIMNET)) == SIMNET_XPUB


# -- the HTTP API ------------------------------------------------------------

async def test_api_refuses_overlong_fields_with_their_usual_codes_and_short_messages(vsp):
    c = vsp.client
    t = vsp.new_ticket()
    r = await quote(vsp, t)
    p = await c.payfee(t.commitment.secret, t.hash, "00", "9" * HUGE)
    assert (p.status, p.code) == (400, 11) and "200000 characters" in p.json["message"]
    assert len(p.body) < SHORT + 150
    r = await c.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex, "S" * HUGE)
    assert (r.status, r.code) == (400, 0) and "200000 characters" in r.json["message"] and len(r.body) < SHORT + 300
    r = await c.post("/api/v3/ticketstatus", go_json({"tickethash": t.hash + "\n"}), t.commitment.secret)
    assert (r.status, r.code) == (400, 0) and r.json["message"] == "invalid ticket hash"


async def test_api_quotes_at_most_a_little_of_an_overlong_vote_choice(vsp):
    t = vsp.new_ticket()
    await paid(vsp, t)
    r = await vsp.client.setvotechoices(t.commitment.secret, t.hash, {"a" * HUGE: "yes"}, now() + 5)
    assert (r.status, r.code) == (400, 9) and "(200000 characters)" in r.json["message"]
    assert len(r.body) < 400
    r = await vsp.client.setvotechoices(t.commitment.secret, t.hash, {}, now() + 6, treasury={"ab" * 33: "x" * HUGE})
    assert (r.status, r.code) == (400, 9) and len(r.body) < 400


# -- the voter's gRPC service -------------------------------------------------

async def test_voter_refuses_overlong_fields_before_the_wallet(voter):
    port, d, chain, wallet = voter
    voting, _, t, good = good_add(chain)
    c = client(port, d)
    try:
        for change, needle in ((dict(voting_wif="9" * HUGE), "base58: 200000 characters"),
                               (dict(ticket_hex="00" * 400_000), "trailing bytes"),
                               (dict(choices={f"a{i}": "yes" for i in range(65)}), "at most 64 vote choices"),
                               (dict(choices={"a" * 129: "yes"}), "at most 64 vote choices")):
            with pytest.raises(VoterUnavailable, match="INVALID_ARGUMENT") as e:
                await c.add_ticket(**(good | change))
            assert needle in str(e.value) and len(str(e.value)) < SHORT, str(e.value)[:300]
        with pytest.raises(VoterUnavailable, match="INVALID_ARGUMENT: at most 64"):
            await c.set_vote_choices(t.txid(), {"a" * HUGE: "yes"})
        with pytest.raises(VoterUnavailable, match="RESOURCE_EXHAUSTED"):  # over 1 MiB: grpc refuses it unread
            await c.add_ticket(t.txid(), "00" * (tx.MAX_TX_BYTES + 1), good["block_hash"], 190, voting.wif, {})
        assert wallet.keys == set() and wallet.tickets == {}
    finally:
        await c.close()


async def test_voter_answers_bytes_that_are_not_protobuf_with_invalid_argument_and_no_traceback(voter, caplog):
    port, d, _, _ = voter
    c = client(port, d)
    caplog.set_level(logging.DEBUG)
    try:
        channel = c._channel
        for method, streaming in (("Health", False), ("AddTicket", False), ("SetVoteChoices", False),
                                  ("ListTickets", True), ("Outcomes", False)):
            path = f"/vspd.voter.Voter/{method}"
            call = channel.unary_stream(path) if streaming else channel.unary_unary(path)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                reply = call(b"\xff\xff\xff\xff\x0f" + b"\x00" * 100, timeout=5)
                if streaming:
                    async for _ in reply:
                        pass
                else:
                    await reply
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, e.value)
            assert e.value.details() == f"the request is not a valid {method}Request message"
        assert (await c.health()).node_connected  # and it still serves real requests
    finally:
        await c.close()
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


# -- the admin forms and vspadmin -------------------------------------------

async def test_admin_forms_refuse_overlong_keys(admin):  # noqa: F811 (the fixture)
    vsp = admin
    t = vsp.new_ticket(confirmations=10)
    status, text, _ = await post(vsp, "/admin/ownticket", {"hash": t.hash, "votingkey": "9" * HUGE})
    assert status == 400 and "base58: 200000 characters" in text and await vsp.store.get_ticket(t.hash) is None
    status, text, _ = await post(vsp, "/admin/xpub", {"xpub": "x" * HUGE})
    assert status == 400 and "base58: 200000 characters" in text and len(await vsp.store.all_xpubs()) == 1


def test_vspadmin_refuses_an_overlong_xpub(tmp_path):
    long = "x" * 100_000  # near the kernel's limit for one command-line argument
    r = vspadmin(tmp_path, "createdatabase", long)
    assert r.returncode == 2 and "base58: 100000 characters" in r.stderr and len(r.stderr) < SHORT
    assert not (tmp_path / "data").exists()
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    db = tmp_path / "data" / "simnet" / "vspd.db"
    before = db.read_bytes()
    r = vspadmin(tmp_path, "retirexpub", long)
    assert r.returncode == 2 and "base58: 100000 characters" in r.stderr and db.read_bytes() == before
