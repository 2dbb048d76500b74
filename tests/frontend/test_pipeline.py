"""The consistency check of one voter: what is missing is added, what differs is fixed, a page at a time."""

import time
from types import SimpleNamespace

import pytest

from chainbuilders import Key, make_ticket
from conftest import make_store
from fakenode import exccd_on
from fakes.exccd import FakeChain
from rpcclient import RPCError
from rpcclient.errors import ERR_NO_TX_INFO
from schema import voter_pb2 as pb
from vspd.frontend import pipeline
from vspd.chain.params import SIMNET
from vspd.frontend.pipeline import Pipeline
from vspd.frontend.voterpool import VoterPool, VoterState
from vspd.store import Ticket


class FakeVoterClient:
    """A voter's wallet as check_voter sees it: what it lists, what it is told."""

    name = "v1"

    def __init__(self):
        self.wallet: dict[str, dict] = {}
        self.starts: list[int] = []
        self.added = self.fixed = 0

    async def iter_tickets(self, start_height: int):
        self.starts.append(start_height)
        for h, choices in self.wallet.items():
            yield pb.TicketInfo(hash=h, status="live", choices=[pb.VoteChoice(agenda_id=a, choice_id=c)
                                                                 for a, c in choices.items()])

    async def add_ticket(self, ticket_hash, ticket_hex, block_hash, block_height, voting_wif, choices) -> bool:
        assert voting_wif
        self.wallet[ticket_hash] = dict(choices)
        self.added += 1
        return False

    async def list_pending(self) -> list:
        return []

    async def set_vote_choices(self, ticket_hash: str, choices: dict) -> None:
        self.wallet[ticket_hash] = dict(choices)
        self.fixed += 1


def pool_of(state: VoterState) -> VoterPool:
    """A pool holding just this voter: the pool writes what check_voter learns of it."""
    pool = VoterPool([], b"", b"", b"", "simnet", maxlag=6, minvoters=1, local_height=lambda: 100)
    pool.states = [state]
    return pool


@pytest.fixture
async def world(tmp_path):
    chain = FakeChain(SIMNET)
    async with exccd_on(chain) as (node, exccd):
        store = await make_store(tmp_path / "vspd.db")
        try:
            yield SimpleNamespace(chain=chain, store=store, exccd=exccd)
        finally:
            await store.close()


async def votable(world, choices: dict) -> str:
    voting = Key(SIMNET)
    t = make_ticket(voting, Key(SIMNET))
    world.chain.add(t, block=world.chain.height - 10)
    ticket = Ticket(hash=t.txid(), commitment_address="Ss" + "x" * 33, fee_xpub_id=0, fee_address_index=0,
                    fee_address="", fee_amount=1, fee_expiration=0, purchase_height=world.chain.height - 10,
                    confirmed=True, voting_wif=voting.wif, vote_choices=choices, fee_tx_status="confirmed")
    await world.store.insert_new_ticket(ticket, lambda xpub, last: (last + 1, f"addr{last + 1}"))
    return ticket.hash


async def test_check_voter_adds_and_fixes_across_pages(world, monkeypatch):
    monkeypatch.setattr(pipeline, "CHECK_PAGE", 3)
    hashes = [await votable(world, {"agenda": "yes"} if i % 2 else {}) for i in range(8)]
    client = FakeVoterClient()
    for h in hashes[:5]:
        client.wallet[h] = {}  # the wallet has five of them, all without choices
    client.wallet["ff" * 32] = {}  # and one this VSP does not vote (not ours to remove)
    state = VoterState(client, health=pb.HealthReply())
    p = Pipeline(world.store, world.exccd, pool_of(state), SIMNET)
    assert await p.check_voter(state) is True and state.missing == set()
    assert (client.added, client.fixed) == (3, 2)  # hashes 5..7 added; 1 and 3 get their choices
    assert client.starts == [world.chain.height - 10]
    for i, h in enumerate(hashes):
        assert client.wallet[h] == ({"agenda": "yes"} if i % 2 else {})
    assert await p.check_voter(state) is True and (client.added, client.fixed) == (3, 2)  # consistent now


async def test_check_voter_with_nothing_to_vote_asks_nothing(world):
    client = FakeVoterClient()
    state = VoterState(client, health=pb.HealthReply())
    assert await Pipeline(world.store, world.exccd, pool_of(state), SIMNET).check_voter(state) is True
    assert client.starts == [] and (client.added, client.fixed) == (0, 0)


class VanishingFeeNode:
    """An exccd that no longer knows a broadcast fee (its mempool lost in a restart), or cannot look it up yet."""

    def __init__(self, lookup_error: int, send_error: int | None = None):
        self.lookup_error, self.send_error = lookup_error, send_error
        self.sent: list[str] = []

    async def get_raw_transaction(self, txid: str):
        raise RPCError(self.lookup_error, "No information available about transaction" if self.lookup_error
                       == ERR_NO_TX_INFO else "transaction index: index not synced")

    async def send_raw_transaction(self, tx_hex: str) -> None:
        self.sent.append(tx_hex)
        if self.send_error is not None:
            raise RPCError(self.send_error, "rejected transaction: double spend")


async def broadcast_fee_row(world) -> str:
    voting = Key(SIMNET)
    t = make_ticket(voting, Key(SIMNET))
    ticket = Ticket(hash=t.txid(), commitment_address="Ss" + "x" * 33, fee_xpub_id=0, fee_address_index=0,
                    fee_address="", fee_amount=1, fee_expiration=0, purchase_height=10, confirmed=True,
                    voting_wif=voting.wif, fee_tx_hex="00ff", fee_tx_hash="ab" * 32, fee_tx_status="broadcast")
    await world.store.insert_new_ticket(ticket, lambda xpub, last: (last + 1, f"addr{last + 1}"))
    return ticket.hash


@pytest.mark.parametrize("lookup_error, send_error, sent, status", [
    (ERR_NO_TX_INFO, None, ["00ff"], "broadcast"),  # the soak's exccd restart: sent again, still on its way
    (ERR_NO_TX_INFO, -26, ["00ff"], "error"),  # refused when sent again: only then an error
    (-32603, None, [], "broadcast"),  # index not synced right after a block: asked again next pass
])
async def test_a_vanished_fee_is_sent_again_not_given_up(world, lookup_error, send_error, sent, status):
    ticket = await broadcast_fee_row(world)
    node = VanishingFeeNode(lookup_error, send_error)
    p = Pipeline(world.store, node, None, SIMNET)
    await p._confirm_fees(pipeline.PassReport())
    assert node.sent == sent
    assert (await world.store.get_ticket(ticket)).fee_tx_status == status


class MinedElsewhereNode(VanishingFeeNode):
    """An exccd that refuses the fee because a voter's node sent it first and it is already mined."""

    async def get_raw_transaction(self, txid: str):
        return SimpleNamespace(txid=txid, hex="00ff", confirmations=2, blockhash="", blockheight=0)


async def test_a_fee_refused_because_a_voter_sent_it_first_is_broadcast_not_an_error(world):
    ticket = await broadcast_fee_row(world)
    await world.store.update_fields(ticket, {"fee_tx_status": "received"}, {"fee_tx_status": "broadcast"})
    for node, status in ((MinedElsewhereNode(ERR_NO_TX_INFO, -26), "broadcast"),
                         (VanishingFeeNode(ERR_NO_TX_INFO, -26), "error")):
        await world.store.update_fields(ticket, {"fee_tx_status": "received"}, {})
        await Pipeline(world.store, node, None, SIMNET)._broadcast_fees(pipeline.PassReport())
        assert node.sent == ["00ff"]
        assert (await world.store.get_ticket(ticket)).fee_tx_status == status


async def test_a_paid_ticket_our_node_forgot_is_kept_until_its_quote_expires(world):
    # soak seed 7: the frontend's exccd restarted with two paid tickets in its mempool; the pass forgot them
    # as never mined, the tickets were mined a block later, and two acknowledged fees were lost
    rows = {}
    for name, status, expires in (("paid", "received", time.time() + 3600), ("unpaid", "none", time.time() + 3600),
                                  ("stale", "received", time.time() - 1)):
        voting = Key(SIMNET)
        tx = make_ticket(voting, Key(SIMNET))
        ticket = Ticket(hash=tx.txid(), commitment_address="Ss" + "x" * 33, fee_xpub_id=0, fee_address_index=0,
                        fee_address="", fee_amount=1, fee_expiration=int(expires), confirmed=False,
                        voting_wif=voting.wif, fee_tx_hex="00ff" if status != "none" else "",
                        fee_tx_hash="ab" * 32 if status != "none" else "", fee_tx_status=status)
        await world.store.insert_new_ticket(ticket, lambda xpub, last: (last + 1, f"addr{last + 1}"))
        rows[name] = ticket.hash
    report = pipeline.PassReport()
    await Pipeline(world.store, VanishingFeeNode(ERR_NO_TX_INFO), None, SIMNET)._confirm_tickets(report)
    assert report.deleted_tickets == 2
    assert await world.store.get_ticket(rows["paid"]) is not None
    assert await world.store.get_ticket(rows["unpaid"]) is None and await world.store.get_ticket(rows["stale"]) is None
