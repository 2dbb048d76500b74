"""A websocket JSON-RPC server over TLS with basic auth, as exccd and exccwallet serve.

The base of the protocol-level fakes: subclasses provide `dispatch`.
"""

import asyncio
import base64
import json
import ssl
import tempfile
from pathlib import Path

from aiohttp import WSMsgType, web

from vspd.base.tls import self_signed


class RPCFail(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message


class FakeJSONRPCServer:
    name = "fake"

    def __init__(self, user: str = "user", password: str = "pass"):
        self.user, self.password = user, password
        self.sockets: set[web.WebSocketResponse] = set()
        self.calls: list[str] = []
        self.paused = False
        self.refuse = False  # answer every upgrade with 401, as if down for auth
        self.answer_concurrently = False  # one request at a time per socket unless a test asks otherwise
        tmp = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        cert, key = self_signed(self.name, ["127.0.0.1", "localhost"])
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
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def drop_connections(self) -> None:
        for ws in list(self.sockets):
            await ws.close()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if self.refuse or request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="401 Unauthorized.")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            async with asyncio.TaskGroup() as answers:
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        continue
                    if self.answer_concurrently:  # as exccd and exccwallet do: a goroutine per request
                        answers.create_task(self._reply(ws, json.loads(msg.data)))
                    else:
                        await self._reply(ws, json.loads(msg.data))
        finally:
            self.sockets.discard(ws)
            self.closed(ws)
        return ws

    async def _reply(self, ws, req: dict) -> None:
        try:
            await ws.send_str(json.dumps(await self._answer(ws, req)))
        except ConnectionResetError:
            pass  # the client went away meanwhile

    def closed(self, ws) -> None:
        pass

    async def _answer(self, ws, req: dict) -> dict:
        method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        self.calls.append(method)
        while self.paused:
            await asyncio.sleep(0.01)
        try:
            return {"jsonrpc": "1.0", "result": await self.dispatch(ws, method, params), "error": None, "id": rid}
        except RPCFail as e:
            return {"jsonrpc": "1.0", "result": None, "error": {"code": e.code, "message": e.message}, "id": rid}
        except Exception as e:  # a bug in a test's set-up must not kill the socket
            return {"jsonrpc": "1.0", "result": None, "error": {"code": -32603, "message": repr(e)}, "id": rid}

    async def dispatch(self, ws, method: str, params: list):
        raise RPCFail(-32601, f"Method not found: {method}")


def version_entry(major: int, minor: int, patch: int, build: str = "") -> dict:
    return {"versionstring": f"{major}.{minor}.{patch}" + (f"+{build}" if build else ""), "major": major,
            "minor": minor, "patch": patch, "prerelease": "", "buildmetadata": build}
