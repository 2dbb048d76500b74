"""One ticket walked through every state the ticket page names, on the fake exccd.

Shared by the HTTP test (tests/web/pages/test_ticketpage.py) and the Chromium one
(tests/web/pages/test_browser_pages.py): after each step the caller looks at the page.
"""

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator

from chainbuilders import make_fee_tx
from vspd.chain import address
from vspd.chain.params import SIMNET
from vspd.frontend.pipeline import Pipeline


@dataclass
class Step:
    name: str  # also the screenshot's name
    state: str  # the headline the page must show
    ticket: str
    words: tuple[str, ...] = ()  # more the page must say
    spender: str = ""


async def walk(vsp) -> AsyncIterator[Step]:
    """Quoted, quote expired, fee received, broadcast, immature, live, voted; then a missed and an expired ticket."""
    ctx, chain, node = vsp.ctx, vsp.chain, vsp.node
    ctx.ticketpage = True
    pipeline = Pipeline(vsp.store, ctx.exccd, None, SIMNET)
    t = vsp.new_ticket(confirmations=1)
    quote = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    assert quote.status == 200, quote.json
    yield Step("ticket-quoted", "Fee quoted, not paid yet", t.hash, ("Not paid yet",))

    real_clock = ctx.clock
    ctx.clock = lambda: real_clock() + 2 * 3600  # the page's clock only: the quote lasts an hour
    yield Step("ticket-quote-expired", "Fee quote expired, never paid", t.hash,
               ("expired", "asks for a new quote", "Process managed tickets"))
    ctx.clock = real_clock

    quote = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)  # a new quote
    fee = make_fee_tx(address.decode(quote.json["feeaddress"], SIMNET), quote.json["feeamount"])
    paid = await vsp.client.payfee(t.commitment.secret, t.hash, fee.serialize().hex(), t.voting.wif)
    assert paid.status == 200, paid.json
    yield Step("ticket-fee-received", "Fee paid, waiting for confirmations", t.hash, ("received",))

    async def mine(n: int) -> None:
        await node.mine(n)
        await asyncio.sleep(0.05)  # the notification arrives
        ctx.exccd.memo.clear()  # were it late, the answers of the old tip go anyway
        await pipeline.run_pass()

    await mine(5)  # the ticket has 6 confirmations: the fee is broadcast
    yield Step("ticket-fee-broadcast", "Fee paid, waiting for confirmations", t.hash, ("broadcast", "confirmation"))
    await mine(6)  # the fee has 6 confirmations; the ticket (16 blocks to mature on simnet) is still immature
    yield Step("ticket-immature", "Immature", t.hash, ("paid and confirmed", "becomes live at block"))
    await mine(6)
    chain.live.add(t.hash)
    await mine(1)
    yield Step("ticket-live", "Live", t.hash, ("Live since block",))
    spender = chain.spend(t.hash, vote=True)
    chain.live.discard(t.hash)
    await mine(1)
    yield Step("ticket-voted", "Voted", t.hash, (f"Voted in block {chain.height:,}",), spender)

    # a missed ticket and an expired one: revoked right after maturity, and at its expiry height
    for name, state, at_expiry in (("ticket-missed", "Missed", False), ("ticket-expired", "Expired", True)):
        other = vsp.new_ticket(confirmations=7)
        q = await vsp.client.feeaddress(other.commitment.secret, other.hash, other.ticket_hex, other.parent_hex)
        fee = make_fee_tx(address.decode(q.json["feeaddress"], SIMNET), q.json["feeamount"])
        assert (await vsp.client.payfee(other.commitment.secret, other.hash, fee.serialize().hex(),
                                        other.voting.wif)).status == 200
        await mine(7)  # the fee confirmed
        mined = chain.mined_at(other.hash)
        height = mined + SIMNET.ticket_maturity + SIMNET.ticket_expiry if at_expiry else chain.height + 1
        if at_expiry:
            chain.height = height - 1  # jump ahead: nothing of ours happens in between
            await vsp.store.set_state("last_scanned_height", height - 1)
        spender = chain.spend(other.hash, vote=False, height=height)
        await mine(1)
        yield Step(name, state, other.hash, ("revoked in block",), spender)
