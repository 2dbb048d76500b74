"""Voter repairs: a failed add is counted and repaired at once, with backoff, until none is missing."""

import asyncio

import pytest

from conftest import make_store
from procs import wait_for
from rpcclient.exccd import RawTx
from rpcclient.voterclient import VoterAddress, VoterUnavailable
from schema import voter_pb2 as pb
from vspd.chain.params import SIMNET
from vspd.frontend.pipeline import Pipeline
from vspd.frontend.repairs import Repairs
from vspd.store import Ticket
from vspd.store.models import FEE_CONFIRMED
from vspd.frontend.voterpool import VoterPool, VoterState


class FlakyVoter:
    """A voter link that is up or down, and whose wallet may refuse adds while up."""

    def __init__(self, name: str):
        self.name, self.addr = name, VoterAddress(name, "127.0.0.1", 1)
        self.up, self.refuse_adds = True, False
        self.tickets: set[str] = set()
        self.lists = 0

    def _check(self, method: str) -> None:
        if not self.up:
            raise VoterUnavailable(f"{self.name}: {method}: UNAVAILABLE: connection refused")

    async def add_ticket(self, ticket_hash, *args) -> bool:
        self._check("AddTicket")
        if self.refuse_adds:
            raise VoterUnavailable(f"{self.name}: AddTicket: INTERNAL: wallet refused")
        known = ticket_hash in self.tickets
        self.tickets.add(ticket_hash)
        return known

    async def iter_tickets(self, start_height: int):
        self._check("ListTickets")
        self.lists += 1
        for h in list(self.tickets):
            yield pb.TicketInfo(hash=h, status="live")

    async def list_pending(self) -> list:
        return []

    async def set_vote_choices(self, ticket_hash, choices) -> None:
        self._check("SetVoteChoices")

    async def close(self) -> None:
        pass


class ChainStub:
    async def get_raw_transaction(self, txid: str) -> RawTx:
        return RawTx(txid, "00", 10, "11" * 32, 100)


@pytest.fixture
async def rig(tmp_path):
    store = await make_store(tmp_path / "v.db")
    pool = VoterPool([], b"", b"", b"", "simnet", maxlag=6, minvoters=1, local_height=lambda: 100)
    pool.states = [VoterState(FlakyVoter(n), healthy=True, health=pb.HealthReply()) for n in ("v1", "v2")]
    pipeline = Pipeline(store, ChainStub(), pool, SIMNET)
    repairs = Repairs(pool, pipeline.check_voter, interval=3600, first_retry=0.05, max_retry=0.2)
    pool.on_repair = repairs.request
    runner = asyncio.create_task(repairs.run())
    try:
        yield store, pool, pipeline, repairs
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()


async def votable(store, n: int) -> list[Ticket]:
    out = []
    for i in range(n):
        t = Ticket(hash=f"{i + 1:064x}", commitment_address="Ss", fee_xpub_id=0, fee_address_index=0,
                   fee_address="", fee_amount=1, fee_expiration=0, confirmed=True, purchase_height=90,
                   fee_tx_status=FEE_CONFIRMED, voting_wif="")
        out.append(await store.insert_new_ticket(t, lambda xpub, last: (last + 1, f"addr{last + 1}")))
    return out


async def test_a_failed_add_is_counted_and_repaired_as_soon_as_the_voter_answers(rig):
    store, pool, pipeline, repairs = rig
    v1, v2 = pool.states
    t, = await votable(store, 1)
    v2.client.up = False  # killed between two health checks: still 'healthy' as far as the pool knows
    assert await pipeline.add_to_voters(t) == 1
    assert v1.missing == set() and v2.missing == {t.hash}
    assert v2.as_dict()["missing_tickets"] == 1
    await wait_for(lambda: _true(repairs.runs >= 3), 10, "repairs retried while the voter is down")
    assert v2.missing == {t.hash}  # still counted: nothing was repaired yet
    v2.client.up = True
    await wait_for(lambda: _true(not v2.missing), 10, "v2 repaired")
    assert t.hash in v2.client.tickets and v2.as_dict()["missing_tickets"] == 0
    runs, lists = repairs.runs, v2.client.lists
    await asyncio.sleep(0.5)
    assert (repairs.runs, v2.client.lists) == (runs, lists)  # repaired: no more retries


async def test_an_unreachable_voter_is_counted_and_a_refusing_wallet_is_retried_without_spinning(rig):
    store, pool, pipeline, repairs = rig
    v1, v2 = pool.states
    t1, t2 = await votable(store, 2)
    v2.health = None  # known down: not even tried, but counted
    assert await pipeline.add_to_voters(t1) == 1 and v2.missing == {t1.hash}
    v2.health = pb.HealthReply()
    v1.client.refuse_adds = True  # it answers, and its wallet refuses
    await pipeline.add_to_voters(t2)
    assert v1.missing == {t2.hash}
    await wait_for(lambda: _true(not v2.missing), 10, "v2 repaired")
    assert v2.client.tickets == {t1.hash, t2.hash}
    runs = repairs.runs
    await asyncio.sleep(0.5)
    assert v1.missing == {t2.hash} and repairs.runs - runs < 20  # backed off, not a busy loop
    v1.client.refuse_adds = False
    await wait_for(lambda: _true(not v1.missing), 10, "v1 repaired")


async def test_a_check_forgets_what_the_voter_has_and_keeps_what_failed_meanwhile(rig):
    store, pool, pipeline, repairs = rig
    v1, _ = pool.states
    t1, t2 = await votable(store, 2)
    v1.client.tickets = {t1.hash, t2.hash}
    v1.missing = {t1.hash, "ff" * 32}  # noted earlier; the listing shows t1 there, the other is not votable
    assert await pipeline.check_voter(v1) is True and v1.missing == set()
    v1.client.tickets = {t1.hash}
    v1.client.refuse_adds = True
    assert await pipeline.check_voter(v1) is False and v1.missing == {t2.hash}


async def _true(value: bool) -> bool:
    return value
