"""Disk loss on the real simnet: the frontend's machine is lost right after the real wallet's payfee.

The staker wallet buys a ticket (its feeaddress and payfee go through inside
purchaseticket); at once the frontend and its litestream are killed and the
data folder is deleted, key file included. The operator guide's steps bring
it back: `vspadmin restore --keyfile` from safe storage, then the frontend.
The restored VSP must know the ticket and its fee, broadcast the fee once
the ticket is confirmed, add it to the real voting wallets and see it voted.
"""

import os
import shutil
import signal

import pytest

from vspd.simnet.nodes import wait_until

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]


async def test_frontend_disk_lost_right_after_payfee_is_restored_and_the_ticket_voted(realnet, scenario_timer):
    rn = realnet
    data = rn.vsp.home / "data" / "simnet"
    safe = rn.vsp.root / "safe-storage" / "vspd.key"  # where the guide says to keep the key file
    safe.parent.mkdir(exist_ok=True)
    shutil.copy2(data / "vspd.key", safe)

    ticket = await rn.buy()  # the payfee was acknowledged when this returns
    litestream = int((data / "litestream.pid").read_text())
    await rn.vsp.frontend.kill()
    os.kill(litestream, signal.SIGKILL)  # the machine is gone, its litestream with it
    shutil.rmtree(data)

    out = await rn.vsp.admin("restore", f"--keyfile={safe}")
    assert f"key file installed as {data / 'vspd.key'}" in out, out
    await rn.vsp.start_frontend()
    await rn.vspinfo()  # signed with the pubkey pinned at the session's start: the same VSP
    key = await rn.commitment_key(ticket)
    status = await rn.ticket_status(ticket, key)
    assert status["feetxstatus"] == "received" and status["feetxhash"], status

    await rn.mine_until_fee_confirmed(ticket, key)
    fee = await rn.chain.miner.rpc.call("getrawtransaction", status["feetxhash"], 1)
    assert fee["confirmations"] >= 6
    await wait_until(lambda: rn.on_every_voter(ticket), 30, "the ticket in every voting wallet")
    await rn.mine_until_voted(ticket)
