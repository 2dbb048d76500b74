"""A protocol-level fake exccd: a real websocket JSON-RPC server over TLS.

It answers the calls the VSP makes with the shapes exccd returns (spec
§4.4, simnet.md §5.2) from a small in-memory chain that tests drive:
`mine()` confirms mempool transactions and sends `blockconnected`.
For fast unit tests only; the end-to-end suite uses the real exccd.
"""

import asyncio
import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from vspd.chain import tx as txmod
from vspd.chain.params import NetParams
from vspd.tlsutil import self_signed


@dataclass
class ChainTx:
    hex: str
    block: int | None = None  # height it was mined at


@dataclass
class FakeChain:
    net: NetParams
    height: int = 200
    sbits: float = 0.2
    pool_size: int = 64
    txs: dict = field(default_factory=dict)
    live: set = field(default_factory=set)
    send_errors: dict = field(default_factory=dict)  # txid -> (code, message), used once
    api_version: tuple = (7, 0, 0)
    txindex: bool = True
    net_magic: int | None = None

    def add(self, t: txmod.Tx, block: int | None = None) -> str:
        txid = t.txid()
        self.txs[txid] = ChainTx(t.serialize().hex(), block)
        return txid

    def confirmations(self, txid: str) -> int:
        b = self.txs[txid].block
        return 0 if b is None else self.height - b + 1

    def block_hash(self, height: int) -> str:
        return height.to_bytes(4, "big").hex().rjust(64, "0")


class FakeExccd:
    def __init__(self, chain: FakeChain, user: str = "user", password: str = "pass"):
        self.chain = chain
        self.user, self.password = user, password
        self.sockets: set[web.WebSocketResponse] = set()
        self.subscribers: set[web.WebSocketResponse] = set()
        self.calls: list[str] = []
        self.paused = False
        tmp = Path(tempfile.mkdtemp(prefix="fakeexccd-"))
        cert, key = self_signed("fake exccd", ["127.0.0.1", "localhost"])
        self.cert_path, self.key_path = tmp / "rpc.cert", tmp / "rpc.key"
        self.cert_path.write_bytes(cert)
        self.key_path.write_bytes(key)
        self.cert_pem = cert
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner:
            await self._runner.cleanup()

    async def drop_connections(self) -> None:
        for ws in list(self.sockets):
            await ws.close()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="401 Unauthorized.")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                await ws.send_str(json.dumps(await self._answer(ws, req)))
        finally:
            self.sockets.discard(ws)
            self.subscribers.discard(ws)
        return ws

    async def _answer(self, ws, req: dict) -> dict:
        method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        self.calls.append(method)
        while self.paused:
            await asyncio.sleep(0.01)
        try:
            result = await self._dispatch(ws, method, params)
            return {"jsonrpc": "1.0", "result": result, "error": None, "id": rid}
        except RPCFail as e:
            return {"jsonrpc": "1.0", "result": None, "error": {"code": e.code, "message": e.message}, "id": rid}
        except Exception as e:  # a bug in a test's set-up must not kill the socket
            return {"jsonrpc": "1.0", "result": None, "error": {"code": -32603, "message": repr(e)}, "id": rid}

    async def _dispatch(self, ws, method: str, params: list):
        c = self.chain
        if method == "version":
            ma, mi, pa = c.api_version
            return {"exccd": {"versionstring": "2.7.6", "major": 2, "minor": 7, "patch": 6,
                              "prerelease": "", "buildmetadata": ""},
                    "exccdjsonrpcapi": {"versionstring": f"{ma}.{mi}.{pa}", "major": ma, "minor": mi,
                                        "patch": pa, "prerelease": "", "buildmetadata": ""}}
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


class RPCFail(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message
