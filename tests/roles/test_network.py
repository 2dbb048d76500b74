"""A frontend and three voters as separate processes, real gRPC over mutual TLS.

The chain, the nodes and the wallets are protocol-level fakes; everything
of ours is the real thing: a ticket paid through the API ends up in every
voter's wallet, outcomes are recorded, /status tells the truth.
"""

import asyncio
import base64

import aiohttp
import pytest

from procs import Network, Staker, mine_until, status, wait_for
from vspd.chain.params import SIMNET

pytestmark = pytest.mark.slow


async def held_by(t, voters, what: str, timeout: float = 10) -> None:
    """Wait until every one of `voters` has ticket `t` in its wallet."""
    async def held():
        return all(t.txid() in v.wallet.tickets for v in voters)
    await wait_for(held, timeout, what)


async def status_ok(http, net) -> None:
    async def ok():
        return (await status(http, net))[0] == 200
    await wait_for(ok, 10, "/status back to 200")


async def paid_then_v3_killed(net, http) -> tuple:
    """A staker's paid ticket (fee not yet confirmed), then voter v3 killed: (staker, commitment, ticket, v3)."""
    st = Staker(net, http)
    await st.client.vspinfo()
    commit, t = await st.buy_and_pay()
    v3 = net.voters[2]
    v3.proc.kill()
    return st, commit, t, v3


@pytest.fixture
async def net(tmp_path):
    n = await Network.create(tmp_path, nvoters=3, extra_args=["--healthinterval=0.3"])
    yield n
    await n.close()


async def test_paid_ticket_reaches_every_voter_and_its_vote_is_recorded(net):
    await net.start_frontend(wait_healthy=3)
    async with aiohttp.ClientSession() as http:
        st = Staker(net, http)
        await st.client.vspinfo()
        commit, t = await st.buy_and_pay()

        await st.mine_until_confirmed(commit, t)

        await held_by(t, net.voters, "ticket in every wallet")
        assert all(len(v.wallet.keys) == 1 for v in net.voters)
        r = await st.client.ticketstatus(commit.secret, t.txid())
        assert r.json["ticketconfirmed"] is True

        code, body = await status(http, net)
        assert code == 200 and body["status"] == "ok" and body["voters"] == {"healthy": 3, "total": 3}

        net.chain.spend(t.txid(), vote=True)

        async def voted():
            info = await st.client.vspinfo()
            return info.json["voted"] == 1 and info.json["voting"] == 0
        await mine_until(net, voted, "vote recorded", blocks=3)
        r = await st.client.setvotechoices(commit.secret, t.txid(), {})
        assert (r.status, r.code) == (400, 7)


async def test_voter_down_mid_pass_then_repaired_and_status_is_honest(net):
    await net.start_frontend(wait_healthy=3)
    async with aiohttp.ClientSession() as http:
        st, commit, t, v3 = await paid_then_v3_killed(net, http)

        async def named_down():
            code, body = await status(http, net)
            return code == 503 and any(p.startswith("voter v3: unreachable") for p in body["problems"])
        await wait_for(named_down, 10, "/status names v3")

        await st.mine_until_confirmed(commit, t)

        await held_by(t, net.voters[:2], "ticket in the two live voters")
        assert t.txid() not in v3.wallet.tickets

        v3.proc = net.voter_proc(v3).start()
        await held_by(t, [v3], "consistency repairs v3", timeout=20)
        await status_ok(http, net)


async def test_voter_restarted_between_health_checks_is_repaired_at_once_and_counted_meanwhile(tmp_path):
    """An AddTicket that fails on a voter the pool still thinks healthy (#14 item 2).

    Health is polled once a minute here, so the voter is killed and started
    again between two polls: nothing but the failed add tells the frontend.
    """
    net = await Network.create(tmp_path, nvoters=3, extra_args=["--healthinterval=60"])
    try:
        await net.voters_ready()  # so that the frontend's first poll finds all three healthy
        await net.start_frontend(wait_healthy=3)
        async with aiohttp.ClientSession() as http:
            st, commit, t, v3 = await paid_then_v3_killed(net, http)
            await st.mine_until_confirmed(commit, t)

            await held_by(t, net.voters[:2], "ticket in the two live voters")

            async def counted():
                code, body = await status(http, net)
                return code == 503 and "voter v3: 1 ticket(s) not added yet (repair retrying)" in body["problems"]
            await wait_for(counted, 10, "/status counts the ticket missing on v3")
            auth = {"Authorization": "Basic " + base64.b64encode(b"admin:Sup3rSecretAdm1n").decode()}
            async with http.get(net.url + "/admin/status", headers=auth) as r:
                voters = {v["name"]: v for v in (await r.json())["voters"]}
            assert voters["v3"]["missing_tickets"] == 1 and voters["v3"]["healthy"] is True
            assert voters["v1"]["missing_tickets"] == 0
            async with http.get(net.url + "/metrics") as r:
                text = await r.text()
            assert 'vspd_voter_missing_tickets{voter="v3"} 1.0' in text

            v3.proc = net.voter_proc(v3).start()
            await held_by(t, [v3], "v3 repaired without waiting for a health check", timeout=30)
            await status_ok(http, net)
            async with http.get(net.url + "/metrics") as r:
                assert 'vspd_voter_missing_tickets{voter="v3"} 0.0' in await r.text()
    finally:
        await net.close()


async def test_locked_wallet_stops_intake_and_unlock_resumes(net):
    net.extra_args.append("--minvoters=3")
    await net.start_frontend(wait_healthy=3)
    async with aiohttp.ClientSession() as http:
        st = Staker(net, http)
        await st.client.vspinfo()
        net.voters[0].wallet.unlocked = False

        async def locked_named():
            code, body = await status(http, net)
            return code == 503 and "voter v1: wallet locked" in body["problems"]
        await wait_for(locked_named, 10, "/status names the locked wallet")
        *_, r = await st.buy()
        assert (r.status, r.code) == (400, 2)
        assert "temporarily not accepting tickets: only 2 of 3 voters healthy" in r.json["message"]

        net.voters[0].wallet.unlocked = True

        await status_ok(http, net)
        *_, r = await st.buy()
        assert r.status == 200

        net.voters[1].wallet.lag = 20

        async def lag_named():
            code, body = await status(http, net)
            return code == 503 and "voter v2: lagging 20 blocks" in body["problems"]
        await wait_for(lag_named, 10, "/status names the lag")

        for _ in range(2):  # the challenge alone spends no login budget (a browser asks first without a password)
            async with http.get(net.url + "/admin/status") as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
        wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
        async with http.get(net.url + "/admin/status", headers=wrong) as r:
            assert r.status == 401
        async with http.get(net.url + "/admin/status", headers=wrong) as r:
            assert r.status == 429  # 3 per second per client, burst 1, as upstream
        await asyncio.sleep(0.4)
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:Sup3rSecretAdm1n").decode()}
        async with http.get(net.url + "/admin/status", headers=auth) as r:
            body = await r.json()
            assert r.status == 503 and {v["name"] for v in body["voters"]} == {"v1", "v2", "v3"}
            assert body["exccd"]["connected"] is True
        async with http.get(net.url + "/metrics") as r:
            text = await r.text()
            assert "vspd_voters_healthy 2.0" in text and 'vspd_voter_lag_blocks{voter="v2"} 20.0' in text


async def test_missed_and_expired_are_recorded_apart(net):
    await net.start_frontend(wait_healthy=3)
    async with aiohttp.ClientSession() as http:
        st = Staker(net, http)
        await st.client.vspinfo()
        tickets = [await st.buy_and_pay() for _ in range(2)]

        async def confirmed():
            return all([await st.fee_status(c, t) == "confirmed" for c, t in tickets])
        await mine_until(net, confirmed, "fees confirmed", blocks=20)
        import sqlite3
        con = sqlite3.connect(net.home / "data" / "simnet" / "vspd.db")
        heights = [con.execute("SELECT purchase_height FROM tickets WHERE hash = ?", (t.txid(),)).fetchone()[0]
                   for _, t in tickets]
        expiry = heights[1] + SIMNET.ticket_maturity + SIMNET.ticket_expiry
        net.chain.spend(tickets[0][1].txid(), vote=False, height=net.chain.height + 1)  # revoked early: missed
        net.chain.spend(tickets[1][1].txid(), vote=False, height=expiry)  # revoked at expiry: expired
        await net.mine(1)
        net.chain.height = expiry - 1  # jump close to expiry (the fake chain allows it)
        await net.mine(1)

        async def recorded():
            info = await st.client.vspinfo()
            return info.json["missed"] == 1 and info.json["expired"] == 1
        await wait_for(recorded, 15, "missed and expired recorded")
        info = (await st.client.vspinfo()).json
        assert info["revoked"] == 2 and info["voted"] == 0 and info["voting"] == 0
        con.close()
