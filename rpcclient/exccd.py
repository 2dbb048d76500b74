"""The few exccd calls the frontend makes, with typed results (spec §4.4)."""

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from vspd.chain.errors import ChainError
from vspd.chain.fees import coins_to_atoms
from vspd.chain.params import NetParams
from vspd.chain.semver import SemVer

from .errors import ERR_DUPLICATE_TX, NodeUnavailable, PeerMismatch, RPCError
from .peer import Peer, check_version
from .wsrpc import WSRPCClient

REQUIRED_API = SemVer(7, 0, 0)
API_KEY = "exccdjsonrpcapi"
ORPHAN_TEXT = "references outputs of unknown or fully-spent transaction"

log = logging.getLogger("exccd")


@dataclass(frozen=True)
class RawTx:
    txid: str
    hex: str
    confirmations: int
    blockhash: str
    blockheight: int


@dataclass(frozen=True)
class StakeSpend:
    ticket_hash: str
    spender: str
    is_vote: bool


@dataclass(frozen=True)
class StakeBlock:
    """A block's parent and the tickets its votes and revocations spend."""
    previous: str
    spends: list[StakeSpend]


@dataclass(frozen=True)
class BestBlock:
    hash: str
    height: int
    sbits: int  # stake difficulty in atoms
    pool_size: int


def is_orphan_error(err: RPCError) -> bool:
    return ORPHAN_TEXT in err.message


class BlockMemo:
    """exccd's answers that change only with a new block, kept until the next one.

    A transaction's confirmations and whether a ticket is live move with
    blocks only; what the mempool holds is gone when exccd restarts, that is
    on a new connection. Both clear this. An answer asked before a clear and
    received after it is not kept. Only successes are kept.
    """
    MAX_ANSWERS = 10_000

    def __init__(self):
        self.answers: dict[tuple, Any] = {}
        self.generation = 0

    def clear(self) -> None:
        self.answers.clear()
        self.generation += 1

    async def get(self, key: tuple, ask: Callable[[], Awaitable[Any]]) -> Any:
        if key in self.answers:
            return self.answers[key]
        generation = self.generation
        answer = await ask()
        if generation == self.generation:
            if len(self.answers) >= self.MAX_ANSWERS:
                self.answers.clear()
            self.answers[key] = answer
        return answer


class Exccd(Peer):
    """exccd's JSON-RPC: validated on every new connection, then typed calls."""
    name = "exccd"
    api_key = API_KEY
    required_api = REQUIRED_API

    def __init__(self, net: NetParams, host: str, port: int, user: str, password: str,
                 cert_pem: bytes, on_block: Callable[[str], Awaitable[None]] | None = None,
                 timeout: float = 30.0):
        super().__init__(net, host, port, user, password, cert_pem, timeout, on_notification=self._notification)
        self._on_block = on_block
        self.height = 0  # best height last seen, kept by every call that learns it
        self.memo = BlockMemo()

    async def validated(self, rpc: WSRPCClient) -> None:
        self.memo.clear()
        info = await rpc.call("getinfo")
        if not isinstance(info, dict) or not info.get("txindex"):
            raise PeerMismatch("exccd does not have transaction index enabled (--txindex)")
        await rpc.call("notifyblocks")
        self.height = int(await rpc.call("getblockcount"))
        if self._on_block is not None:  # catch up on whatever was missed while disconnected
            await self._on_block("")

    async def _notification(self, method: str, params: list) -> None:
        if method == "blockconnected":
            self.memo.clear()
            if self._on_block is not None:
                header = params[0] if params and isinstance(params[0], str) else ""
                await self._on_block(header)
        elif method == "blockdisconnected":  # a reorganisation: what was asked of the old tip is stale
            self.memo.clear()
            if self._on_block is not None:
                await self._on_block("")

    async def _per_block(self, key: tuple, ask: Callable[[], Awaitable[Any]]) -> Any:
        if not self.connected:  # no answer from a node we cannot reach: the call below says so
            self.memo.clear()
        return await self.memo.get(key, ask)

    async def get_raw_transaction(self, txid: str) -> RawTx:
        """The transaction and its confirmations; the same answer until the next block."""
        return await self._per_block(("getrawtransaction", txid), lambda: self._get_raw_transaction(txid))

    async def _get_raw_transaction(self, txid: str) -> RawTx:
        r = await self.rpc.call("getrawtransaction", txid, 1)
        try:
            return RawTx(txid=r["txid"], hex=r["hex"], confirmations=int(r.get("confirmations", 0)),
                         blockhash=r.get("blockhash", ""), blockheight=int(r.get("blockheight", 0)))
        except (KeyError, TypeError, ValueError):
            raise NodeUnavailable("exccd returned a malformed getrawtransaction result") from None

    async def send_raw_transaction(self, tx_hex: str) -> None:
        """Broadcast; an already-known transaction counts as success."""
        try:
            await self.rpc.call("sendrawtransaction", tx_hex, False)
        except RPCError as e:
            if e.code == ERR_DUPLICATE_TX:
                return
            raise

    async def best_block(self) -> BestBlock:
        h = await self.rpc.call("getbestblockhash")
        hdr = await self.rpc.call("getblockheader", h, True)
        try:
            best = BestBlock(hash=h, height=int(hdr["height"]), sbits=coins_to_atoms(float(hdr["sbits"])),
                             pool_size=int(hdr["poolsize"]))
        except (KeyError, TypeError, ValueError):
            raise NodeUnavailable("exccd returned a malformed block header") from None
        self.height = max(self.height, best.height)
        return best

    async def exists_live_ticket(self, txid: str) -> bool:
        return await self._per_block(("existslivetickets", txid), lambda: self._exists_live_ticket(txid))

    async def _exists_live_ticket(self, txid: str) -> bool:
        bits = await self.rpc.call("existslivetickets", [txid])
        try:
            return bool(bytes.fromhex(bits)[0] & 1)
        except (ValueError, TypeError, IndexError):
            raise NodeUnavailable("exccd returned a malformed existslivetickets bitset") from None

    async def block_hash(self, height: int) -> str:
        return await self.rpc.call("getblockhash", height)

    async def stake_block(self, block_hash: str) -> StakeBlock:
        """A block's stake spends with its parent's hash, from one getblock: the pipeline checks each block
        it reads links to the one before, so a reorganisation during a pass never mixes two branches."""
        block = await self.rpc.call("getblock", block_hash, True, True)
        out = []
        try:
            for stx in block.get("rawstx") or []:
                vins = stx.get("vin") or []
                is_vote = any("stakebase" in v for v in vins)
                for v in vins:  # a vote or revocation spends output 0 of a ticket, in the stake tree
                    if "txid" in v and v.get("vout") == 0 and v.get("tree") == 1:
                        out.append(StakeSpend(v["txid"], stx["txid"], is_vote))
            previous = block.get("previousblockhash", "")
            if not isinstance(previous, str):
                raise TypeError("previousblockhash")
        except (AttributeError, KeyError, TypeError):
            raise NodeUnavailable("exccd returned a malformed block") from None
        return StakeBlock(previous, out)

    async def stake_difficulty(self) -> tuple[int, int]:
        """The ticket price now and for the next stake difficulty window, in atoms."""
        r = await self.rpc.call("getstakedifficulty")
        try:
            return coins_to_atoms(float(r["current"])), coins_to_atoms(float(r["next"]))
        except (KeyError, TypeError, ValueError, ChainError):
            raise NodeUnavailable("exccd returned a malformed getstakedifficulty result") from None

    async def block_count(self) -> int:
        self.height = int(await self.rpc.call("getblockcount"))
        return self.height


async def node_has(exccd: Exccd, txid: str) -> bool:
    """Whether the node knows the transaction (mempool or chain); NodeUnavailable is raised as is."""
    try:
        await exccd.get_raw_transaction(txid)
    except RPCError:
        return False
    return True


async def send_fee(exccd: Exccd, fee_tx_hex: str, fee_tx_hash: str, *, look_up: bool) -> bool:
    """Broadcast a fee transaction: True if sent now, False if it counts as sent already.

    exccd's "already have" answer is a send (Exccd.send_raw_transaction).
    With `look_up`, any other refusal is checked against the node: a fee it
    knows (in its mempool or mined: a voter or the frontend sent it first)
    counts as sent, and False says so. Any other refusal is raised as its
    RPCError, and a node that does not answer as NodeUnavailable. Each
    caller logs and records the outcome itself.
    """
    try:
        await exccd.send_raw_transaction(fee_tx_hex)
    except RPCError:
        if look_up and await node_has(exccd, fee_tx_hash):
            return False
        raise
    return True



__all__ = ["Exccd", "RawTx", "BestBlock", "is_orphan_error", "node_has", "send_fee", "check_version"]
