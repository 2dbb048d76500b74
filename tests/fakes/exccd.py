"""A protocol-level fake exccd: a real websocket JSON-RPC server over TLS.

It answers the calls the VSP makes with the shapes exccd 2.7.6 returns,
held to the answers recorded from the real exccd (tests/data/rpc_shapes.json,
tests/rpcclient/test_rpc_shapes.py), from a small in-memory chain that tests drive:
`mine()` confirms mempool transactions and sends `blockconnected`.
For fast unit tests only; the end-to-end suite uses the real exccd.
"""

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property

from vspd.chain import tx as txmod
from vspd.chain.address import P2PKH, Address
from vspd.chain.params import COIN, NetParams

from .jsonrpc import FakeJSONRPCServer, RPCFail, version_entry
from .txjson import NO_PREVIOUS, OP_SSGEN, OP_SSRTX, Mined, is_revocation, is_stake, is_vote, tx_json

GENESIS_TIME = 1_700_000_000
VOTE_SUBSIDY = 3_300_330_033  # atoms of a simnet vote's stakebase after SVH


@dataclass
class ChainTx:
    hex: str
    block: int | None = None  # height it was mined at

    @cached_property
    def tx(self) -> txmod.Tx:
        return txmod.from_hex(self.hex)


@dataclass
class FakeChain:
    net: NetParams
    height: int = 200
    sbits: float = 0.2
    sbits_next: float | None = None
    pool_size: int = 64
    txs: dict = field(default_factory=dict)
    live: set = field(default_factory=set)
    send_errors: dict = field(default_factory=dict)  # txid -> (code, message), used once
    api_version: tuple = (7, 0, 0)
    txindex: bool = True
    net_magic: int | None = None
    known_inputs_only: bool = False  # refuse, as exccd does, a transaction spending outputs the chain lacks
    spends: dict = field(default_factory=dict)  # ticket hash -> (spender txid, is vote, height)
    replaced: dict = field(default_factory=dict)  # height -> how many times a reorganisation replaced its block

    def add(self, t: txmod.Tx, block: int | None = None) -> str:
        txid = t.txid()
        self.txs[txid] = ChainTx(t.serialize().hex(), block)
        return txid

    def mined_at(self, txid: str) -> int | None:
        """The height of a transaction's block; None while it is in the mempool (or its block is to come)."""
        b = self.txs[txid].block
        return b if b is not None and b <= self.height else None

    def confirmations(self, txid: str) -> int:
        b = self.mined_at(txid)
        return 0 if b is None else self.height - b + 1

    def block_hash(self, height: int) -> str:
        return (self.replaced.get(height, 0).to_bytes(2, "big") + height.to_bytes(4, "big")).hex().rjust(64, "0")

    def reorganise(self, depth: int) -> int:
        """The last `depth` blocks leave the main chain; returns the fork height.

        As exccd does on a block disconnected, their transactions go back to
        the mempool (the next `mine` puts them in the new branch's first block),
        except the votes and revocations, which are forgotten (a vote names its
        parent block, gone too): tests spend the tickets again on the new branch.
        """
        fork = self.height - depth
        for h in range(fork + 1, self.height + 1):
            self.replaced[h] = self.replaced.get(h, 0) + 1
        for ticket, (spender, _, height) in list(self.spends.items()):
            if fork < height <= self.height:
                del self.spends[ticket]
                del self.txs[spender]
        for t in self.txs.values():
            if t.block is not None and fork < t.block <= self.height:
                t.block = None
        self.height = fork
        return fork

    def block_time(self, height: int) -> int:
        return GENESIS_TIME + height

    def spend(self, ticket_hash: str, vote: bool, height: int | None = None) -> str:
        """Put a vote (or a revocation) of `ticket_hash` into block `height` (default: the next)."""
        height = height or self.height + 1
        t = self._vote(ticket_hash, height) if vote else self._revocation(ticket_hash)
        spender = self.add(t, block=height)
        self.spends[ticket_hash] = (spender, vote, height)
        return spender

    def spender_of(self, ticket_hash: str, height: int) -> tuple[str, bool] | None:
        """The vote or revocation of a ticket mined by `height`, with whether it is a vote."""
        found = self.spends.get(ticket_hash)
        return (found[0], found[1]) if found and found[2] <= height else None

    def _ticket_input(self, ticket_hash: str) -> txmod.TxIn:
        return txmod.TxIn(bytes.fromhex(ticket_hash)[::-1], 0, 1, value_in=int(self.sbits * COIN),
                          block_height=max(0, self.height - 20), block_index=5, sig_script=b"\x47" + os.urandom(71))

    def _vote(self, ticket_hash: str, height: int) -> txmod.Tx:
        """A vote as exccd mines it: stakebase, the ticket, block reference, vote bits, one payout."""
        block_ref = bytes.fromhex(self.block_hash(height - 1))[::-1] + (height - 1).to_bytes(4, "little")
        stakebase = txmod.TxIn(*NO_PREVIOUS, 0, value_in=VOTE_SUBSIDY, sig_script=bytes.fromhex("deadbeef"))
        payout = bytes([OP_SSGEN]) + Address(self.net, P2PKH, os.urandom(20)).script()
        return txmod.Tx(inputs=[stakebase, self._ticket_input(ticket_hash)],
                        outputs=[txmod.TxOut(0, bytes([txmod.OP_RETURN, 36]) + block_ref),
                                 txmod.TxOut(0, bytes.fromhex("6a0601000a000000")),
                                 txmod.TxOut(VOTE_SUBSIDY + int(self.sbits * COIN), payout)])

    def _revocation(self, ticket_hash: str) -> txmod.Tx:
        """A revocation as exccd 2.7.6 makes it itself (automatic revocations): no signature."""
        spend = self._ticket_input(ticket_hash)
        spend.sig_script = b""
        payout = bytes([OP_SSRTX]) + Address(self.net, P2PKH, os.urandom(20)).script()
        return txmod.Tx(version=2, inputs=[spend], outputs=[txmod.TxOut(spend.value_in, payout)])

    def coinbase(self, height: int) -> txmod.Tx:
        """The block's coinbase: its height and extra nonce, then the miner's payout."""
        seed = hashlib.sha256(height.to_bytes(4, "little")).digest()
        return txmod.Tx(inputs=[txmod.TxIn(*NO_PREVIOUS, 0, value_in=33_003_300_330, sig_script=b"\x00\x00/exccd/")],
                        outputs=[txmod.TxOut(0, bytes([txmod.OP_RETURN, 12]) + height.to_bytes(4, "little") + seed[:8]),
                                 txmod.TxOut(33_003_548_630, Address(self.net, P2PKH, seed[8:28]).script())])

    def block_txs(self, height: int) -> tuple[list[txmod.Tx], list[txmod.Tx]]:
        """The regular tree (coinbase first) and the stake tree (votes, tickets, revocations) of a block."""
        mined = [t.tx for t in self.txs.values() if t.block == height]
        stake = [t for t in mined if is_stake(t, self.net)]
        stake.sort(key=lambda t: 0 if is_vote(t) else 2 if is_revocation(t) else 1)
        return [self.coinbase(height)] + [t for t in mined if not is_stake(t, self.net)], stake

    def where(self, txid: str) -> Mined | None:
        height = self.mined_at(txid)
        if height is None:
            return None
        regular, stake = self.block_txs(height)
        index = next(i for tree in (regular, stake) for i, t in enumerate(tree) if t.txid() == txid)
        return Mined(self.block_hash(height), height, index, self.height - height + 1, self.block_time(height))

    def header(self, height: int) -> dict:
        """The fields getblockheader and getblock share, with exccd's omitempty."""
        seed = hashlib.sha256(b"block" + height.to_bytes(4, "little")).digest()
        h = {"hash": self.block_hash(height), "confirmations": self.height - height + 1, "version": 9,
             "merkleroot": seed.hex(), "stakeroot": seed[::-1].hex(), "votebits": 1, "finalstate": seed[:6].hex(),
             "voters": 5, "freshstake": 5, "revocations": 0, "poolsize": self.pool_size, "bits": "1f0428e2",
             "sbits": self.sbits, "height": height, "size": 5040, "time": self.block_time(height),
             "mediantime": self.block_time(height) - 6, "nonce": int.from_bytes(seed[:2], "little"),
             "extradata": seed[6:14].hex() + "00" * 24, "stakeversion": 0, "difficulty": 7877.4930927,
             "chainwork": (height * 9813).to_bytes(32, "big").hex()}
        if height > 0:
            h["previousblockhash"] = self.block_hash(height - 1)
        if height < self.height:
            h["nextblockhash"] = self.block_hash(height + 1)
        h["equihashsolution"] = base64.b64encode(seed * 3).decode()
        return h

    def block(self, height: int) -> dict:
        """getblock verbose with the transactions (rawstx is omitempty)."""
        regular, stake = self.block_txs(height)
        h = self.header(height)

        def mined(index: int) -> Mined:
            return Mined(h["hash"], height, index, h["confirmations"], h["time"])
        b = {k: h[k] for k in ("hash", "confirmations", "size", "height", "version", "merkleroot", "stakeroot")}
        b["rawtx"] = [tx_json(t, self.net, mined(i)) for i, t in enumerate(regular)]
        if stake:
            b["rawstx"] = [tx_json(t, self.net, mined(i)) for i, t in enumerate(stake)]
        b.update({k: v for k, v in h.items() if k not in b})
        b["voters"] = sum(map(is_vote, stake))
        b["revocations"] = sum(map(is_revocation, stake))
        return b

    def missing_input(self, t: txmod.Tx) -> str | None:
        return next((i.prev_txid for i in t.inputs if i.prev_txid not in self.txs), None)


class FakeExccd(FakeJSONRPCServer):
    name = "fakeexccd"

    def __init__(self, chain: FakeChain, user: str = "user", password: str = "pass"):
        super().__init__(user, password)
        self.chain = chain
        self.subscribers: set = set()

    def closed(self, ws) -> None:
        self.subscribers.discard(ws)

    async def dispatch(self, ws, method: str, params: list):
        c = self.chain
        if method == "version":
            return {"exccd": version_entry(2, 7, 6, "release.local"), "exccdjsonrpcapi": version_entry(*c.api_version)}
        if method == "getcurrentnet":
            return c.net_magic if c.net_magic is not None else c.net.net_magic
        if method == "getinfo":
            return {"version": 2070600, "protocolversion": 8, "blocks": c.height, "timeoffset": 0, "connections": 3,
                    "proxy": "", "difficulty": 7877.4930927, "testnet": False, "relayfee": 0.001, "errors": "",
                    "addrindex": False, "txindex": c.txindex}
        if method == "notifyblocks":
            self.subscribers.add(ws)
            return None
        if method == "getbestblockhash":
            return c.block_hash(c.height)
        if method == "getblockcount":
            return c.height
        if method == "getblockheader":
            return c.header(self._height_of(params[0]))
        if method == "getrawtransaction":
            txid = params[0]
            if txid not in c.txs:
                raise RPCFail(-5, f"No information available about transaction {txid}")
            return tx_json(c.txs[txid].tx, c.net, c.where(txid))
        if method == "sendrawtransaction":
            return self._send(params[0])
        if method == "existslivetickets":
            bits = 0
            for i, h in enumerate(params[0]):
                if h in c.live:
                    bits |= 1 << i
            return bits.to_bytes(max(1, (len(params[0]) + 7) // 8), "little").hex()
        if method == "getblockhash":
            if not 0 <= int(params[0]) <= c.height:
                raise RPCFail(-1, "Block number out of range")  # as exccd: a shorter chain has no such block
            return c.block_hash(int(params[0]))
        if method == "getstakedifficulty":
            return {"current": c.sbits, "next": c.sbits_next if c.sbits_next is not None else c.sbits}
        if method == "getblockchaininfo":
            best = c.header(c.height)
            return {"chain": c.net.name, "blocks": c.height, "headers": c.height, "syncheight": c.height,
                    "bestblockhash": best["hash"], "difficulty": int(best["bits"], 16),
                    "difficultyratio": best["difficulty"], "verificationprogress": 1, "chainwork": best["chainwork"],
                    "initialblockdownload": False, "maxblocksize": 1310720, "deployments": {}}
        if method == "getblock":
            return c.block(self._height_of(params[0]))
        raise RPCFail(-32601, f"Method not found: {method}")

    def _height_of(self, block_hash: str) -> int:
        """The height of a main-chain block (a replaced one's contents are not kept: not found, as unknown)."""
        height = int(block_hash[-8:], 16)
        if height > self.chain.height or self.chain.block_hash(height) != block_hash:
            raise RPCFail(-5, "Block not found")
        return height

    def _send(self, raw: str) -> str:
        """sendrawtransaction, refused with exccd's codes and words (tests/data/rpc_shapes.json)."""
        c = self.chain
        try:
            parsed = txmod.from_hex(raw)
        except Exception:
            raise RPCFail(-22, "TX decode failed")
        txid = parsed.txid()
        if txid in c.send_errors:
            code, message = c.send_errors.pop(txid)
            raise RPCFail(code, message)
        if txid in c.txs:
            why = "transaction already exists" if c.mined_at(txid) is not None else f"already have transaction {txid}"
            raise RPCFail(-40, f"rejected transaction {txid}: {why}")
        missing = c.missing_input(parsed) if c.known_inputs_only else None
        if missing:
            raise RPCFail(-1, f"rejected transaction {txid}: orphan transaction {txid} references outputs of "
                              f"unknown or fully-spent transaction {missing}")
        c.txs[txid] = ChainTx(raw)
        return txid

    async def reorganise(self, depth: int, new_blocks: int | None = None) -> int:
        """A reorganisation as exccd tells it: `depth` blockdisconnected, then the new branch's blocks
        (depth + 1 unless `new_blocks` says) connected; returns the fork height."""
        fork = self.chain.reorganise(depth)
        for _ in range(depth):
            await self._notify("blockdisconnected", [os.urandom(280).hex()])
        await self.mine(depth + 1 if new_blocks is None else new_blocks)
        return fork

    async def _notify(self, method: str, params: list) -> None:
        msg = json.dumps({"jsonrpc": "1.0", "method": method, "params": params, "id": None})
        for ws in list(self.subscribers):
            try:
                await ws.send_str(msg)
            except ConnectionError:
                pass

    async def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.chain.height += 1
            for t in self.chain.txs.values():
                if t.block is None:
                    t.block = self.chain.height
            await self._notify("blockconnected", [os.urandom(280).hex(), None])  # a block header's 280 bytes
