"""`vspd-simnet reorg --depth N`: the running network's last N blocks leave the main chain for a longer branch.

Method (docs/reliability.md, "Reorganisations on demand"):

1. the network's own mining stops: a pause file its mining loop reads before each block, and a busy file it
   holds while mining, so that no block is in flight (the soak, in-process, holds the chain's mining lock);
2. a fresh exccd with no peers, the *forker*, is fed the main chain up to the fork point (tip - N) with
   `submitblock`, then the transactions of the N blocks that will leave the main chain (tickets above all:
   exccd refuses a template whose chain would run out of tickets) and the miner's mempool, after the keeper
   has topped up its ticket stock, and last the votes on the fork point;
3. the forker mines N + 1 side blocks. The votes on each come from the voting wallets themselves, by
   `generatevote` for each winning ticket the forker names (its websocket `winningtickets` notification):
   not from the wallets' own voting, because a side winner may be a ticket that has already voted on the
   main chain, and every node of the network refuses its side vote as a double spend;
4. the side blocks go to every exccd of the network (`submitblock`, in order); the last one outweighs the
   main chain and each node reorganises to it;
5. the command waits until the miner holds at least 3 votes on the new tip (the wallets vote on it as on any
   new block; any missing are made by `generatevote`), so the network's next block can be mined at once,
   and then the network's mining goes on.

The pure parts (what a vote votes on, its vote bits, the winners notification, which nodes are on the branch,
the pause and busy files, the summary line) are separate from the I/O.
"""

import argparse
import asyncio
import base64
import json
import os
import shutil
import ssl
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import aiohttp

from rpcclient.errors import NodeUnavailable, RPCError

from .chain import keep_ticket_stock
from .children import ChildError
from .kept import write_private
from .nodes import ExccdNode
from .rpc import JSONRPC

TOPOLOGY = "network.json"   # written by a running network: its exccd nodes and voting wallets, with credentials
PAUSE = "mining.pause"      # while fresh, the network's mining loop mines nothing
BUSY = "mining.busy"        # held by the network's mining loop while it mines a block
MAX_DEPTH = 5
MIN_VOTES = 3               # of 5 winners, for a block after stake validation height
MAX_VOTES = 5
EXTRA_BLOCKS = 3            # side blocks beyond depth + 1 before giving up (a side branch with less work)
DEFAULT_TIMEOUT = 180.0
BUSY_WAIT = 100.0           # the network's block in flight (its generate times out after 90 s)
TIP_VOTES_WAIT = 10.0
RPC_PARALLEL = 3            # calls at once to one exccd: it drops clients beyond 10 (--rpcmaxclients), the VSP's too       # the wallets' own votes on the new tip, before the command makes the missing ones


class ReorgError(Exception):
    """The reorganisation could not be made; the message says where it stopped and what the nodes answered."""


# -- the pure parts -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeRef:
    """How to reach one exccd or exccwallet of the network over JSON-RPC."""
    name: str
    host: str
    port: int
    user: str
    password: str
    cert: str


@dataclass(frozen=True)
class Topology:
    """What a running network writes to its state folder for `reorg`: its exccd nodes (the miner first) and its
    voting wallets (the keeper first)."""
    exccd: str            # the binary, for the forker
    miningaddr: str       # the forker's coinbases (the keeper's mining address)
    nodes: tuple[NodeRef, ...]
    wallets: tuple[NodeRef, ...] = ()


def topology_json(t: Topology) -> str:
    return json.dumps({"exccd": t.exccd, "miningaddr": t.miningaddr, "nodes": [asdict(n) for n in t.nodes],
                       "wallets": [asdict(w) for w in t.wallets]}, indent=1)


def parse_topology(text: str) -> Topology:
    try:
        d = json.loads(text)
        return Topology(str(d["exccd"]), str(d["miningaddr"]), tuple(NodeRef(**n) for n in d["nodes"]),
                        tuple(NodeRef(**w) for w in d["wallets"]))
    except (ValueError, KeyError, TypeError) as e:
        raise ReorgError(f"unreadable {TOPOLOGY} (written by an older version? restart the network): {e}") from None


def voted_block(script_hex: str) -> tuple[str, int] | None:
    """The block (hash as displayed, height) a vote's first output commits to: OP_RETURN, push 36, hash, height."""
    if len(script_hex) != 76 or not script_hex.startswith("6a24"):
        return None
    raw = bytes.fromhex(script_hex[4:])
    return raw[:32][::-1].hex(), int.from_bytes(raw[32:36], "little")


def vote_target(tx: dict) -> str | None:
    """The hash of the block a decoded vote transaction (getrawtransaction verbose) votes on, else None."""
    try:
        hit = voted_block(tx["vout"][0]["scriptPubKey"]["hex"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return hit[0] if hit else None


def vote_bits(tx: dict) -> tuple[int, str] | None:
    """A decoded vote's (vote bits, extended vote bits as hex): its second output, OP_RETURN with 2 + n bytes.

    The side votes copy a real vote's extended bits (the wallets' stake version), as `generatevote` wants them.
    """
    try:
        script = tx["vout"][1]["scriptPubKey"]["hex"]
        raw = bytes.fromhex(script)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if len(raw) < 4 or raw[0] != 0x6A or raw[1] != len(raw) - 2:
        return None
    return int.from_bytes(raw[2:4], "little"), raw[4:].hex()


def winners(params: list) -> tuple[str, int, list[str]] | None:
    """exccd's `winningtickets` notification: (block hash, height, winning tickets); tickets come as a JSON
    object {"0": hash, ...} (or a list)."""
    try:
        block, height, tickets = params[0], int(params[1]), params[2]
        if isinstance(tickets, dict):
            tickets = [tickets[k] for k in sorted(tickets, key=int)]
        return str(block), height, [str(t) for t in tickets]
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def check_depth(depth: int, tip_height: int) -> int:
    """The fork point's height for reorganising `depth` blocks off a tip at `tip_height`."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ReorgError(f"depth must be 1 to {MAX_DEPTH}")
    if tip_height - depth < 1:
        raise ReorgError(f"the chain is only {tip_height} blocks high")
    return tip_height - depth


def off_branch(hash_at_height: dict[str, str | None], side_tip: str) -> list[str]:
    """Nodes whose main chain does not hold `side_tip` at its height (None: their chain is shorter)."""
    return sorted(name for name, h in hash_at_height.items() if h != side_tip)


def pause_text(until: float, pid: int) -> str:
    return json.dumps({"until": until, "pid": pid})


def pause_in_force(text: str, now: float) -> bool:
    """A pause file's text holds mining off until its deadline (wall clock); a stale or garbled one does not."""
    try:
        return float(json.loads(text)["until"]) > now
    except (ValueError, KeyError, TypeError):
        return False


def mining_paused(root: Path) -> bool:
    """For the network's mining loop: a reorganisation asks it to wait."""
    try:
        return pause_in_force((root / PAUSE).read_text(), time.time())
    except OSError:
        return False


@contextmanager
def mining_busy(root: Path) -> Iterator[bool]:
    """For the network's mining loop, around each block: yields False (mine nothing) if a pause is in force.

    The busy file is made *before* the pause is read, and `reorg` writes the pause before it waits for the busy
    file to go: so either the loop sees the pause, or `reorg` sees the loop busy and waits for its block.
    """
    path = root / BUSY
    path.write_text(str(os.getpid()))
    try:
        yield not mining_paused(root)
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Result:
    old_tip: tuple[int, str]
    fork: tuple[int, str]
    new_tip: tuple[int, str] = (0, "")
    orphaned: int = 0           # main-chain blocks that left it
    side_blocks: int = 0
    side_votes: int = 0         # votes in the side blocks
    tip_votes: int = 0          # votes on the new tip the miner holds at the end
    made_tip_votes: int = 0     # of which the command made (the wallets had not voted in time)
    seconds: float = 0.0
    nodes: list[str] = field(default_factory=list)


def summary(r: Result) -> str:
    return (f"reorg: old tip {r.old_tip[0]} {r.old_tip[1]}, fork point {r.fork[0]} {r.fork[1]}, "
            f"new tip {r.new_tip[0]} {r.new_tip[1]}, depth {r.orphaned}, {r.side_blocks} side blocks "
            f"({r.side_votes} votes), {len(r.nodes)} nodes agree, the miner holds {r.tip_votes} votes on the new "
            f"tip ({r.made_tip_votes} made by generatevote), {r.seconds:.1f} s")


# -- the I/O ------------------------------------------------------------------------------------------

def rpc_of(ref: NodeRef, timeout: float = 30.0) -> JSONRPC:
    return JSONRPC(ref.name, ref.host, ref.port, ref.user, ref.password, Path(ref.cert), timeout=timeout)


def write_topology(root: Path, t: Topology) -> None:
    write_private(root / TOPOLOGY, topology_json(t))  # it holds passwords


def read_topology(root: Path) -> Topology:
    try:
        return parse_topology((root / TOPOLOGY).read_text())
    except FileNotFoundError:
        raise ReorgError(f"{root / TOPOLOGY} is missing: no network of this version runs on {root} "
                         f"(start one with `vspd-simnet --root {root}`)") from None


class WinnersFeed:
    """The forker's `winningtickets` notifications over its websocket: block hash -> (height, tickets)."""

    def __init__(self, host: str, port: int, user: str, password: str, cert: Path):
        self.url = f"wss://{host}:{port}/ws"
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.cert = cert
        self.seen: dict[str, tuple[int, list[str]]] = {}
        self.news = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.cert))
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))
        ws = await self._http.ws_connect(self.url, headers={"Authorization": self.auth}, timeout=10)
        await ws.send_str(json.dumps({"jsonrpc": "1.0", "id": 1, "method": "notifywinningtickets", "params": []}))
        self._task = asyncio.create_task(self._read(ws))

    async def _read(self, ws) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            d = json.loads(msg.data)
            if d.get("method") == "winningtickets" and (w := winners(d.get("params") or [])):
                self.seen[w[0]] = (w[1], w[2])
                self.news.set()

    async def get(self, block: str, limit: float) -> tuple[int, list[str]]:
        deadline = time.monotonic() + limit
        while block not in self.seen:
            self.news.clear()
            rest = deadline - time.monotonic()
            if rest <= 0 or (self._task is not None and self._task.done()):
                raise ReorgError(f"the forker named no winning tickets for its block {block} within {limit:.0f} s")
            try:
                await asyncio.wait_for(self.news.wait(), rest)
            except asyncio.TimeoutError:
                pass
        return self.seen[block]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._http is not None:
            await self._http.close()


class Reorganiser:
    """One reorganisation: `nodes` are the network's exccd (the miner first), `wallets` its voting wallets (the
    keeper first), `forker` a fresh exccd with no peers and `feed` its winning tickets."""

    def __init__(self, forker: JSONRPC, feed: WinnersFeed, nodes: list[JSONRPC], wallets: list[JSONRPC],
                 progress: Callable[[str], None] = lambda s: None, timeout: float = DEFAULT_TIMEOUT):
        self.forker, self.feed, self.nodes, self.wallets = forker, feed, nodes, wallets
        self.miner = nodes[0]
        self.progress = progress
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.bits: tuple[int, str] = (1, "")
        self.owner: dict[str, JSONRPC] = {}   # ticket -> the wallet that made a vote for it

    def left(self, what: str) -> float:
        rest = self.deadline - time.monotonic()
        if rest <= 0:
            raise ReorgError(f"timed out after {self.timeout:.0f} s {what}")
        return rest

    async def call(self, node: JSONRPC, method: str, *params, limit: float = 30.0):
        return await node.call(method, *params, timeout=max(1.0, min(limit, self.left(f"at {node.name} {method}"))))

    async def best(self, node: JSONRPC) -> tuple[int, str]:
        b = await self.call(node, "getbestblock", limit=10)
        return int(b["height"]), str(b["hash"])

    async def hash_at(self, node: JSONRPC, height: int) -> str | None:
        try:
            return await self.call(node, "getblockhash", height, limit=10)
        except RPCError:
            return None  # beyond its tip

    async def feed_chain(self, fork: tuple[int, str]) -> int:
        """The main chain up to the fork point, block by block, to the forker; blocks given.

        The forker never sees the block after the fork point: exccd builds templates only on a block with no
        child (blockchain TipGeneration), so a tip reached by `invalidateblock` gets none.
        """
        have = (await self.best(self.forker))[0]
        heights = range(have + 1, fork[0] + 1)
        gate = asyncio.Semaphore(RPC_PARALLEL)

        async def block_at(h: int) -> str:
            async with gate:
                return await self.call(self.miner, "getblock", await self.call(self.miner, "getblockhash", h), False)
        for i in range(0, len(heights), 50):
            for b in await asyncio.gather(*(block_at(h) for h in heights[i:i + 50])):
                await self.call(self.forker, "submitblock", b)
        if await self.best(self.forker) != fork:
            raise ReorgError(f"the forker did not reach the fork point {fork}: it is at {await self.best(self.forker)}")
        return len(heights)

    async def give_transactions(self, fork: tuple[int, str], leaving: list[str]) -> tuple[int, int]:
        """To the forker: the leaving blocks' transactions but votes (in block order), the miner's mempool but
        votes, then the votes on the fork point (last: with all five exccd makes its template at once)."""
        txs: list[str] = []
        fork_votes: list[str] = []
        for b in leaving:
            got = await self.call(self.miner, "getblock", b, True, True)
            for t in got.get("rawtx", [])[1:] + got.get("rawstx", []):
                target = vote_target(t)
                if target is None:
                    txs.append(t["hex"])
                elif target == fork[1]:
                    fork_votes.append(t["hex"])
                    self.bits = vote_bits(t) or self.bits
        for txid in await self.call(self.miner, "getrawmempool", False, "all"):
            try:
                t = await self.call(self.miner, "getrawtransaction", txid, 1, limit=10)
            except RPCError:
                continue  # mined or dropped meanwhile
            if vote_target(t) is None:
                txs.append(t["hex"])
        given = 0
        for raw in txs:
            try:
                await self.call(self.forker, "sendrawtransaction", raw, limit=10)
                given += 1
            except RPCError:
                pass  # already there (a mempool transaction of a leaving block), or spent on this branch
        for raw in fork_votes:
            await self.call(self.forker, "sendrawtransaction", raw, limit=10)
        return given, len(fork_votes)

    async def make_vote(self, block: str, height: int, ticket: str) -> str | None:
        """A vote on `block` by `ticket`, signed by whichever voting wallet owns it (`generatevote`)."""
        known = self.owner.get(ticket)
        for w in ([known] if known else []) + [w for w in self.wallets if w is not known]:
            try:
                got = await self.call(w, "generatevote", block, height, ticket, self.bits[0], self.bits[1], limit=15)
            except (RPCError, NodeUnavailable):
                continue  # not its ticket (or the wallet is down for a moment: the soak kills things)
            self.owner[ticket] = w
            return got["hex"]
        return None

    async def vote_on(self, node: JSONRPC, block: str, height: int, tickets: list[str]) -> int:
        """Votes on `block` by its winning `tickets`, made by the wallets and given to `node`; how many it took."""
        n = 0
        for ticket in tickets:
            raw = await self.make_vote(block, height, ticket)
            if raw is None:
                self.progress(f"no voting wallet could vote with ticket {ticket} on {height} {block}")
                continue
            try:
                await self.call(node, "sendrawtransaction", raw, limit=10)
                n += 1
            except RPCError as e:
                self.progress(f"{node.name} refused the vote of ticket {ticket} on {height} {block}: {e.message}")
        return n

    async def side_block(self) -> tuple[int, str]:
        side = (await self.call(self.forker, "generate", 1, limit=90))[-1]
        height = int((await self.call(self.forker, "getblockheader", side, True))["height"])
        return height, side

    async def submit(self, blocks: list[tuple[int, str]]) -> None:
        """The side blocks, in order, to every node of the network (the miner first)."""
        raw = [await self.call(self.forker, "getblock", b, False) for _, b in blocks]
        for node in self.nodes:
            for (height, block), hexed in zip(blocks, raw):
                try:
                    await self.call(node, "submitblock", hexed)
                except RPCError as e:
                    if "duplicate" not in e.message.lower() and "already" not in e.message.lower():
                        raise ReorgError(f"{node.name} refused side block {height} {block}: {e.message}") from None

    async def on_branch(self, height: int, side: str) -> list[str]:
        return off_branch({n.name: await self.hash_at(n, height) for n in self.nodes}, side)

    async def mempool_votes_on(self, node: JSONRPC, block: str) -> int:
        n = 0
        for txid in await self.call(node, "getrawmempool", False, "votes", limit=10):
            try:
                if vote_target(await self.call(node, "getrawtransaction", txid, 1, limit=10)) == block:
                    n += 1
            except RPCError:
                continue
        return n

    async def tip_votes(self, tip: tuple[int, str], tickets: list[str]) -> tuple[int, int]:
        """Wait (bounded) for the wallets' own votes on the new tip at the miner; make the missing ones."""
        until = time.monotonic() + TIP_VOTES_WAIT
        while True:
            self.left("waiting for votes on the new tip")
            n = await self.mempool_votes_on(self.miner, tip[1])
            if n >= MAX_VOTES or time.monotonic() >= until:
                break
            await asyncio.sleep(0.3)
        made = 0
        if n < MIN_VOTES:
            made = await self.vote_on(self.miner, tip[1], tip[0], tickets)  # refused if a wallet's vote came in
            n = await self.mempool_votes_on(self.miner, tip[1])
        if n < MIN_VOTES:
            raise ReorgError(f"every node is on the new tip {tip[0]} {tip[1]}, but the miner holds only {n} votes "
                             f"on it ({MIN_VOTES} needed for the next block)")
        return n, made

    async def run(self, depth: int, keeper_buys: Callable[[int], object] | None = None) -> Result:
        t0 = time.monotonic()
        old = await self.best(self.miner)
        fork_h = check_depth(depth, old[0])
        fork = (fork_h, await self.call(self.miner, "getblockhash", fork_h))
        leaving = [await self.call(self.miner, "getblockhash", h) for h in range(fork_h + 1, old[0] + 1)]
        r = Result(old_tip=old, fork=fork)
        if keeper_buys is not None:
            await keeper_buys(old[0])  # into the miner's mempool, so into the side branch: tickets for its blocks
        fed = await self.feed_chain(fork)
        given, fork_votes = await self.give_transactions(fork, leaving)
        self.progress(f"tip {old[0]} {old[1]}; the forker has the chain to the fork point {fork_h} {fork[1]} "
                      f"({fed} blocks fed, {given} transactions and {fork_votes} votes given)")
        if fork_votes < MIN_VOTES:
            raise ReorgError(f"block {fork_h + 1} holds only {fork_votes} votes on the fork point")
        side: list[tuple[int, str]] = []
        for k in range(depth + 1 + EXTRA_BLOCKS):
            height, block = await self.side_block()
            side.append((height, block))
            r.side_blocks += 1
            r.side_votes += int((await self.call(self.forker, "getblockheader", block, True))["voters"])
            _, tickets = await self.feed.get(block, min(15.0, self.left("waiting for the forker's winners")))
            if k >= depth:  # as long as the main chain: the network may reorganise to it
                await self.submit(side)
                side_sent = len(side)
                if not await self.on_branch(height, block):
                    r.new_tip, r.orphaned = (height, block), old[0] - fork_h
                    r.nodes = [n.name for n in self.nodes]
                    r.tip_votes, r.made_tip_votes = await self.tip_votes((height, block), tickets)
                    r.seconds = time.monotonic() - t0
                    return r
                side = side[side_sent:]
            n = await self.vote_on(self.forker, block, height, tickets)
            self.progress(f"side block {height} {block}: {n} of {len(tickets)} votes on it")
            if n < MIN_VOTES:
                raise ReorgError(f"only {n} votes on side block {height} {block} (winners {tickets}; the voting "
                                 f"wallets could not vote with the others)")
        raise ReorgError(f"the side branch reached {r.side_blocks} blocks and the nodes still prefer the main chain: "
                         f"{ {n.name: await self.best(n) for n in self.nodes} }")


class Paused:
    """The network's mining loop mines nothing while this file is fresh; removed on exit, stale after the deadline.

    On entry it waits (bounded) for a block the loop is mining to be done.
    """

    def __init__(self, root: Path, seconds: float, wait: float = BUSY_WAIT):
        self.root, self.path, self.seconds, self.wait = root, root / PAUSE, seconds, wait

    async def __aenter__(self) -> "Paused":
        self.path.write_text(pause_text(time.time() + self.seconds, os.getpid()))
        deadline = time.monotonic() + self.wait
        while (self.root / BUSY).exists():
            if time.monotonic() > deadline:
                self.path.unlink(missing_ok=True)
                raise ReorgError(f"the network's mining loop has been mining one block for over {self.wait:.0f} s "
                                 f"({self.root / BUSY}): is its chain stalled?")
            await asyncio.sleep(0.1)
        return self

    async def __aexit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def new_forker(root: Path, t: Topology) -> ExccdNode:
    """A fresh exccd with no peers (its folder wiped first), mining to the keeper's address."""
    home = root / "reorg" / "forker"
    shutil.rmtree(home, ignore_errors=True)
    return ExccdNode("forker", Path(t.exccd), home, root / "logs", miningaddr=t.miningaddr)


async def reorganise(root: Path, t: Topology, nodes: list[JSONRPC], wallets: list[JSONRPC], depth: int,
                     progress: Callable[[str], None], timeout: float) -> Result:
    if not wallets:
        raise ReorgError(f"{root / TOPOLOGY} names no voting wallets (written by an older version? restart the "
                         f"network)")
    forker = new_forker(root, t)
    feed = WinnersFeed("127.0.0.1", forker.rpc_port, forker.user, forker.password, forker.cert_path)

    async def keeper_buys(height: int) -> None:
        bought = await keep_ticket_stock(wallets[0], nodes[0], height, progress)
        if bought:
            progress(f"the keeper bought {bought} tickets")
    try:
        try:
            await forker.start()
            await feed.start()
        except (ChildError, aiohttp.ClientError, OSError) as e:
            raise ReorgError(f"the forker exccd did not start: {e}") from None
        return await Reorganiser(forker.rpc, feed, nodes, wallets, progress, timeout).run(depth, keeper_buys)
    except NodeUnavailable as e:
        raise ReorgError(f"a node did not answer: {e}\n--- forker ({forker.log_path}):\n{forker.tail(8)}") from None
    finally:
        await feed.close()
        forker.hurry = True  # its chain is thrown away
        await forker.stop()


async def reorg_network(net, depth: int, progress: Callable[[str], None] = lambda s: None,
                        timeout: float = DEFAULT_TIMEOUT) -> Result:
    """In the process that runs the network (the soak): its mining waits on the chain's lock meanwhile."""
    t = net.topology()
    async with net.chain._mining:
        return await reorganise(net.root, t, [n.rpc for n in net.exccd_nodes()], [w.rpc for w in net.voting_wallets()],
                                depth, progress, timeout)


async def reorg_root(root: Path, depth: int, progress: Callable[[str], None], timeout: float) -> Result:
    t = read_topology(root)
    nodes = [rpc_of(n) for n in t.nodes]
    wallets = [rpc_of(w, timeout=60.0) for w in t.wallets]
    try:
        async with Paused(root, timeout + 30):
            return await reorganise(root, t, nodes, wallets, depth, progress, timeout)
    finally:
        for c in nodes + wallets:
            await c.close()


def main(argv: list[str]) -> int:
    from .stateroot import default_root
    p = argparse.ArgumentParser(prog="vspd-simnet reorg", description="Make the running network's last N blocks "
                                "leave the main chain for a longer branch (with votes); returns once every exccd "
                                "of the network is on it and the miner holds the votes for the next block.")
    p.add_argument("--root", type=Path, default=default_root(), help="state folder of the running network "
                   "(default %(default)s)")
    p.add_argument("--depth", type=int, required=True, help=f"blocks to reorganise, 1 to {MAX_DEPTH}")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="give up after this many seconds "
                   "(default %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="print each step")
    args = p.parse_args(argv)

    def progress(line: str) -> None:
        if args.verbose:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
    try:
        check_depth(args.depth, 10**9)
        r = asyncio.run(reorg_root(args.root.resolve(), args.depth, progress, args.timeout))
    except ReorgError as e:
        print(f"vspd-simnet reorg: {e}", file=sys.stderr)
        return 1
    print(summary(r), flush=True)
    return 0
