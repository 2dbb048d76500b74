"""The ticket and fee rules (vspd/chain/rules.py), each with cases that pass and cases that fail."""

import pytest

from chainbuilders import Key, make_fee_tx, make_ticket
from vspd.chain import rules, tx, wif
from vspd.chain.errors import ChainError
from vspd.chain.params import SIMNET

HASH = "0123456789abcdef" * 4


def test_required_confirmations():
    assert rules.REQUIRED_CONFS == 6


@pytest.mark.parametrize("text", [HASH, "f" * 64, "0" * 64])
def test_a_lower_case_hash_is_one_either_way(text):
    assert rules.is_hash(text)
    assert rules.is_hash(text, any_case=True)


@pytest.mark.parametrize("text", [HASH.upper(), HASH[:63] + "F", "ABCDEF" + HASH[6:]])
def test_upper_case_only_where_a_person_types_it(text):
    assert not rules.is_hash(text)
    assert rules.is_hash(text, any_case=True)


@pytest.mark.parametrize("text", ["", HASH[:63], HASH + "0", HASH[:63] + "g", HASH + "\n", " " + HASH, HASH + " ",
                                  HASH[:32] + "-" + HASH[33:], "0x" + HASH[2:], "٠" * 64])
def test_anything_else_is_no_hash(text):
    assert not rules.is_hash(text)
    assert not rules.is_hash(text, any_case=True)


def test_a_fee_paying_at_least_the_fee_pays():
    fee_addr = Key(SIMNET).address
    fee = make_fee_tx(fee_addr, 12_345)
    assert rules.pays_fee(fee, fee_addr, 12_345)
    assert rules.pays_fee(fee, fee_addr, 12_344)
    assert rules.pays_fee(fee, fee_addr, 1)


def test_a_fee_paying_less_or_elsewhere_does_not_pay():
    fee_addr = Key(SIMNET).address
    fee = make_fee_tx(fee_addr, 12_345)
    assert not rules.pays_fee(fee, fee_addr, 12_346)
    assert not rules.pays_fee(fee, Key(SIMNET).address, 1)  # another address: paid nothing
    fee.outputs[0].version = 1  # only a version-0 output pays an address
    assert not rules.pays_fee(fee, fee_addr, 1)


def test_the_tickets_voting_key_votes_it():
    voting, commitment = Key(SIMNET), Key(SIMNET)
    ticket = make_ticket(voting, commitment)
    assert rules.key_votes_ticket(wif.decode(voting.wif, SIMNET), ticket, SIMNET)
    reparsed = tx.from_hex(ticket.serialize().hex())
    assert rules.key_votes_ticket(wif.decode(voting.wif, SIMNET), reparsed, SIMNET)


def test_any_other_key_does_not():
    voting, commitment = Key(SIMNET), Key(SIMNET)
    ticket = make_ticket(voting, commitment)
    assert not rules.key_votes_ticket(wif.decode(Key(SIMNET).wif, SIMNET), ticket, SIMNET)
    assert not rules.key_votes_ticket(wif.decode(commitment.wif, SIMNET), ticket, SIMNET)  # the staker's key


def test_a_ticket_without_a_version_0_output_0_is_voted_by_no_key():
    voting = Key(SIMNET)
    key = wif.decode(voting.wif, SIMNET)
    ticket = make_ticket(voting, Key(SIMNET))
    ticket.outputs[0].version = 1
    assert not rules.key_votes_ticket(key, ticket, SIMNET)
    ticket.outputs = []
    assert not rules.key_votes_ticket(key, ticket, SIMNET)


def test_a_key_without_a_public_key_is_refused_as_a_bad_key():
    voting = Key(SIMNET)
    ed25519 = wif.WIF(SIMNET.wif_id, voting.secret, True, wif.ED25519)
    with pytest.raises(ChainError):
        rules.key_votes_ticket(ed25519, make_ticket(voting, Key(SIMNET)), SIMNET)
