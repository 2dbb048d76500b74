"""Ticket recognition, fee-tx checks and decoder robustness (hypothesis)."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainbuilders import Key, make_fee_tx, make_ticket
from vspd.chain import address, base58, bip32, message, tx, wif
from vspd.chain.errors import ChainError
from vspd.chain.params import MAINNET, NETWORKS, SIMNET, TESTNET
from vspd.chain.semver import SemVer
from vspd.chain.votes import check_treasury_policy, check_tspend_policy, check_vote_choices


def test_ticket_recognised_and_addresses_extracted():
    voting, commit = Key(SIMNET), Key(SIMNET)
    t = make_ticket(voting, commit)
    parsed = tx.from_hex(t.serialize().hex())
    assert tx.is_ticket(parsed, SIMNET)
    assert tx.commitment_address(parsed, SIMNET) == commit.address
    assert tx.voting_address(parsed, SIMNET) == voting.address
    assert parsed.outputs[0].script == tx.voting_script(voting.address)
    assert parsed.txid() == t.txid()


def test_p2sh_commitment_flag():
    t = make_ticket(Key(SIMNET), Key(SIMNET), p2sh_commitment=True)
    assert tx.commitment_address(t, SIMNET).kind == address.P2SH


def test_non_tickets_rejected_with_reason():
    t = make_ticket(Key(SIMNET), Key(SIMNET))
    t.outputs.append(tx.TxOut(0, b"\x6a"))
    assert "output count" in tx.ticket_problem(t, SIMNET)
    fee = make_fee_tx(Key(SIMNET).address, 1000)
    assert tx.ticket_problem(fee, SIMNET) is not None
    t2 = make_ticket(Key(SIMNET), Key(SIMNET))
    t2.outputs[0].script = t2.outputs[0].script[1:]
    assert "OP_SSTX" in tx.ticket_problem(t2, SIMNET)


def test_fee_tx_sanity_and_payment():
    fee_addr = Key(SIMNET).address
    f = make_fee_tx(fee_addr, 12345)
    assert tx.sanity_problem(f, SIMNET) is None
    assert tx.paid_to(f, fee_addr) == 12345
    assert tx.paid_to(f, Key(SIMNET).address) == 0
    f.inputs.append(f.inputs[0])
    assert "same outpoint" in tx.sanity_problem(f, SIMNET)
    g = make_fee_tx(fee_addr, -1)
    assert "out of range" in tx.sanity_problem(g, SIMNET)


def test_vote_preferences_exxc_has_no_agendas():
    check_vote_choices({}, SIMNET)
    for bad in ({"": "yes"}, {"Fake agenda": "yes"}, {"lnsupport": "yes"}):
        with pytest.raises(ChainError, match="not found for vote version 0"):
            check_vote_choices(bad, MAINNET)
    check_tspend_policy({"a" * 64: "yes", "b" * 64: ""})
    for bad in ({"": "yes"}, {"a": "yes"}, {"non hex characters": "no"}, {"a" * 65: "no"}, {"a" * 64: "1234"}):
        with pytest.raises(ChainError):
            check_tspend_policy(bad)
    check_treasury_policy({"a" * 66: "abstain"})
    for bad in ({"a" * 67: "yes"}, {"a" * 64: "yes"}, {"a" * 66: "1234"}):
        with pytest.raises(ChainError):
            check_treasury_policy(bad)


# -- property tests ---------------------------------------------------------

nets = st.sampled_from(list(NETWORKS.values()))


@given(st.binary(max_size=80))
def test_base58_roundtrip(data):
    assert base58.b58decode(base58.b58encode(data)) == data
    assert base58.check_decode(base58.check_encode(b"\x01\x02" + data), 2) == (b"\x01\x02", data)


@given(nets, st.binary(min_size=20, max_size=20), st.sampled_from([address.P2PKH, address.P2SH]))
def test_address_roundtrip(net, h, kind):
    a = address.Address(net, kind, h)
    assert address.decode(str(a), net) == a
    for other in NETWORKS.values():
        if other.pkh_prefix != net.pkh_prefix:
            with pytest.raises(ChainError, match=f"is for {net.name}"):
                address.decode(str(a), other)


@given(nets, st.integers(min_value=1, max_value=2**256 - 2**130), st.booleans())
def test_wif_roundtrip(net, k, compressed):
    w = wif.WIF(net.wif_id, k.to_bytes(32, "big"), compressed)
    assert wif.decode(w.encode(), net) == w


@settings(max_examples=60)
@given(st.integers(min_value=0, max_value=20), st.integers(min_value=1, max_value=3),
       st.binary(max_size=60), st.integers(min_value=0, max_value=2**40))
def test_tx_roundtrip(nin, nout, script, value):
    t = tx.Tx(inputs=[tx.TxIn(os.urandom(32), i, i % 2, value_in=value, sig_script=script) for i in range(nin)],
              outputs=[tx.TxOut(value, script, version=i) for i in range(nout)], locktime=7, expiry=9)
    raw = t.serialize()
    assert tx.deserialize(raw).serialize() == raw
    assert tx.deserialize(t.prefix_serialization()).txid() == t.txid()


@given(st.binary(max_size=300))
def test_tx_decoder_only_raises_chainerror(raw):
    try:
        tx.deserialize(raw)
    except ChainError:
        pass


@given(st.text(max_size=120))
def test_text_decoders_only_raise_chainerror(text):
    for fn in (lambda: address.decode(text, MAINNET), lambda: wif.decode(text, TESTNET),
               lambda: bip32.decode_xpub(text, SIMNET), lambda: base58.check_decode(text),
               lambda: SemVer.parse(text), lambda: tx.from_hex(text)):
        try:
            fn()
        except ChainError:
            pass


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_signature_recovery_only_raises_chainerror(sig, msg):
    try:
        message.recover_address(sig, msg, TESTNET)
    except ChainError:
        pass
    assert message.verify_message("TsULH3kCRvDjwTh9CoMnhiNMUkk2JvaecRB", "", msg, TESTNET) is False


@given(st.binary(min_size=82, max_size=82))
def test_xpub_bytes_only_raise_chainerror(raw):
    try:
        bip32.decode_xpub(base58.b58encode(raw), MAINNET)
    except ChainError:
        pass


def test_chain_layer_has_no_io_or_foreign_imports():
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[2] / "vspd" / "chain"
    forbidden = re.compile(r"^\s*(import|from)\s+(web|rpcclient|vspd\.(?!chain)|socket|asyncio|aiohttp|"
                           r"aiosqlite|sqlite3|subprocess|os\b|pathlib|urllib|requests)", re.M)
    for f in root.glob("*.py"):
        assert not forbidden.search(f.read_text()), f
        assert "open(" not in f.read_text(), f
