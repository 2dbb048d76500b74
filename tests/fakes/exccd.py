"""A protocol-level fake exccd: a real websocket JSON-RPC server over TLS.

It answers the calls the VSP makes with the shapes exccd returns (spec
§4.4, simnet.md §5.2) from a small in-memory chain that tests drive:
`mine()` confirms mempool transactions and sends `blockconnected`.
For fast unit tests only; the end-to-end suite uses the real exccd.
"""

import json
import os
from dataclasses import dataclass, field

from vspd.chain import tx as txmod
from vspd.chain.params import NetParams

from .jsonrpc import FakeJSONRPCServer, RPCFail, version_entry


@dataclass
class ChainTx:
    hex: str
    block: int | None = None  # height it was mined at


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
    stake_txs: dict = field(default_factory=dict)  # height -> getblock "rawstx" entries

    def add(self, t: txmod.Tx, block: int | None = None) -> str:
        txid = t.txid()
        self.txs[txid] = ChainTx(t.serialize().hex(), block)
        return txid

    def confirmations(self, txid: str) -> int:
        b = self.txs[txid].block
        return 0 if b is None else self.height - b + 1

    def block_hash(self, height: int) -> str:
        return height.to_bytes(4, "big").hex().rjust(64, "0")

    def spend(self, ticket_hash: str, vote: bool, height: int | None = None) -> str:
        """Put a vote (or a revocation) of `ticket_hash` into block `height` (default: the next)."""
        spender = os.urandom(32).hex()
        vin = [{"txid": ticket_hash, "vout": 0, "tree": 1}]
        if vote:
            vin.insert(0, {"stakebase": "0000", "sequence": 4294967295})
        self.stake_txs.setdefault(height or self.height + 1, []).append({"txid": spender, "vin": vin})
        return spender


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
            return {"exccd": version_entry(2, 7, 6), "exccdjsonrpcapi": version_entry(*c.api_version)}
        if method == "getcurrentnet":
            return c.net_magic if c.net_magic is not None else c.net.net_magic
        if method == "getinfo":
            return {"version": 2070600, "blocks": c.height, "txindex": c.txindex, "addrindex": False}
        if method == "notifyblocks":
            self.subscribers.add(ws)
            return None
        if method == "getbestblockhash":
            return c.block_hash(c.height)
        if method == "getblockcount":
            return c.height
        if method == "getblockheader":
            return {"hash": params[0], "height": c.height, "sbits": c.sbits, "poolsize": c.pool_size,
                    "confirmations": 1}
        if method == "getrawtransaction":
            txid = params[0]
            if txid not in c.txs:
                raise RPCFail(-5, "No information available about transaction")
            t = c.txs[txid]
            r = {"hex": t.hex, "txid": txid, "confirmations": c.confirmations(txid)}
            if t.block is not None:
                r.update(blockhash=c.block_hash(t.block), blockheight=t.block)
            return r
        if method == "sendrawtransaction":
            raw = params[0]
            try:
                parsed = txmod.from_hex(raw)
            except Exception:
                raise RPCFail(-22, "TX decode failed")
            txid = parsed.txid()
            if txid in c.send_errors:
                code, message = c.send_errors.pop(txid)
                raise RPCFail(code, message)
            if txid in c.txs:
                raise RPCFail(-40, f"already have transaction {txid}")
            c.txs[txid] = ChainTx(raw)
            return txid
        if method == "existslivetickets":
            bits = 0
            for i, h in enumerate(params[0]):
                if h in c.live:
                    bits |= 1 << i
            return bits.to_bytes(max(1, (len(params[0]) + 7) // 8), "little").hex()
        if method == "getblockhash":
            return c.block_hash(int(params[0]))
        if method == "getstakedifficulty":
            return {"current": c.sbits, "next": c.sbits_next if c.sbits_next is not None else c.sbits}
        if method == "getblockchaininfo":
            return {"chain": c.net.name, "blocks": c.height, "initialblockdownload": False}
        if method == "getblock":
            height = int(params[0], 16)
            return {"hash": params[0], "height": height, "rawstx": c.stake_txs.get(height, [])}
        raise RPCFail(-32601, f"Method not found: {method}")

    async def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.chain.height += 1
            for t in self.chain.txs.values():
                if t.block is None:
                    t.block = self.chain.height
            header = os.urandom(280).hex()
            msg = json.dumps({"jsonrpc": "1.0", "method": "blockconnected", "params": [header, None], "id": None})
            for ws in list(self.subscribers):
                try:
                    await ws.send_str(msg)
                except ConnectionError:
                    pass
