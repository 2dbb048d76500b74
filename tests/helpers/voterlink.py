"""The voter link as tests/voter/test_voter_link.py and tests/web/http/test_hostile_sizes.py use it: a served
voter (the voter fixture), a frontend's client of it, and a valid AddTicket request."""

import pytest

from conftest import served_voter
from rpcclient.voterclient import VoterAddress, VoterClient
from vspd.chain.params import SIMNET


@pytest.fixture
async def voter(tmp_path):
    async with served_voter(tmp_path) as (port, d, chain, wallet, _):
        yield port, d, chain, wallet


def client(port, d, name="v1", ca=None, cert=None, key=None):
    return VoterClient(VoterAddress(name, "127.0.0.1", port), ca or (d / "ca.pem").read_bytes(),
                       cert or (d / "frontend.pem").read_bytes(), key or (d / "frontend.key").read_bytes())


def good_add(chain) -> tuple:
    """(voting key, commitment key, ticket, a valid AddTicket request as add_ticket's keywords)."""
    from chainbuilders import Key, make_ticket
    voting, commit = Key(SIMNET), Key(SIMNET)
    t = make_ticket(voting, commit)
    return voting, commit, t, dict(ticket_hash=t.txid(), ticket_hex=t.serialize().hex(),
                                   block_hash=chain.block_hash(190), block_height=190, voting_wif=voting.wif,
                                   choices={})
