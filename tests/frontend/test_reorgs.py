"""The record follows the chain through reorganisations (issue 31): the pipeline on a fake chain that replaces blocks.

Each test builds a ticket's life on the fake exccd (purchase, fee, vote or revocation), lets
the block pipeline record it, then replaces the blocks that held those facts and checks the
record equals the new main chain: outcome, spender and height, purchase confirmation, fee
confirmation and the day's tallies, and that what left the chain is redone on the new branch.
"""

import asyncio
from types import SimpleNamespace

import pytest

from chainbuilders import Key, make_fee_tx, make_ticket
from conftest import make_store
from fakenode import exccd_on
from fakes.exccd import FakeChain
from vspd.chain.params import SIMNET
from vspd.chain.rules import REQUIRED_CONFS
from vspd.frontend.pipeline import LAST_SCANNED, Pipeline
from vspd.store import Ticket
from vspd.store.blocks import SCANNED_KEPT
from vspd.store.models import FEE_BROADCAST, FEE_CONFIRMED, VOTED


@pytest.fixture
async def world(tmp_path):
    chain = FakeChain(SIMNET, height=300)
    async with exccd_on(chain) as (node, exccd):
        store = await make_store(tmp_path / "vspd.db")
        pipeline = Pipeline(store, exccd, None, SIMNET)
        w = SimpleNamespace(chain=chain, node=node, store=store, exccd=exccd, pipeline=pipeline)
        try:
            await settle(w)  # the pipeline's first pass: it reads blocks from this tip on
            yield w
        finally:
            await store.close()


async def mine(world, n: int = 1) -> None:
    """n blocks, and a pass after them (as the frontend's block worker runs one per notification)."""
    await world.node.mine(n)
    await settle(world)


async def settle(world):
    """A pass once the client has seen the fake's last notification (its memo cleared)."""
    for _ in range(50):
        if world.exccd.height == world.chain.height or await world.exccd.block_count() == world.chain.height:
            break
        await asyncio.sleep(0.01)
    world.exccd.memo.clear()
    return await world.pipeline.run_pass()


async def paid_ticket(world, fee_amount: int = 1000) -> Ticket:
    """A ticket and its fee sent now (in the mempool: the next block mines both)."""
    voting = Key(SIMNET)
    t = make_ticket(voting, Key(SIMNET))
    world.chain.add(t)
    fee_addr = Key(SIMNET).address
    fee = make_fee_tx(fee_addr, fee_amount)
    world.chain.add(fee)
    ticket = Ticket(hash=t.txid(), commitment_address="Ss" + "x" * 33, fee_xpub_id=0, fee_address_index=0,
                    fee_address=str(fee_addr), fee_amount=fee_amount, fee_expiration=2**40, voting_wif=voting.wif,
                    fee_tx_hex=fee.serialize().hex(), fee_tx_hash=fee.txid(), fee_tx_status=FEE_BROADCAST)
    await world.store.insert_new_ticket(ticket, lambda xpub, last: (last + 1, f"addr{last + 1}"))
    return ticket


async def votable_ticket(world) -> Ticket:
    """A ticket whose purchase and fee are confirmed in the record."""
    t = await paid_ticket(world)
    await mine(world, REQUIRED_CONFS)
    got = await world.store.get_ticket(t.hash)
    assert got.confirmed and got.fee_tx_status == FEE_CONFIRMED, got
    return got


async def daily(world) -> tuple:
    rows = (await world.store.record_since(0))["daily"]
    return tuple(map(sum, zip(*[r[1:] for r in rows]))) if rows else (0, 0, 0, 0, 0)


async def spend_of(world, ticket_hash: str):
    return await world.store.ticket_spend(ticket_hash)


@pytest.mark.parametrize("depth", [1, 2, 6, 20])
async def test_an_orphaned_vote_is_undone_and_the_later_vote_recorded(world, depth):
    t = await votable_ticket(world)
    await mine(world, 3)
    world.chain.spend(t.hash, vote=True)  # voted in the next block
    await mine(world)
    vote_height = world.chain.height
    await mine(world, depth - 1)  # the vote is `depth` blocks deep
    first = await world.store.get_ticket(t.hash)
    first_spend = await spend_of(world, t.hash)
    assert first.outcome == VOTED and first_spend[1] == vote_height
    assert (await daily(world))[0] == 1

    fork = await world.node.reorganise(depth)
    assert fork == vote_height - 1
    report = await settle(world)
    assert report.reorg_depth == depth and report.undone >= 1
    again = await world.store.get_ticket(t.hash)
    assert again.outcome == "" and await spend_of(world, t.hash) is None  # live again on the new branch
    assert (await daily(world))[0] == 0  # the day's tally taken back
    assert any(h == t.hash for h, _ in await world.store.votable_choices())  # votable again: voters keep it
    assert world.pipeline.reorgs == 1

    world.chain.spend(t.hash, vote=True)  # called again later on the new branch, and voted
    await mine(world)
    final = await world.store.get_ticket(t.hash)
    spender, height = await spend_of(world, t.hash)
    assert final.outcome == VOTED and height == world.chain.height and spender != first_spend[0]
    assert (await daily(world))[0] == 1
    assert await world.store.get_state(LAST_SCANNED) == world.chain.height


@pytest.mark.parametrize("depth", [1, 2, 6])
async def test_votes_in_the_blocks_that_replace_scanned_heights_are_read(world, depth):
    a, b = await votable_ticket(world), await votable_ticket(world)
    await mine(world, depth + 1)
    fork = await world.node.reorganise(depth, new_blocks=0)  # the old blocks had nothing of ours
    world.chain.spend(a.hash, vote=True, height=fork + 1)  # the new branch votes one at the height we had read
    world.chain.spend(b.hash, vote=False, height=fork + depth + 1)  # and revokes the other at its tip
    await world.node.mine(depth + 1)
    report = await settle(world)
    assert report.reorg_depth == depth and report.undone == 0
    assert (await world.store.get_ticket(a.hash)).outcome == VOTED
    assert (await spend_of(world, a.hash))[1] == fork + 1
    assert (await world.store.get_ticket(b.hash)).outcome in ("missed", "expired")
    assert (await spend_of(world, b.hash))[1] == fork + depth + 1


async def test_an_orphaned_revocation_is_undone_then_the_vote_recorded(world):
    t = await votable_ticket(world)
    world.chain.spend(t.hash, vote=False)
    await mine(world)
    assert (await world.store.get_ticket(t.hash)).outcome == "missed"
    assert (await daily(world))[1] == 1
    await world.node.reorganise(1, new_blocks=0)
    world.chain.spend(t.hash, vote=True)
    await mine(world, 2)
    assert (await world.store.get_ticket(t.hash)).outcome == VOTED
    assert (await daily(world))[:2] == (1, 0)


@pytest.mark.parametrize("depth", [6, 20])
async def test_ticket_and_fee_confirmations_in_replaced_blocks_wait_again(world, depth):
    t = await paid_ticket(world, fee_amount=777)
    await mine(world)  # both mined here
    mined_at = world.chain.height
    await mine(world, REQUIRED_CONFS - 1)
    got = await world.store.get_ticket(t.hash)
    assert got.confirmed and got.fee_tx_status == FEE_CONFIRMED and got.purchase_height == mined_at
    assert (await daily(world))[4] == 777 and (await world.store.revenue(world.chain.height, 288))[0] == 777
    await mine(world, depth - REQUIRED_CONFS)  # the purchase is `depth` blocks deep

    # The reorganisation takes the block of the purchase and the fee; the new branch mines both
    # again (from the mempool) in its first block, one block higher than before.
    fork = await world.node.reorganise(depth, new_blocks=0)
    assert fork == mined_at - 1
    await world.node.mine(2)  # the fake mines the mempool into the new branch's first block
    report = await settle(world)
    assert report.reorg_depth == depth and report.undone == 2
    back = await world.store.get_ticket(t.hash)
    assert not back.confirmed and back.fee_tx_status == FEE_BROADCAST  # waiting for six again
    assert back.fee_tx_hex  # kept: what is sent again if the node lost it
    assert (await daily(world))[4] == 0 and (await world.store.revenue(world.chain.height, 288))[0] == 0
    await mine(world, REQUIRED_CONFS)
    final = await world.store.get_ticket(t.hash)
    assert final.confirmed and final.fee_tx_status == FEE_CONFIRMED and final.purchase_height == fork + 1
    assert (await daily(world))[4] == 777


async def test_a_fee_the_new_branch_lost_is_sent_again_from_the_kept_transaction(world):
    t = await paid_ticket(world)
    await mine(world, REQUIRED_CONFS)
    assert (await world.store.get_ticket(t.hash)).fee_tx_status == FEE_CONFIRMED
    await mine(world, 2)
    fork = await world.node.reorganise(REQUIRED_CONFS + 2, new_blocks=0)
    del world.chain.txs[t.fee_tx_hash]  # the node restarted meanwhile: its mempool, with the fee, is gone
    await world.node.mine(REQUIRED_CONFS + 3)
    await settle(world)  # undone, looked up, not known: sent again
    assert world.chain.txs[t.fee_tx_hash].block is None  # back in the mempool
    await mine(world, REQUIRED_CONFS)
    final = await world.store.get_ticket(t.hash)
    assert final.fee_tx_status == FEE_CONFIRMED and final.confirmed and final.purchase_height > fork


async def test_undo_is_idempotent_and_leaves_older_facts(world):
    old = await votable_ticket(world)
    world.chain.spend(old.hash, vote=True)
    await mine(world, 4)
    new = await votable_ticket(world)
    world.chain.spend(new.hash, vote=True)
    await mine(world)
    top = world.chain.height
    undone = await world.store.undo_above(top - 1, LAST_SCANNED)
    assert undone.outcomes == [new.hash] and not undone.tickets and not undone.fees
    again = await world.store.undo_above(top - 1, LAST_SCANNED)
    assert again.count == 0
    assert (await world.store.get_ticket(old.hash)).outcome == VOTED
    assert (await world.store.get_ticket(new.hash)).outcome == ""


async def test_a_reorganisation_during_a_pass_is_followed_by_the_next(world):
    t = await votable_ticket(world)
    world.chain.spend(t.hash, vote=True)
    await world.node.mine(2)  # the vote one block below the tip; no pass yet
    vote_block = world.chain.block_hash(world.chain.height - 1)
    real_stake_block = world.exccd.stake_block
    reorganised = False

    async def stake_block_then_reorganise(block_hash: str):
        nonlocal reorganised
        answer = await real_stake_block(block_hash)
        if block_hash == vote_block and not reorganised:  # the pass has read the vote: now the chain moves
            reorganised = True
            await world.node.reorganise(2, new_blocks=0)
            world.chain.spend(t.hash, vote=True)  # voted again in the new branch's first block
            await world.node.mine(3)
            world.exccd.memo.clear()
        return answer

    world.exccd.stake_block = stake_block_then_reorganise
    first = await world.pipeline.run_pass()  # records the vote of the old branch, then sees the break
    assert reorganised and first.outcomes == 1
    assert (await spend_of(world, t.hash))[1] == world.chain.height - 2  # the old branch's vote, at its height
    world.exccd.memo.clear()
    report = await world.pipeline.run_pass()  # finds the fork, undoes, reads the new branch
    assert report.reorg_depth == 1 and report.undone == 1
    spender, height = await spend_of(world, t.hash)
    assert (await world.store.get_ticket(t.hash)).outcome == VOTED
    assert (spender, height) == (world.chain.spends[t.hash][0], world.chain.spends[t.hash][2])
    kept = await world.store.scanned_below(world.chain.height + 1, 10)
    assert kept and all(h == world.chain.block_hash(n) for n, h in kept)  # every kept hash is the main chain's


async def test_only_a_window_of_block_hashes_is_kept(world, monkeypatch):
    assert SCANNED_KEPT >= 1000  # the product's window; the test's is smaller
    monkeypatch.setattr("vspd.store.blocks.SCANNED_KEPT", 5)
    for _ in range(3):
        await mine(world, 4)
    kept = await world.store.scanned_below(world.chain.height + 1)
    assert [h for h, _ in kept] == list(range(world.chain.height, world.chain.height - 5, -1))


async def test_a_reorganisation_deeper_than_the_window_undoes_all_it_covers(world):
    t = await votable_ticket(world)
    world.chain.spend(t.hash, vote=True)
    await mine(world)
    async with world.store.transaction() as db:  # as if only the last block's hash were kept
        await db.execute("DELETE FROM scanned_blocks WHERE height < ?", (world.chain.height,))
    await world.node.reorganise(3, new_blocks=0)
    await world.node.mine(4)
    report = await settle(world)
    assert report.reorg_depth >= 1 and (await world.store.get_ticket(t.hash)).outcome == ""
