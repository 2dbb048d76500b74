"""Issue 20 on the real simnet: no single machine's loss misses a vote.

(a) The frontend killed (kill -9) for 45 s with a block every 2 s while
paid tickets mature: the voters broadcast the fees and import the tickets
themselves, every ticket is in every voting wallet before it goes live, and
every one is voted; none missed.
(b) A voting wallet SIGSTOPped: the other voters get new tickets as fast as
ever (the delay is measured and printed), and the stopped one is repaired
after SIGCONT.
"""

import asyncio
import signal
import time

import pytest

from rpcclient.errors import RPCError
from vspd.chain.params import SIMNET
from vspd.simnet.nodes import wait_until

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]
OUTAGE = 45.0
BLOCK_EVERY = 2.0
MATURITY = SIMNET.ticket_maturity  # live (or already called) past this many confirmations


async def buy(rn) -> str:
    """One ticket; the staker's outputs all wait on its last purchase's split and fee: a block frees them."""
    for _ in range(3):
        try:
            return await rn.buy()
        except RPCError as e:
            if "insufficient balance" not in e.message:
                raise
            await rn.chain.mine(1)
    return await rn.buy()


async def test_frontend_killed_longer_than_the_window_misses_no_vote(realnet, scenario_timer):
    rn = realnet
    before = await rn.vspinfo()
    tickets = [await buy(rn) for _ in range(3)]
    keys = {t: await rn.commitment_key(t) for t in tickets}
    for t in tickets:
        s = await rn.ticket_status(t, keys[t])
        assert s["feetxstatus"] in ("received", "broadcast"), s

    await rn.vsp.frontend.kill()
    t0 = time.monotonic()
    live_at: dict[str, float] = {}
    held_when_live: dict[str, bool] = {}
    blocks = 0
    while time.monotonic() - t0 < OUTAGE:
        await rn.chain.mine(1)
        blocks += 1
        for t in tickets:
            if t not in live_at and (await rn.live(t) or await rn.chain.confirmations(t) > MATURITY):
                live_at[t] = time.monotonic() - t0
                held_when_live[t] = await rn.on_every_voter(t)
        await asyncio.sleep(max(0.0, t0 + blocks * BLOCK_EVERY - time.monotonic()))
    missing_at_restart = [t for t in tickets if not await rn.on_every_voter(t)]
    print(f"\nfrontend down {time.monotonic() - t0:.0f} s, {blocks} blocks: tickets live at "
          f"{sorted(round(s) for s in live_at.values())} s, in every voting wallet when live: "
          f"{sum(held_when_live.values())}/{len(live_at)}; not in every wallet at the restart: "
          f"{len(missing_at_restart)}/{len(tickets)}")
    assert len(live_at) == len(tickets), "the outage did not outlast the window"

    await rn.vsp.start_frontend()

    async def reconciled() -> bool:  # the frontend finds the voters' fee on chain: its one fee
        return all([(await rn.ticket_status(t, keys[t]))["feetxstatus"] == "confirmed" for t in tickets])
    await rn.chain.mine_until(reconciled, "the frontend to reconcile the fees", 20)

    async def decided() -> bool:  # every ticket voted or missed, as the VSP records it
        info = await rn.vspinfo()
        return info["voted"] + info["missed"] - before["voted"] - before["missed"] >= len(tickets)
    await rn.chain.mine_until(decided, "every ticket voted or missed", 200, settle=0.6)
    after = await rn.vspinfo()
    print(f"voted {after['voted'] - before['voted']}, missed {after['missed'] - before['missed']}")
    assert all(held_when_live.values()), held_when_live
    assert not missing_at_restart
    assert after["missed"] == before["missed"] and after["voted"] == before["voted"] + len(tickets)


async def test_a_stopped_voting_wallet_pauses_nobody_and_is_repaired(realnet, scenario_timer):
    rn = realnet
    v1 = rn.vsp.voters[0]
    others = rn.vsp.voters[1:]
    tickets = [await buy(rn) for _ in range(2)]
    keys = {t: await rn.commitment_key(t) for t in tickets}
    fees = [(await rn.ticket_status(t, keys[t]))["feetxhash"] for t in tickets]

    async def one_block_short() -> bool:  # the next block confirms the fees
        return min([await rn.chain.confirmations(f) for f in fees]) >= 5
    await rn.chain.mine_until(one_block_short, "the fees one block short of confirmed", 30)
    # Stopped now, the wallet's voter still looks reachable to the frontend when the next block asks for adds.
    v1.wallet.child.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        await rn.chain.mine(1)
        delays = {}
        while len(delays) < len(tickets) and time.monotonic() - t0 < 60:
            for t in tickets:
                if t not in delays and await rn.on_every_voter(t, others):
                    delays[t] = time.monotonic() - t0
            await asyncio.sleep(0.1)
        print(f"\nvoting wallet v1 stopped: the tickets whose fees that block confirmed reached v2 and v3 "
              f"{', '.join(f'{d:.1f}' for d in sorted(delays.values()))} s after it")
        assert len(delays) == len(tickets)
        assert max(delays.values()) < 12  # generous: the old block pass waited 15 s on each add to the stopped wallet
    finally:
        v1.wallet.child.proc.send_signal(signal.SIGCONT)
    t0 = time.monotonic()

    async def repaired() -> bool:
        return all([await rn.on_every_voter(t, [v1]) for t in tickets])
    await wait_until(repaired, 90, "v1 repaired after SIGCONT")
    print(f"v1 held both tickets {time.monotonic() - t0:.1f} s after SIGCONT")
    await wait_until(lambda: _all_healthy(rn), 60, "three healthy voters again")
    for t in tickets:
        await rn.mine_until_voted(t)


async def _all_healthy(rn) -> bool:
    return await rn.healthy_voters() == 3
