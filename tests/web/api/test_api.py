"""API v3 through a client that signs like exccwallet: every success and error path."""

import asyncio
import base64
import json

import pytest

from apiflows import fee_addr, paid, quote
from chainbuilders import Key, make_fee_tx, make_parent
from vspd.chain import address
from vspd.chain.fees import vsp_fee
from vspd.chain.params import SIMNET, TESTNET
from vspd.store.models import FEE_BROADCAST, FEE_ERROR, FEE_RECEIVED
from web.api.wire import go_json


async def test_vspinfo_is_signed_and_complete(vsp):
    r = await vsp.client.vspinfo()
    assert r.status == 200
    body = r.body.decode()
    for key in ("apiversions", "timestamp", "pubkey", "feepercentage", "vspclosed", "vspclosedmsg", "network",
                "vspdversion", "voting", "voted", "totalvotingwallets", "votingwalletsonline", "revoked",
                "expired", "missed", "blockheight", "estimatednetworkproportion"):
        assert f'"{key}":' in body
    assert r.json["apiversions"] == [3] and r.json["network"] == "simnet"
    assert '"feepercentage":2,' in body
    assert r.json["blockheight"] == 200
    assert base64.b64decode(r.json["pubkey"]) == vsp.ctx.signer.pubkey
    # cached: the same bytes until a number changes
    assert (await vsp.client.vspinfo()).body == r.body


async def test_feeaddress_quotes_and_reuses_address(vsp):
    t = vsp.new_ticket()
    r = await quote(vsp, t)
    assert r.json["feeamount"] == vsp_fee(20_000_000, 200, 2.0, SIMNET) > 0
    assert r.json["expiration"] - r.json["timestamp"] == 3600
    assert r.json["feeaddress"].startswith("Ss")
    # ticket and parent were broadcast by the VSP
    assert t.hash in vsp.chain.txs
    again = await quote(vsp, t)
    assert again.json["feeaddress"] == r.json["feeaddress"]
    stored = await vsp.store.get_ticket(t.hash)
    assert stored.fee_address_index == 1 and stored.commitment_address == str(t.commitment.address)


async def test_expired_quote_is_repriced_with_same_address(vsp):
    t = vsp.new_ticket()
    r = await quote(vsp, t)
    stored = await vsp.store.get_ticket(t.hash)
    stored.fee_expiration = 1
    await vsp.store.update_ticket(stored)
    vsp.chain.sbits = 0.3
    r2 = await quote(vsp, t)
    assert r2.json["feeaddress"] == r.json["feeaddress"]
    assert r2.json["feeamount"] == vsp_fee(30_000_000, 200, 2.0, SIMNET) != r.json["feeamount"]
    assert r2.json["expiration"] > 1


async def test_payfee_unconfirmed_ticket_is_received_not_broadcast(vsp):
    t = vsp.new_ticket()
    fee = await paid(vsp, t)
    s = await vsp.store.get_ticket(t.hash)
    assert s.fee_tx_status == FEE_RECEIVED and s.voting_wif == t.voting.wif
    assert s.fee_tx_hash == fee.txid() and fee.txid() not in vsp.chain.txs
    st = await vsp.client.ticketstatus(t.commitment.secret, t.hash)
    assert st.status == 200
    assert st.json["feetxstatus"] == "received" and st.json["feetxhash"] == fee.txid()
    assert st.json["ticketconfirmed"] is False and st.json["votechoices"] == {}
    # the signed request/response pair is kept
    changes = await vsp.store.vote_changes(t.hash)
    assert len(changes) == 1 and json.loads(changes[0].request)["tickethash"] == t.hash


async def test_payfee_confirmed_ticket_broadcasts_fee(vsp):
    t = vsp.new_ticket(confirmations=10)
    fee = await paid(vsp, t)
    s = await vsp.store.get_ticket(t.hash)
    assert s.confirmed and s.purchase_height == vsp.chain.height - 9
    assert s.fee_tx_status == FEE_BROADCAST and fee.txid() in vsp.chain.txs


def spends_unknown_outputs(chain, fee) -> None:
    chain.known_inputs_only = True  # the fee's inputs are not on the chain: exccd's own orphan answer


def rejected(chain, fee) -> None:
    chain.send_errors[fee.txid()] = (-26, "rejected: insufficient fee")


@pytest.mark.parametrize("refuse,code,http", [(spends_unknown_outputs, 16, 428), (rejected, 15, 500)])
async def test_payfee_broadcast_failure(vsp, refuse, code, http):
    t = vsp.new_ticket(confirmations=10)
    r = await quote(vsp, t)
    fee = make_fee_tx(fee_addr(r), r.json["feeamount"])
    refuse(vsp.chain, fee)
    p = await vsp.client.payfee(t.commitment.secret, t.hash, fee.serialize().hex(), t.voting.wif)
    assert (p.status, p.code) == (http, code)
    assert (await vsp.store.get_ticket(t.hash)).fee_tx_status == FEE_ERROR
    # the wallet pays again with a new fee tx: now accepted
    vsp.chain.known_inputs_only = False
    fee2 = make_fee_tx(fee_addr(r), r.json["feeamount"])
    p2 = await vsp.client.payfee(t.commitment.secret, t.hash, fee2.serialize().hex(), t.voting.wif)
    assert p2.status == 200


async def test_payfee_errors(vsp):
    c = vsp.client
    unknown = vsp.new_ticket(on_chain=True)
    r = await c.payfee(unknown.commitment.secret, unknown.hash, "00", unknown.voting.wif)
    assert (r.status, r.code) == (400, 6)

    t = vsp.new_ticket()
    q = await quote(vsp, t)
    good_fee = make_fee_tx(fee_addr(q), q.json["feeamount"]).serialize().hex()
    cases = [
        (dict(fee_hex="zz"), 4),
        (dict(fee_hex=make_fee_tx(Key(SIMNET).address, 10**8).serialize().hex()), 4),
        (dict(fee_hex=make_fee_tx(fee_addr(q), q.json["feeamount"] - 1).serialize().hex()), 5),
        (dict(voting_wif=Key(SIMNET).wif), 11),
        (dict(voting_wif="not a wif"), 11),
        (dict(voting_wif=Key(TESTNET, t.voting.secret).wif.replace("c", "c")), None),
    ]
    for change, code in cases:
        args = dict(fee_hex=good_fee, voting_wif=t.voting.wif) | change
        r = await c.payfee(t.commitment.secret, t.hash, args["fee_hex"], args["voting_wif"])
        if code is None:  # testnet and simnet share the WIF id: accepted
            assert r.status == 200
            break
        assert (r.status, r.code) == (400, code), (change, r.json)
        assert (await vsp.store.get_ticket(t.hash)).fee_tx_status == "none"
    r = await c.payfee(t.commitment.secret, t.hash, good_fee, t.voting.wif)
    assert (r.status, r.code) == (400, 3)

    exp = vsp.new_ticket()
    q = await quote(vsp, exp)
    s = await vsp.store.get_ticket(exp.hash)
    s.fee_expiration = 1
    await vsp.store.update_ticket(s)
    r = await c.payfee(exp.commitment.secret, exp.hash,
                       make_fee_tx(fee_addr(q), q.json["feeamount"]).serialize().hex(), exp.voting.wif)
    assert (r.status, r.code) == (400, 8)


async def test_payfee_mainnet_wif_on_simnet_is_refused(vsp):
    t = vsp.new_ticket()
    q = await quote(vsp, t)
    from vspd.chain.params import MAINNET
    r = await vsp.client.payfee(t.commitment.secret, t.hash,
                                make_fee_tx(fee_addr(q), q.json["feeamount"]).serialize().hex(),
                                Key(MAINNET, t.voting.secret).wif)
    assert (r.status, r.code) == (400, 11)


async def test_ticket_that_cannot_vote(vsp):
    vsp.chain.height = 1000
    t = vsp.new_ticket(confirmations=SIMNET.ticket_maturity + 5)  # mature but not live
    r = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    assert (r.status, r.code) == (400, 7)
    vsp.chain.live.add(t.hash)  # live from the next block on, as exccd tells it
    generation = vsp.ctx.exccd.memo.generation
    await vsp.node.mine()
    for _ in range(200):  # the block's notification clears what exccd said of the last block
        if vsp.ctx.exccd.memo.generation > generation:
            break
        await asyncio.sleep(0.01)
    assert (await quote(vsp, t)).status == 200
    old = vsp.new_ticket(confirmations=SIMNET.ticket_maturity + SIMNET.ticket_expiry + 2)
    r = await vsp.client.feeaddress(old.commitment.secret, old.hash, old.ticket_hex, old.parent_hex)
    assert (r.status, r.code) == (400, 7)


async def test_authentication_errors(vsp):
    c = vsp.client
    t = vsp.new_ticket()
    r = await c.feeaddress(Key(SIMNET).secret, t.hash, t.ticket_hex, t.parent_hex)
    assert (r.status, r.code) == (400, 10)
    r = await c.ticketstatus(None, t.hash)
    assert (r.status, r.code) == (400, 0) and "VSP-Client-Signature" in r.json["message"]
    r = await c.ticketstatus(t.commitment.secret, t.hash, sig_override="!!notbase64")
    assert (r.status, r.code) == (400, 10)
    for bad in ("abc", "g" * 64, t.hash + "00"):
        r = await c.ticketstatus(t.commitment.secret, bad)
        assert (r.status, r.code) == (400, 0) and r.json["message"] == "invalid ticket hash"
    # a known transaction that is not a ticket
    parent = make_parent()
    vsp.chain.add(parent)
    r = await c.ticketstatus(t.commitment.secret, parent.txid())
    assert (r.status, r.code) == (400, 13)
    # unknown to database and node: a client mistake, code 6 (upstream answers 500/code 1)
    r = await c.ticketstatus(t.commitment.secret, "ab" * 32)
    assert (r.status, r.code) == (400, 6)


async def test_broadcast_ticket_errors(vsp):
    c = vsp.client
    t = vsp.new_ticket()
    k = t.commitment.secret
    r = await c.feeaddress(k, t.hash, "zz", t.parent_hex)
    assert (r.status, r.code, r.json["message"]) == (400, 0, "cannot decode ticket hex")
    r = await c.feeaddress(k, t.hash, t.parent_hex, t.parent_hex)
    assert (r.status, r.code) == (400, 13)
    other = vsp.new_ticket()
    r = await c.feeaddress(k, t.hash, other.ticket_hex, other.parent_hex)
    assert (r.status, r.json["message"]) == (400, "ticket hex does not match hash")
    r = await c.feeaddress(k, t.hash, t.ticket_hex, "zz")
    assert r.json["message"] == "cannot decode parent hex"
    stranger = make_parent()
    r = await c.feeaddress(k, t.hash, t.ticket_hex, stranger.serialize().hex())
    assert r.json["message"] == "invalid ticket parent"
    vsp.chain.send_errors[t.hash] = (-26, "rejected")
    r = await c.feeaddress(k, t.hash, t.ticket_hex, t.parent_hex)
    assert (r.status, r.code) == (500, 14)


async def test_ticketstatus_works_while_closed_but_intake_does_not(vsp):
    t = vsp.new_ticket()
    await quote(vsp, t)
    vsp.ctx.vspclosed = True
    n = vsp.new_ticket()
    r = await vsp.client.feeaddress(n.commitment.secret, n.hash, n.ticket_hex, n.parent_hex)
    assert (r.status, r.code) == (400, 2)
    r = await vsp.client.payfee(t.commitment.secret, t.hash, "00", t.voting.wif)
    assert (r.status, r.code) == (400, 2)
    r = await vsp.client.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex,
                                        str(Key(SIMNET).address))
    assert (r.status, r.code) == (400, 2)
    assert (await vsp.client.ticketstatus(t.commitment.secret, t.hash)).status == 200
    assert n.hash not in vsp.chain.txs  # closed VSP does no work for new tickets


async def test_setvotechoices(vsp):
    c = vsp.client
    t = vsp.new_ticket()
    await quote(vsp, t)
    r = await c.setvotechoices(t.commitment.secret, t.hash, {})
    assert (r.status, r.code) == (400, 12)
    await paid(vsp, t)
    r = await c.setvotechoices(t.commitment.secret, t.hash, {"lnsupport": "yes"}, timestamp=2**40)
    assert (r.status, r.code) == (400, 9) and "not found for vote version 0" in r.json["message"]
    r = await c.setvotechoices(t.commitment.secret, t.hash, {}, tspend={"a" * 64: "bogus"}, timestamp=2**40)
    assert (r.status, r.code) == (400, 9)
    r = await c.setvotechoices(t.commitment.secret, t.hash, {}, tspend={"a" * 64: "yes"}, timestamp=2**40)
    assert r.status == 200
    # replay: a timestamp not newer than the last stored one
    r = await c.setvotechoices(t.commitment.secret, t.hash, {}, timestamp=2**40)
    assert (r.status, r.code) == (400, 17)
    r = await c.setvotechoices(t.commitment.secret, t.hash, {}, treasury={"b" * 66: "no"}, timestamp=2**40 + 1)
    assert r.status == 200
    s = await vsp.store.get_ticket(t.hash)
    assert s.tspend_policy == {"a" * 64: "yes"} and s.treasury_policy == {"b" * 66: "no"}  # merged
    st = await c.ticketstatus(t.commitment.secret, t.hash)
    assert st.json["tspendpolicy"] == {"a" * 64: "yes"}
    s.outcome = "voted"
    await vsp.store.update_ticket(s)
    r = await c.setvotechoices(t.commitment.secret, t.hash, {}, timestamp=2**41)
    assert (r.status, r.code, r.json["message"]) == (400, 7, "ticket not eligible to vote (status=voted)")


async def test_vote_change_history_is_limited(vsp):
    vsp.store.max_vote_changes = 3
    t = vsp.new_ticket()
    await paid(vsp, t)
    for i in range(4):
        assert (await vsp.client.setvotechoices(t.commitment.secret, t.hash, {}, timestamp=2**40 + i)).status == 200
    seqs = [c.seq for c in await vsp.store.vote_changes(t.hash)]
    assert seqs == [2, 3, 4]


async def test_setaltsignaddr_and_signing_with_it(vsp):
    c = vsp.client
    t = vsp.new_ticket()
    alt = Key(SIMNET)
    r = await c.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex, "xxx")
    assert (r.status, r.code) == (400, 0) and r.json["message"].startswith('failed to decode address "xxx"')
    r = await c.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex,
                               str(Key(TESTNET).address))
    assert "is for testnet" in r.json["message"]
    p2sh = str(address.Address(SIMNET, address.P2SH, b"\x01" * 20))
    r = await c.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex, p2sh)
    assert r.json["message"] == "wrong type for alternate signing address"
    r = await c.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex, str(alt.address))
    assert r.status == 200
    r = await c.setaltsignaddr(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex, str(Key(SIMNET).address))
    assert r.json["message"] == "alternate sign address data already exists"
    # the alt key may now sign every request of that ticket
    r = await c.feeaddress(alt.secret, t.hash, t.ticket_hex, t.parent_hex)
    assert r.status == 200
    st = await c.ticketstatus(alt.secret, t.hash)
    assert st.json["altsignaddress"] == str(alt.address)


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b"42", b'"x"', b"{", b"\xff\xfe", b'{"tickethash": 5}', b'{"tickethash": null}',
    b'{"tickethash": "' + b"a" * 64 + b'", "timestamp": "1"}', b'{"tickethash": NaN}',
    b"[" * 100000,
])
async def test_bad_bodies_are_code_0_never_5xx(vsp, body):
    for path in ("/api/v3/feeaddress", "/api/v3/payfee", "/api/v3/ticketstatus", "/api/v3/setvotechoices",
                 "/api/v3/setaltsignaddr"):
        r = await vsp.client.post(path, body, Key(SIMNET).secret)
        assert r.status == 400, (path, body[:40], r.json)
        assert r.code in (0, 6, 13), (path, r.json)


async def test_wrong_field_types_after_auth(vsp):
    t = vsp.new_ticket()
    await quote(vsp, t)
    for body in (
        {"timestamp": 1.5, "tickethash": t.hash, "feetx": "00", "votingkey": "x", "votechoices": {}},
        {"timestamp": 1, "tickethash": t.hash, "feetx": "00", "votingkey": "x", "votechoices": None},
        {"timestamp": 1, "tickethash": t.hash, "feetx": "00", "votingkey": "x", "votechoices": {"a": 1}},
        {"timestamp": 1, "tickethash": t.hash, "feetx": "00", "votingkey": "x", "votechoices": {},
         "tspendpolicy": {str(i): "yes" for i in range(4)}},
        {"timestamp": 0, "tickethash": t.hash, "feetx": "00", "votingkey": "x", "votechoices": {}},
    ):
        r = await vsp.client.post("/api/v3/payfee", go_json(body), t.commitment.secret)
        assert (r.status, r.code) == (400, 0), (body, r.json)


async def test_oversized_body_is_refused(vsp):
    t = vsp.new_ticket()
    body = go_json({"tickethash": t.hash, "pad": "x" * (1 << 20)})
    r = await vsp.client.post("/api/v3/ticketstatus", body, t.commitment.secret)
    assert (r.status, r.code) == (400, 0) and "1 MiB" in r.json["message"]


async def test_node_down_is_code_1(vsp):
    t = vsp.new_ticket()
    await vsp.node.stop()
    await asyncio.sleep(0.1)
    r = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    assert (r.status, r.code) == (500, 1)


async def test_concurrent_feeaddress_get_distinct_addresses(vsp):
    tickets = [vsp.new_ticket() for _ in range(200)]
    replies = await asyncio.gather(*(quote(vsp, t) for t in tickets))
    addrs = {r.json["feeaddress"] for r in replies}
    assert len(addrs) == 200
    idx = sorted([(await vsp.store.get_ticket(t.hash)).fee_address_index for t in tickets])
    assert idx == list(range(1, 201))
    assert (await vsp.store.current_xpub()).last_index == 200


async def test_unknown_routes_and_methods(vsp):
    async with vsp.client.http.get(vsp.url + "/api/v3/feeaddress") as r:
        assert r.status == 405
    async with vsp.client.http.get(vsp.url + "/api/v3/nothing") as r:
        assert r.status == 404


async def test_concurrent_payfee_takes_one_fee_only(vsp):
    t = vsp.new_ticket()
    q = await quote(vsp, t)
    fees = [make_fee_tx(fee_addr(q), q.json["feeamount"]) for _ in range(5)]
    replies = await asyncio.gather(*(vsp.client.payfee(t.commitment.secret, t.hash, f.serialize().hex(),
                                                        t.voting.wif) for f in fees))
    assert sorted((r.status, r.code) for r in replies) == [(200, None)] + [(400, 3)] * 4
    winner = fees[[r.status for r in replies].index(200)]
    assert (await vsp.store.get_ticket(t.hash)).fee_tx_hash == winner.txid()


async def test_pipeline_write_never_undoes_a_payfee(vsp):
    """A pass that read the ticket before a payfee committed must not overwrite it."""
    t = vsp.new_ticket()
    await quote(vsp, t)
    stale = await vsp.store.get_ticket(t.hash)  # what a pipeline pass read
    await paid(vsp, t)  # a payfee lands while the pass awaits the node
    assert await vsp.store.update_fields(stale.hash, {"confirmed": True, "purchase_height": 190},
                                         {"confirmed": False})
    now = await vsp.store.get_ticket(t.hash)
    assert now.confirmed and now.fee_tx_status == FEE_RECEIVED and now.voting_wif == t.voting.wif


def test_remembered_signature_checks_answer_as_verify_message(monkeypatch):
    from vspd.chain.message import sign_message
    from web.api import checks as ticketchecks
    monkeypatch.setattr(ticketchecks, "REMEMBERED_SIGNATURES", 8)
    monkeypatch.setattr(ticketchecks, "_VERIFIED", {})
    owner, other = Key(SIMNET), Key(SIMNET)
    for i in range(20):
        body = b'{"tickethash":"%064d"}' % i
        signature = base64.b64encode(sign_message(owner.secret, body)).decode()
        for _ in range(2):  # asked, then remembered: the same answers
            assert ticketchecks._verified(str(owner.address), signature, body, SIMNET)
            assert not ticketchecks._verified(str(other.address), signature, body, SIMNET)
            assert not ticketchecks._verified(str(owner.address), signature, body + b" ", SIMNET)
            assert not ticketchecks._verified(str(owner.address), signature + "A" * 100, body, SIMNET)
        assert len(ticketchecks._VERIFIED) <= 8
