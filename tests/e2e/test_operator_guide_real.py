"""docs/operator-guide.md walked on the real exccd and exccwallet of the session's simnet.

The same walk as tests/docs/test_operator_guide.py (tests/helpers/guidewalk.py): the
guide's own frontend and three voters, started by its commands, beside the
session's peers: its frontend on the miner's exccd, each voter on a voting
site's exccd and exccwallet. The ticket it follows is a real one: the keeper
wallet buys it for a voting key of the test's own, registers it with the
guide's frontend and pays the fee with a transaction it signs itself, as a
wallet does; the fee is confirmed on the real chain and the ticket reaches
every real voting wallet.
"""

import aiohttp
import pytest

from chainbuilders import Key
from godatabases import go_dbs  # noqa: F401  (fixture)
from guidewalk import VOTERS, Login, PaidTicket, walk_the_guide
from vspclient import VSPClient, register_real_ticket
from vspd.chain.params import SIMNET
from vspd.simnet.nodes import Daemon

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]


def login(peer: Daemon) -> Login:
    return Login(peer.rpc_address, peer.user, peer.password, peer.cert_path)


class RealGuidePeers:
    """The session's real peers, as the guide's deployment sees them."""

    def __init__(self, realnet):
        self.rn = realnet
        self.sites = dict(zip(VOTERS, realnet.vsp.voters))

    def frontend_node(self) -> Login:
        return login(self.rn.chain.miner)

    def voter_peers(self, name: str) -> tuple[Login, Login]:
        site = self.sites[name]
        return login(site.node), login(site.wallet)

    async def buy_and_pay(self, url: str, http: aiohttp.ClientSession) -> PaidTicket:
        voting = Key(SIMNET)
        t = await self.rn.chain.buy_ticket_for(voting.address.encode())
        client = VSPClient(http, url)
        await client.vspinfo()
        await register_real_ticket(client, t, voting.wif, payer=self.rn.chain.keeper)
        return PaidTicket(t.hash, t.commitment_key)

    async def until_fee_confirmed(self, ticket: PaidTicket, confirmed) -> None:
        await self.rn.chain.mine_until(confirmed, f"fee of {ticket.hash} confirmed", 30)

    async def in_every_wallet(self, ticket: PaidTicket) -> bool:
        return await self.rn.on_every_voter(ticket.hash)


async def test_walk_the_operator_guide_on_real_peers(realnet, go_dbs, tmp_path, scenario_timer):  # noqa: F811
    await walk_the_guide(tmp_path, go_dbs, RealGuidePeers(realnet))
    assert await realnet.healthy_voters() == len(realnet.vsp.voters), "the session's own VSP is still whole"
