"""Issue 31 on the real exccd and exccwallet: a VSP ticket's vote leaves the main chain, and the record follows.

As a demanding operator would check it: the staker wallet buys a ticket through
the VSP; as soon as a block holds its vote and the ticket's page names that
vote, `vspd-simnet reorg --depth 2` (the command anyone can run against the
network) replaces the last two blocks. The ticket page, vspinfo and the admin
then say what the main chain says (read from the nodes, not assumed), and
later the ticket's vote on the new branch.
"""

import asyncio
import re
import subprocess
import sys

import pytest

from vspd.simnet.nodes import wait_until

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]


async def page_of(rn, ticket: str) -> str:
    async with rn.http.get(f"{rn.vsp.url}/ticket/{ticket}") as r:
        assert r.status == 200
        return await r.text()


async def spend_on_main_chain(rn, ticket: str) -> tuple[str, int] | None:
    """The vote or revocation spending `ticket` in the miner's main chain, read from its blocks."""
    miner = rn.chain.miner.rpc
    tip = await miner.call("getblockcount")
    for height in range(tip, max(tip - 40, 0), -1):
        block = await miner.call("getblock", await miner.call("getblockhash", height), True, True)
        for stx in block.get("rawstx") or []:
            if any(v.get("txid") == ticket and v.get("vout") == 0 for v in stx.get("vin") or []):
                return stx["txid"], height
    return None


async def test_an_orphaned_vote_leaves_the_record_and_the_later_vote_enters_it(realnet, scenario_timer):
    rn = realnet
    ticket, key = await rn.paid_ticket_on_every_voter()
    vote = await rn.mine_until_voted(ticket)
    await wait_until(lambda: recorded(rn, ticket, "voted"), 30, "the VSP to record the vote")
    page = await page_of(rn, ticket)
    assert f'id="ticket-spend-tx">{vote["txid"]}<' in page and f"Voted in block {vote['blockheight']:,}." in page
    voted_before = (await rn.vspinfo())["voted"]
    rn.note(f"reorg: before, ticket page of {ticket[:16]}: {state_line(page)}")
    tip = await rn.chain.height()
    assert vote["blockheight"] >= tip - 1, (vote["blockheight"], tip)  # the vote is in the last two blocks

    r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "vspd.simnet.main", "reorg", "--root",
                                                 str(rn.net.root), "--depth", "2"],
                                capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rn.note((r.stdout.strip().splitlines() or ["reorg: (no summary)"])[-1])
    miner = rn.chain.miner.rpc
    assert await miner.call("getblockhash", vote["blockheight"]) != vote["blockhash"]  # the vote's block left

    truth = await spend_on_main_chain(rn, ticket)  # the new branch may hold another vote of it, or none
    if truth is None:
        await wait_until(lambda: recorded(rn, ticket, "votable"), 30, "the record to drop the orphaned vote")
        page = await page_of(rn, ticket)
        assert vote["txid"] not in page and "Voted in block" not in page, page[-3000:]
        assert 'id="ticket-state">Live<' in page, page[-3000:]
        rn.note(f"reorg: after, the vote orphaned, ticket page: {state_line(page)}")
        assert (await rn.vspinfo())["voted"] == voted_before - 1
        new = await rn.mine_until_voted(ticket)  # called again on the new branch, and voted
        truth = (new["txid"], new["blockheight"])
    await wait_until(lambda: recorded(rn, ticket, "voted"), 30, "the record to follow the new branch")
    page = await page_of(rn, ticket)
    assert f'id="ticket-spend-tx">{truth[0]}<' in page and f"Voted in block {truth[1]:,}." in page, page[-3000:]
    assert truth != (vote["txid"], vote["blockheight"])
    rn.note(f"reorg: later, on the new branch, ticket page: {state_line(page)}")
    assert (await rn.vspinfo())["voted"] == voted_before
    status = await rn.ticket_status(ticket, key)
    assert status["ticketconfirmed"] and status["feetxstatus"] == "confirmed"
    await rn.chain.mine(2)  # the network mines on, on the new branch


def state_line(page: str) -> str:
    """The ticket page's state and outcome lines, as a staker reads them."""
    state = page.split('id="ticket-state">', 1)[1].split("<", 1)[0] if 'id="ticket-state">' in page else "?"
    spend = page.split('id="ticket-spend-tx">', 1)[1].split("<", 1)[0] if 'id="ticket-spend-tx">' in page else ""
    where = re.search(r"Voted in block [\d,]+\.", page)
    return f"{state}" + (f", {where[0]}" if where else "") + (f" (vote {spend[:16]}…)" if spend else "")


async def recorded(rn, ticket: str, outcome: str) -> bool:
    return await rn.admin_outcome(ticket) == outcome
