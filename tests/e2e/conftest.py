"""One real simnet for the end-to-end tests: real exccd and exccwallet, this VSP as deployed.

The network (vspd.simnet) starts once per test session; the tests share
it, in file order, and each leaves it healthy. Without Go, gcc and g++ the
peers cannot be built and these tests skip, unless VSPD_REQUIRE_PEERS=1
(as in .ci/run), which makes that a failure.
"""

import os
import time

import aiohttp
import pytest
import pytest_asyncio

from rpcclient.errors import RPCError
from vspclient import VSPClient
from vspd.chain import wif as wifmod
from vspd.chain.params import SIMNET
from vspd.simnet.stateroot import prepare_root
from vspd.simnet.network import SimnetVSP
from vspd.simnet.nodes import wait_until
from vspd.simnet.peers import PeerError, find_peers


TIMINGS: list[tuple[str, float]] = []
NOTES: list[str] = []  # what a scenario saw that a reader of CI's output should see too (printed at the end)


def progress(line: str) -> None:
    print(f"[simnet {time.strftime('%H:%M:%S')}] {line}", flush=True)


class RealNet:
    """The session's network and what the tests ask of it, always from the real peers."""

    def __init__(self, net: SimnetVSP, http: aiohttp.ClientSession):
        self.net = net
        self.chain = net.chain
        self.vsp = net.vsp
        self.staker = net.staker
        self.http = http
        self.client = VSPClient(http, net.vsp.url)
        self.unvoted: list[str] = []  # tickets of ours a scenario left live, to be voted before voters go down

    def note(self, line: str) -> None:
        NOTES.append(line)

    async def buy(self) -> str:
        """The staker wallet buys one ticket through the VSP (feeaddress and payfee inside the call)."""
        hashes = await self.staker.rpc.call("purchaseticket", "default", 0, 1, "", 1)
        assert isinstance(hashes, list) and len(hashes) == 1, hashes
        return hashes[0]

    async def ticket_tx(self, ticket: str) -> dict:
        return await self.chain.miner.rpc.call("getrawtransaction", ticket, 1)

    async def commitment_key(self, ticket: str) -> bytes:
        """The staker's key for the ticket's commitment address: it signs the wallet's VSP requests."""
        tx = await self.ticket_tx(ticket)
        address = tx["vout"][1]["scriptPubKey"]["addresses"][0]
        return wifmod.decode(await self.staker.rpc.call("dumpprivkey", address), SIMNET).privkey

    async def ticket_status(self, ticket: str, key: bytes | None = None) -> dict:
        r = await self.client.ticketstatus(key or await self.commitment_key(ticket), ticket)
        assert r.status == 200, (r.status, r.json)
        return r.json

    async def wallet_ticket(self, site, ticket: str) -> dict | None:
        """What a voting wallet itself says of the ticket (ticketinfo), or None if it does not know it."""
        tx = await self.ticket_tx(ticket)
        start = max(0, tx.get("blockheight", 0) - 1)
        for t in await site.wallet.rpc.call("ticketinfo", start):
            if t["hash"] == ticket:
                return t
        return None

    async def live(self, ticket: str) -> bool:
        return bool(await self.chain.miner.rpc.call("existsliveticket", ticket))

    async def mine_until_fee_confirmed(self, ticket: str, key: bytes, max_blocks: int = 30) -> None:
        async def confirmed() -> bool:
            s = await self.ticket_status(ticket, key)
            return s["ticketconfirmed"] and s["feetxstatus"] == "confirmed"
        await self.chain.mine_until(confirmed, f"fee of {ticket} confirmed", max_blocks)

    async def paid_ticket_on_every_voter(self) -> tuple[str, bytes]:
        """A ticket the staker wallet buys, whose fee confirms and which reaches every voting wallet."""
        ticket = await self.buy()
        key = await self.commitment_key(ticket)
        await self.mine_until_fee_confirmed(ticket, key)
        await wait_until(lambda: self.on_every_voter(ticket), 30, "the ticket in every voting wallet")
        return ticket, key

    async def on_every_voter(self, ticket: str, sites=None) -> bool:
        for site in sites or self.vsp.voters:
            if await self.wallet_ticket(site, ticket) is None:
                return False
        return True

    async def vote_on_chain(self, ticket: str) -> dict | None:
        """The vote spending `ticket`, as mined (found through any voting wallet, checked on the miner)."""
        for site in self.vsp.voters:
            if not site.wallet.child or not site.wallet.child.running:
                continue
            try:
                t = await self.wallet_ticket(site, ticket)
            except RPCError:
                continue
            if t and t.get("status") == "voted" and t.get("vote"):
                vote = await self.chain.miner.rpc.call("getrawtransaction", t["vote"], 1)
                if vote.get("blockhash") and any(i.get("txid") == ticket for i in vote["vin"]):
                    return vote
        return None

    async def mine_until_voted(self, ticket: str, max_blocks: int = 150) -> dict:
        await self.chain.mine_until(lambda: self._voted(ticket), f"ticket {ticket} voted", max_blocks, settle=0.6)
        return await self.vote_on_chain(ticket)

    async def _voted(self, ticket: str) -> bool:
        return await self.vote_on_chain(ticket) is not None

    async def admin_outcome(self, ticket: str) -> str:
        """The outcome on the admin page's ticket search, logged in as the operator."""
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:  # cookies of an IP host
            async with admin.post(self.vsp.url + "/admin", data={"password": self.vsp.adminpass}) as r:
                assert r.status == 200, await r.text()
            async with admin.post(self.vsp.url + "/admin/ticket", data={"hash": ticket}) as r:
                page = await r.text()
        marker = 'id="ticket-outcome">'
        assert marker in page, page[-2000:]
        return page.split(marker, 1)[1].split("<", 1)[0]

    async def vspinfo(self) -> dict:
        return (await self.client.vspinfo()).json

    async def healthy_voters(self) -> int:
        code, body = await self.vsp.status()
        return body.get("voters", {}).get("healthy", -1) if body else -1


@pytest.fixture(scope="session")
def peer_binaries():
    try:
        return find_peers(progress=progress)
    except PeerError as e:
        if os.environ.get("VSPD_REQUIRE_PEERS") == "1":
            pytest.fail(f"the real exccd and exccwallet are required here: {e}")
        pytest.skip(f"real exccd and exccwallet unavailable: {e}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def realnet(peer_binaries, tmp_path_factory):
    root = tmp_path_factory.mktemp("simnet")
    prepare_root(root, keep=False)  # as `vspd-simnet` does: the last test hands this folder to it (--keep)
    net = SimnetVSP(peer_binaries, root, progress=progress)
    try:
        await net.start()
        TIMINGS.append(("network start", net.timings["network up"]))
        async with aiohttp.ClientSession() as http:
            rn = RealNet(net, http)
            await rn.vspinfo()  # pins the pubkey every later answer is checked against
            yield rn
    finally:
        await net.stop()


# The files in the order they share the network: the scenarios first (they count the VSP's tickets),
# then what buys tickets of its own, and last the README command, which takes the network over.
ORDER = ["test_simnet_vsp.py", "test_switch_from_go_vspd.py", "test_operator_guide_real.py",
         "test_rpc_shapes_real.py", "test_zz_readme_command.py"]


def pytest_collection_modifyitems(items):
    def place(item) -> float:
        if item.path.parent.name != "e2e":
            return -1  # the fast tests first
        return ORDER.index(item.path.name) if item.path.name in ORDER else len(ORDER) - 1.5
    items.sort(key=place)  # stable: the order within a file stays


@pytest.fixture
def scenario_timer(request):
    t0 = time.monotonic()
    yield
    TIMINGS.append((request.node.name, time.monotonic() - t0))


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "real simnet timings")
        for name, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    if NOTES:
        terminalreporter.write_sep("-", "what the real simnet scenarios saw")
        for line in NOTES:
            terminalreporter.write_line(line)
