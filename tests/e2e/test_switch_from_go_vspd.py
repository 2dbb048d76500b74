"""Moving a deployment of the reference Go vspd (EXCCoin/vspd) to this VSP, on the real simnet.

The old VSP is the real Go vspd with a real voting wallet; a real staker
wallet pinned to its URL and pubkey buys tickets through it: one voted, two
paid and confirmed (one with an alternate signing address and vote-choice
changes), and a walk-in's ticket whose fee was only quoted. Then the Go vspd
stops, `vspadmin importvspd` reads its database, and this VSP's frontend
starts on the same URL with this VSP's voters. Its answers match the old
ones, under the same pubkey; the paid live tickets are voted by our voters;
the unpaid one is paid through us by a real wallet; and the old staker
wallet, never restarted, buys through the same URL and accepts every answer.
"""

import asyncio
import time

import aiohttp
import pytest

from vspclient import VSPClient
from vspd.chain import wif as wifmod
from vspd.chain.params import SIMNET
from vspd.simnet.nodes import WalletNode, wait_until
from vspd.simnet.reference import ReferenceVSP

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]
SAME = ("ticketconfirmed", "feetxstatus", "feetxhash", "altsignaddress", "votechoices", "tspendpolicy",
        "treasurypolicy")


async def private_key(wallet: WalletNode, address: str) -> bytes:
    return wifmod.decode(await wallet.rpc.call("dumpprivkey", address), SIMNET).privkey


async def bought(wallet: WalletNode) -> str:
    hashes = await wallet.rpc.call("purchaseticket", "default", 0, 1, "", 1)
    assert len(hashes) == 1, hashes
    return hashes[0]


async def test_switch_from_the_reference_vspd(realnet, scenario_timer):
    rn, chain, root = realnet, realnet.chain, realnet.net.root
    bins, logdir = rn.net.binaries, chain.logdir

    # The old VSP: its own fee account in the fee wallet, its own voting wallet.
    await rn.vsp.fee_wallet.rpc.call("createnewaccount", "govspd")
    xpub = await rn.vsp.fee_wallet.rpc.call("getmasterpubkey", "govspd")
    go_voter = WalletNode("go-voter", bins.exccwallet, root / "wallets" / "go-voter", logdir, chain.miner,
                          seed="b1" * 32, passphrase="go-voter-pass", flags=("--enablevoting", "--manualtickets"))
    await go_voter.start()
    go = ReferenceVSP(root / "go-vspd", logdir, chain.miner, [go_voter], stats_every_second=True)
    await go.create(xpub)
    await go.start()
    staker = WalletNode("go-staker", bins.exccwallet, root / "wallets" / "go-staker", logdir, chain.miner,
                        seed="b2" * 32, passphrase="go-staker-pass",
                        flags=(f"--vsp.url={go.url}", f"--vsp.pubkey={go.pubkey}"))
    walkin = WalletNode("walk-in", bins.exccwallet, root / "wallets" / "walk-in", logdir, chain.miner,
                        seed="b3" * 32, passphrase="walk-in-pass")
    chain.nodes += [go_voter, go, staker, walkin]
    frontend = None
    try:
        await asyncio.gather(staker.start(), walkin.start())
        funding = [await chain.send(await w.new_address(), 20.0) for w in (staker, walkin) for _ in range(4)]

        async def funded() -> bool:
            return all([await chain.confirmations(t) >= 1 for t in funding])
        await chain.mine_until(funded, "the old VSP's stakers funded", 10)
        await chain.wait_synced([staker, walkin])

        async with aiohttp.ClientSession() as http:
            old = VSPClient(http, go.url)
            await old.vspinfo()

            async def go_info() -> dict:
                return (await old.vspinfo()).json

            # A ticket voted while the Go vspd runs.
            voted = await bought(staker)

            async def go_counts_vote() -> bool:
                return (await go_info())["voted"] == 1
            await chain.mine_until(go_counts_vote, "the Go vspd's ticket voted", 150, settle=0.6)

            # Two paid tickets, and a walk-in's ticket whose fee is only quoted.
            t1, t2 = await bought(staker), await bought(staker)  # one output each: funded in four
            unpaid = await bought(walkin)
            tx = await rn.ticket_tx(unpaid)
            parent = await chain.miner.rpc.call("getrawtransaction", tx["vin"][0]["txid"], 0)
            walkin_key = await private_key(walkin, tx["vout"][1]["scriptPubKey"]["addresses"][0])
            r = await old.feeaddress(walkin_key, unpaid, tx["hex"], parent)
            assert r.status == 200, r.json

            # t1: an alternate signing address, then two vote-choice changes signed by it.
            t1_tx = await rn.ticket_tx(t1)
            t1_parent = await chain.miner.rpc.call("getrawtransaction", t1_tx["vin"][0]["txid"], 0)
            t1_key = await private_key(staker, t1_tx["vout"][1]["scriptPubKey"]["addresses"][0])
            alt = await staker.new_address()
            alt_key = await private_key(staker, alt)
            r = await old.setaltsignaddr(t1_key, t1, t1_tx["hex"], t1_parent, alt)
            assert r.status == 200, r.json
            for i in range(2):
                r = await old.setvotechoices(alt_key, t1, {}, timestamp=int(time.time()) + 1 + i)  # after payfee's
                assert r.status == 200, r.json

            keys = {t1: alt_key, unpaid: walkin_key}
            for t in (voted, t2):
                keys[t] = await private_key(staker, (await rn.ticket_tx(t))["vout"][1]["scriptPubKey"]["addresses"][0])

            async def paid_and_confirmed() -> bool:
                for t in (t1, t2):
                    s = (await old.ticketstatus(keys[t], t)).json
                    if s.get("feetxstatus") != "confirmed":
                        return False
                return True
            await chain.mine_until(paid_and_confirmed, "the Go vspd's two fees confirmed", 30)
            assert not await rn.live(t1) and not await rn.live(t2), "switch before the tickets can be called"
            before = {t: (await old.ticketstatus(keys[t], t)).json for t in keys}

            async def counted() -> bool:
                info = await go_info()
                return (info["voting"], info["voted"]) == (2, 1)
            await wait_until(counted, 15, "the Go vspd to count two voting, one voted")
            info_before = await go_info()

            # The switch: the Go vspd and its voting wallet stop; its database is imported; ours starts.
            await go.stop()
            await go_voter.stop()
            source = go.db.read_bytes()
            new_home = root / "switched"
            report = await rn.vsp.admin("importvspd", go.db, home=new_home)
            assert go.db.read_bytes() == source, "the import wrote to the old database"
            assert f"pubkey: {go.pubkey}" in report and "tickets: 4" in report, report
            assert "by fee status: none 1, received 0, broadcast 0, confirmed 3, error 0" in report, report
            frontend = rn.vsp.other_frontend("switched-frontend", new_home, go.port)
            await frontend.start()
            new = VSPClient(http, go.url)  # the same URL

            async def ours_ok() -> bool:
                try:
                    async with http.get(go.url + "/status") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False
            await wait_until(ours_ok, 60, "the new frontend healthy", frontend.check_alive, interval=0.5)
            info = (await new.vspinfo()).json
            assert info["pubkey"] == go.pubkey and new.pubkey == old.pubkey
            assert (info["voting"], info["voted"], info["revoked"]) == \
                (info_before["voting"], info_before["voted"], info_before["revoked"])
            for t, old_answer in before.items():
                r = await new.ticketstatus(keys[t], t)  # signed with the same pubkey, checked by the client
                assert r.status == 200 and {k: r.json[k] for k in SAME} == {k: old_answer[k] for k in SAME}, t

            # The unpaid ticket, paid through us by the real walk-in wallet pinned to the same pubkey.
            await walkin.stop()
            walkin.flags = [f"--vsp.url={go.url}", f"--vsp.pubkey={go.pubkey}"]
            await walkin.start()
            await walkin.rpc.call("processunmanagedticket", unpaid)
            assert f"successfully processed {unpaid}" in walkin.log_path.read_text()
            assert (await new.ticketstatus(keys[unpaid], unpaid)).json["feetxstatus"] in ("received", "broadcast")

            # Our voters get the paid live tickets from the first consistency pass, and vote them.
            for t in (t1, t2):
                await wait_until(lambda t=t: rn.on_every_voter(t), 60, f"{t} on every voter of ours")
            for t in (t1, t2):
                await rn.mine_until_voted(t)

            # The old staker wallet, never restarted, buys through the same URL and accepts every answer.
            fresh = await bought(staker)
            assert f"successfully processed {fresh}" in staker.log_path.read_text()
            assert (await new.ticketstatus(await private_key(staker, (await rn.ticket_tx(fresh))["vout"][1][
                "scriptPubKey"]["addresses"][0]), fresh)).json["feetxstatus"] in ("received", "broadcast")
    finally:
        if frontend is not None:
            await frontend.stop()
        for node in (go, go_voter, staker, walkin):
            await node.stop()
