"""docs/operator-guide.md, walked on the protocol fakes, so that the guide cannot rot.

The walk itself is tests/helpers/guidewalk.py (the end-to-end suite walks it again
on the real exccd and exccwallet). Here exccd and exccwallet are the
protocol-level fakes. The table test fails if /status can say something the
guide's table does not explain, or the table explains something /status
never says.
"""

import re
import time
import types

import aiohttp
import pytest

from fakes.exccd import FakeChain, FakeExccd
from fakes.exccwallet import FakeWallet
from godatabases import go_dbs  # noqa: F401  (fixture)
from guidewalk import GUIDE, VOTERS, Login, PaidTicket, walk_the_guide
from procs import Staker, mine_until
from schema import voter_pb2 as pb
from vspd.chain.params import SIMNET
from vspd.frontend.replication import Replicator
from vspd.store import Store
from vspd.frontend.voterpool import VoterPool, judge
from web.pages import health


def login(server) -> Login:
    return Login(f"127.0.0.1:{server.port}", server.user, server.password, server.cert_path)


class FakeGuidePeers:
    """One fake chain: the frontend's exccd, and an exccd and a voting wallet per voter."""

    def __init__(self):
        self.chain = FakeChain(SIMNET)
        self.node = FakeExccd(self.chain, password="guide-rpc-pass")
        self.voters = {name: (FakeExccd(self.chain), FakeWallet(self.chain)) for name in VOTERS}
        self.bought: dict[str, tuple] = {}

    def servers(self) -> list:
        return [self.node] + [s for pair in self.voters.values() for s in pair]

    def frontend_node(self) -> Login:
        return login(self.node)

    def voter_peers(self, name: str) -> tuple[Login, Login]:
        node, wallet = self.voters[name]
        return login(node), login(wallet)

    async def buy_and_pay(self, url: str, http: aiohttp.ClientSession) -> PaidTicket:
        site = types.SimpleNamespace(url=url, chain=self.chain, mine=self.node.mine)  # what Staker needs
        staker = Staker(site, http)
        await staker.client.vspinfo()  # pins the VSP's key
        commit, t = await staker.buy_and_pay()
        return PaidTicket(t.txid(), commit.secret)

    async def until_fee_confirmed(self, ticket: PaidTicket, confirmed) -> None:
        await mine_until(types.SimpleNamespace(mine=self.node.mine), confirmed, "fee confirmed", blocks=20)

    async def in_every_wallet(self, ticket: PaidTicket) -> bool:
        return all(ticket.hash in wallet.tickets for _, wallet in self.voters.values())


@pytest.mark.slow
async def test_walk_the_operator_guide(tmp_path, go_dbs):  # noqa: F811
    peers = FakeGuidePeers()
    for server in peers.servers():
        await server.start()
    try:
        await walk_the_guide(tmp_path, go_dbs, peers)
    finally:
        for server in peers.servers():
            await server.stop()


def table_patterns() -> list[str]:
    """The first column of the guide's /status table, X, N, NET and ... made into regular expressions."""
    text = GUIDE.read_text().split("## What /status says", 1)[1]
    patterns = []
    for cell in re.findall(r"^\| `([^`]+)` \|", text, re.M):
        rx = re.escape(cell).replace(r"\.\.\.", ".+")
        rx = re.sub(r"\bX\b", "[a-z0-9-]+", rx)
        rx = re.sub(r"\bNET\b", "[a-z]+", rx)
        patterns.append(re.sub(r"\bN\b", "[0-9]+", rx))
    return patterns


def status_messages() -> list[str]:
    """Every kind of message /status can give, from the code that writes them."""
    good = dict(network="simnet", node_connected=True, node_synced=True, node_height=100, wallet_connected=True,
                wallet_daemon_connected=True, wallet_unlocked=True, wallet_voting=True, wallet_spv=False,
                wallet_height=100)
    broken = [dict(network="mainnet"), dict(node_connected=False, node_error="connection refused"),
              dict(node_synced=False), dict(wallet_connected=False, wallet_error="connection refused"),
              dict(wallet_daemon_connected=False), dict(wallet_unlocked=False), dict(wallet_voting=False),
              dict(wallet_spv=True), dict(wallet_height=90), dict(node_height=90),
              dict(wallet_connected=False, wallet_error="no answer within 3 s (exccwallet hung or overloaded)"),
              dict(node_connected=False, node_error="no answer within 3 s (exccd hung or overloaded)")]
    voter_problems = [judge(None, "v1: Health: UNAVAILABLE: failed to connect", 100, 6, "simnet"),
                      judge(None, "v1: Health: DEADLINE_EXCEEDED: Deadline Exceeded", 100, 6, "simnet")]
    voter_problems += [judge(pb.HealthReply(**{**good, **change}), "", 100, 6, "simnet") for change in broken]
    assert all(len(p) == 1 for p in voter_problems), voter_problems
    now = time.time()
    voters = [types.SimpleNamespace(name=f"v{i}", checked=now, problems=p, missing=set())
              for i, p in enumerate(voter_problems)]
    voters.append(types.SimpleNamespace(name="stale", checked=now - 600, problems=[], missing=set()))
    voters.append(types.SimpleNamespace(name="behind", checked=now, problems=[], missing={"ab" * 32}))

    class Pool(list):
        interval, minvoters, maxlag, total = 5.0, 2, 6, 3

        def healthy(self):
            return []

        def tip(self):
            return 100

        def local_height(self):
            return 100

        intake_problem = VoterPool.intake_problem

    replicator = types.SimpleNamespace(last_sync_age=lambda: None, last_sync=now - 120, started_at=now - 300,
                                       _failing_since=now - 120, max_failing=30, running=True,
                                       last_error="connection refused", problem=None)
    replicator.problem = lambda: Replicator.problem(replicator)
    exccd = types.SimpleNamespace(connected=False, rpc=types.SimpleNamespace(last_error="connection refused"))
    store = types.SimpleNamespace(write_problem="the database's disk is full", write_problem_since=now - 30)
    ctx = types.SimpleNamespace(exccd=exccd, voters=Pool(voters), replication=replicator, store=store,
                                pipeline=types.SimpleNamespace(passes=0), stats=None)  # just started
    found = health.problems(ctx)
    lag = Pool()
    lag.minvoters, lag.local_height = 0, lambda: 80
    found.append("not accepting tickets: " + VoterPool.intake_problem(lag))
    cut_off = types.SimpleNamespace(control_ready=True, running=True, behind="replica sync failed: EOF")
    found.append("not accepting tickets: " + Replicator.intake_problem(cut_off))
    found.append("database: " + Store.space_problem(types.SimpleNamespace(write_problem=None, free_bytes=4096)))
    return found


def test_status_table_explains_every_message():
    patterns, messages = table_patterns(), status_messages()
    assert len(messages) == 24, messages
    for message in messages:
        assert any(re.fullmatch(p, message) for p in patterns), f"the guide's /status table lacks {message!r}"
    for p in patterns:
        assert any(re.fullmatch(p, m) for m in messages), f"the guide's /status table row {p!r} is never said"


def test_closing_timeline_matches_the_chain():
    from vspd.chain.params import MAINNET
    days = (MAINNET.ticket_maturity + MAINNET.ticket_expiry) * MAINNET.target_block_seconds / 86400
    text = " ".join(GUIDE.read_text().split())
    assert f"{MAINNET.ticket_maturity} + {MAINNET.ticket_expiry:,} blocks (about {round(days)} days at " \
           f"{MAINNET.target_block_seconds} s a block)" in text
