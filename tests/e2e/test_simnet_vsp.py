"""The VSP against the real exccd and exccwallet on simnet: six scenarios, in order, on one network.

Every assertion is on what the real wallets and the real chain say (a
voting wallet's ticketinfo, the vote mined on the miner's exccd, the
staker wallet's own purchase), and on what the VSP answers over its API
and admin page, signed answers checked against its pubkey.
"""

import asyncio
import os
import re
import time

import pytest

from browser import CHROMIUM, SHOTS, start_browser, submit, text_of
from vspd.simnet.nodes import wait_until

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]


async def test_1_ticket_bought_by_the_real_wallet_is_paid_added_everywhere_and_voted(realnet, scenario_timer):
    rn = realnet
    before = await rn.vspinfo()
    ticket = await rn.buy()
    key = await rn.commitment_key(ticket)
    status = await rn.ticket_status(ticket, key)  # the wallet's feeaddress and payfee went through
    assert status["feetxstatus"] in ("received", "broadcast") and status["feetxhash"]
    fee_txid = status["feetxhash"]

    await rn.mine_until_fee_confirmed(ticket, key)
    fee = await rn.chain.miner.rpc.call("getrawtransaction", fee_txid, 1)
    assert fee["confirmations"] >= 6  # the fee is on chain, mined
    await wait_until(lambda: rn.on_every_voter(ticket), 30, "the ticket in every voting wallet")
    for site in rn.vsp.voters:
        t = await rn.wallet_ticket(site, ticket)
        assert t["status"] in ("immature", "unspent", "live"), t

    vote = await rn.mine_until_voted(ticket)
    assert vote["confirmations"] >= 1 and vote["vin"][1]["txid"] == ticket
    assert not await rn.live(ticket)

    async def recorded() -> bool:
        return await rn.admin_outcome(ticket) == "voted"
    await wait_until(recorded, 30, "the VSP to record the vote")
    after = await rn.vspinfo()
    assert after["voted"] == before["voted"] + 1
    r = await rn.client.setvotechoices(key, ticket, {})
    assert (r.status, r.code) == (400, 7) and "status=voted" in r.json["message"], r.json
    await _ticket_page_says_voted(rn, ticket, vote)


async def _ticket_page_says_voted(rn, ticket: str, vote: dict) -> None:
    """The staker's ticket page names the vote the real exccd mined, in Chromium when it is installed."""
    async with rn.http.get(f"{rn.vsp.url}/ticket/{ticket}") as r:
        page = await r.text()
    assert r.status == 200 and 'id="ticket-state">Voted<' in page, page[-3000:]
    assert f'id="ticket-spend-tx">{vote["txid"]}<' in page and f"Voted in block {vote['blockheight']:,}." in page
    if not os.path.exists(CHROMIUM):
        return
    from selenium.webdriver.common.by import By

    def look() -> tuple[str, str]:
        driver = start_browser()
        try:
            driver.get(rn.vsp.url + "/")  # the record drawn from the real network's day so far
            driver.save_screenshot(str(SHOTS / "pages-e2e-home.png"))
            voted = re.search(r"Last 30 days: ([\d,]+) voted", text_of(driver, "record-summary"))
            assert voted and int(voted[1].replace(",", "")) >= 1, text_of(driver, "record-summary")
            uptime = text_of(driver, "chart-uptime-30")
            assert all(site.name in uptime for site in rn.vsp.voters), uptime
            driver.find_element(By.ID, "ticket-search-hash").send_keys(ticket)  # as a staker would
            submit(driver, "ticket-search-go")
            driver.save_screenshot(str(SHOTS / "pages-e2e-ticket-voted.png"))
            return text_of(driver, "ticket-state"), text_of(driver, "ticket-spend-tx")
        finally:
            driver.quit()
    assert await asyncio.get_running_loop().run_in_executor(None, look) == ("Voted", vote["txid"])


async def test_2_voter_killed_before_the_call_the_ticket_is_still_voted_and_repaired(realnet, scenario_timer):
    rn = realnet
    v1 = rn.vsp.voters[0]
    ticket, key = await rn.paid_ticket_on_every_voter()

    await asyncio.gather(v1.vspd.kill(), v1.wallet.child.kill())  # kill -9 of one voter: vspd and its wallet
    # A ticket paid while v1 is down reaches only the others; the repair must bring it to v1.
    missed_by_v1 = await rn.buy()
    key2 = await rn.commitment_key(missed_by_v1)
    await rn.mine_until_fee_confirmed(missed_by_v1, key2)
    await wait_until(lambda: rn.on_every_voter(missed_by_v1, rn.vsp.voters[1:]), 30, "the second ticket on v2, v3")

    vote = await rn.mine_until_voted(ticket)  # by v2 or v3: v1 is down
    assert vote["vin"][1]["txid"] == ticket

    await v1.wallet.start()
    assert await rn.wallet_ticket(v1, missed_by_v1) is None  # it missed the add while it was down
    await v1.vspd.start()
    await wait_until(lambda: rn.on_every_voter(missed_by_v1), 60, "the consistency check to add it to v1")
    await rn.mine_until_voted(missed_by_v1)


async def test_3_two_of_three_voters_down_refuses_the_real_wallets_purchase(realnet, scenario_timer):
    rn = realnet
    down = rn.vsp.voters[1:]
    await asyncio.gather(*(v.vspd.stop() for v in down))
    await wait_until(lambda: _healthy_is(rn, 1), 30, "/status to see one healthy voter")

    # exccwallet 2.7.6 publishes the ticket first, then asks for a fee address; the VSP answers code 2 and the
    # wallet's purchaseticket swallows that error: it returns the ticket and logs nothing (its fee is "errored").
    refused = await rn.buy()
    key = await rn.commitment_key(refused)
    r = await rn.client.ticketstatus(key, refused)
    assert (r.status, r.code) == (400, 6), r.json  # the VSP took nothing for it
    assert "refusing new tickets: only 1 of 3 voters healthy (need 2)" in rn.vsp.frontend.log_path.read_text()
    assert f"successfully processed {refused}" not in rn.staker.log_path.read_text()

    for v in down:
        await v.vspd.start()
    await wait_until(lambda: _healthy_is(rn, 3), 30, "/status to see three healthy voters")
    ticket = await rn.buy()
    assert (await rn.ticket_status(ticket))["feetxstatus"] in ("received", "broadcast")
    # The refused ticket is paid once the wallet is told to retry it (the wallet's own recovery call).
    await rn.staker.rpc.call("processunmanagedticket", refused)
    assert (await rn.ticket_status(refused, key))["feetxstatus"] in ("received", "broadcast")
    rn.unvoted += [ticket, refused]


async def _healthy_is(rn, n: int) -> bool:
    return await rn.healthy_voters() == n


async def test_4_frontend_killed_between_payfee_and_fee_confirmation(realnet, scenario_timer):
    rn = realnet
    ticket = await rn.buy()
    key = await rn.commitment_key(ticket)
    status = await rn.ticket_status(ticket, key)
    assert status["feetxstatus"] == "received" and not status["ticketconfirmed"]
    fee_txid = status["feetxhash"]

    await rn.vsp.frontend.kill()
    await rn.chain.mine(3)  # the ticket confirms on chain while the frontend is down
    await rn.vsp.start_frontend()

    await rn.mine_until_fee_confirmed(ticket, key)
    fee = await rn.chain.miner.rpc.call("getrawtransaction", fee_txid, 1)
    assert fee["confirmations"] >= 6
    log = rn.vsp.frontend.log_path.read_text()
    assert len(re.findall(rf"fee {fee_txid} of ticket {ticket} broadcast", log)) == 1, "broadcast once"
    assert log.count(f"fee of ticket {ticket} confirmed") == 1
    await wait_until(lambda: rn.on_every_voter(ticket), 30, "the ticket in every voting wallet")
    await rn.mine_until_voted(ticket)


async def test_5_called_while_every_voter_is_down_is_recorded_missed(realnet, scenario_timer):
    rn = realnet
    for earlier in rn.unvoted:  # nothing else of ours may be live while the voters are down
        await rn.mine_until_voted(earlier)
    rn.unvoted.clear()
    ticket, key = await rn.paid_ticket_on_every_voter()

    # Down before the ticket is live: a ticket can be called in the very block that makes it live, and the
    # voting wallets then vote it at once (seen in CI, when they were stopped only after that block).
    sites = rn.vsp.voters
    await asyncio.gather(*(v.vspd.stop() for v in sites))
    await asyncio.gather(*(v.wallet.stop() for v in sites))  # nothing can vote it now
    assert not await rn.live(ticket), "the ticket went live before every voter was down"
    await rn.chain.mine_until(lambda: rn.live(ticket), "the ticket live", 25)

    async def revoked_on_chain() -> bool:
        return not await rn.live(ticket)
    await rn.chain.mine_until(revoked_on_chain, "the ticket called and missed", 150, settle=0.3)
    await rn.chain.mine(1)  # the miner revokes a missed ticket in the next block (automatic revocations)

    async def missed() -> bool:
        return await rn.admin_outcome(ticket) == "missed"
    await wait_until(missed, 30, "the VSP to record the ticket missed")
    assert (await rn.vspinfo())["missed"] >= 1

    await asyncio.gather(*(v.wallet.start() for v in sites))
    for v in sites:
        await v.vspd.start()
    await wait_until(lambda: _healthy_is(rn, 3), 60, "three healthy voters again")


async def test_6_setvotechoices_reaches_every_voter_and_preflight(realnet, scenario_timer):
    rn = realnet
    ticket, key = await rn.paid_ticket_on_every_voter()

    r = await rn.client.setvotechoices(key, ticket, {})
    assert r.status == 200, r.json
    r = await rn.client.setvotechoices(key, ticket, {"someagenda": "yes"}, timestamp=int(time.time()) + 1)
    assert (r.status, r.code) == (400, 9), r.json  # EXCC has no agendas
    for site in rn.vsp.voters:
        t = await rn.wallet_ticket(site, ticket)
        assert not t.get("choices"), t  # what the wallet stores: no choices (no agendas on EXCC)
        assert "no agendas" not in site.vspd.log_path.read_text()  # an empty map never calls the wallet

    checks = _preflight(await rn.vsp.admin("preflight", check=False))
    one_host = {"voters on distinct hosts", "frontend apart from the voters"}
    assert {rule for rule, ok in checks.items() if not ok} == one_host, checks

    v2 = rn.vsp.voters[1]
    await v2.vspd.stop()
    checks = _preflight(await rn.vsp.admin("preflight", check=False))
    assert not checks["voter v2 healthy"] and not checks["voters healthy"]
    assert checks["voter v1 healthy"] and checks["voter v3 healthy"]
    await v2.vspd.start()
    await wait_until(lambda: _healthy_is(rn, 3), 30, "three healthy voters again")
    await rn.mine_until_voted(ticket)


def _preflight(output: str) -> dict[str, bool]:
    rows = {}
    for line in output.splitlines():
        m = re.match(r"^(.*?)\s{2,}(PASS|FAIL)\s", line)
        if m:
            rows[m[1].strip()] = m[2] == "PASS"
    assert rows, output
    return rows
