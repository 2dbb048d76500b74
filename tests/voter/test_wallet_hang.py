"""exccwallet hangs for good when a write grows its database while its `ticketinfo` reads.

Found by the soak (seed 1025855847): a voting wallet stopped answering with
no fault on it, and again after it was restarted with 106 tickets to take
in; its goroutine dump showed `importprivkey` waiting in bbolt's remap and
`ticketinfo` waiting for a nested read behind it. The fake wallet here
hangs the same way; the voter must never bring a write beside its own
`ticketinfo`, and its imports must not ask for `ticketinfo` at all.
"""

import asyncio
from contextlib import asynccontextmanager

import pytest

from chainbuilders import Key, make_ticket
from fakes.exccd import FakeChain
from fakes.exccwallet import FakeWallet
from rpcclient.errors import NodeUnavailable
from rpcclient.exccwallet import ExccWallet
from vspd.voter.carrier import import_ticket
from vspd.chain.params import SIMNET


@asynccontextmanager
async def hanging_wallet(read_seconds: float = 0.3):
    """A fake wallet that answers concurrently and hangs as exccwallet does, with a connected client."""
    chain = FakeChain(SIMNET)
    fake = FakeWallet(chain)
    fake.answer_concurrently = True
    fake.ticketinfo_seconds = read_seconds
    await fake.start()
    client = ExccWallet(SIMNET, "127.0.0.1", fake.port, fake.user, fake.password, fake.cert_pem, timeout=3.0)
    task = asyncio.create_task(client.run())
    try:
        assert await client.wait_connected(5)
        yield chain, fake, client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


def mined_ticket(chain: FakeChain) -> tuple[str, str, Key]:
    voting = Key(SIMNET)
    t = make_ticket(voting, Key(SIMNET))
    chain.add(t, block=chain.height - 3)
    return t.txid(), t.serialize().hex(), voting


async def test_imports_side_by_side_do_not_hang_the_wallet():
    """The carrier and AddTicket import at once: on the old code each import read ticketinfo first."""
    async with hanging_wallet() as (chain, fake, client):
        tickets = [mined_ticket(chain) for _ in range(6)]
        height = chain.height - 3
        results = await asyncio.gather(*(import_ticket(client, h, hx, chain.block_hash(height), height, k.wif, {})
                                         for h, hx, k in tickets))
        assert results == [False] * 6 and not fake.hung
        assert set(fake.tickets) == {h for h, _, _ in tickets} and len(fake.keys) == 6
        again = await import_ticket(client, tickets[0][0], tickets[0][1], chain.block_hash(height), height,
                                    tickets[0][2].wif, {})
        assert again is True  # known through gettransaction
        assert "ticketinfo" not in fake.calls


async def test_a_write_waits_for_our_own_ticketinfo():
    async with hanging_wallet() as (chain, fake, client):
        h, hx, voting = mined_ticket(chain)
        listing = asyncio.create_task(client.tickets(0))
        await asyncio.sleep(0.05)  # the listing is reading now
        await client.import_key(voting.wif)
        await client.add_transaction(chain.block_hash(chain.height - 3), hx)
        assert await listing == [] and not fake.hung
        assert [t.hash for t in await client.tickets(0)] == [h]


async def test_the_fake_does_hang_as_the_wallet_does():
    """The model the two tests above rely on: a write beside a ticketinfo hangs it (raw calls, no gate)."""
    async with hanging_wallet() as (chain, fake, client):
        _, _, voting = mined_ticket(chain)
        listing = asyncio.create_task(client.rpc.call("ticketinfo", 0))
        await asyncio.sleep(0.05)
        with pytest.raises(NodeUnavailable):
            await client.rpc.call("importprivkey", voting.wif, "imported", False, 0)
        assert fake.hung
        listing.cancel()
        await asyncio.gather(listing, return_exceptions=True)
