"""JSON-RPC over HTTPS to a simnet exccd or exccwallet, for the harness's own calls.

The VSP itself talks to its peers over websockets (rpcclient/); the
harness only needs plain requests with a bounded wait, such as `generate`.
"""

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from rpcclient.errors import NodeUnavailable, RPCError


class JSONRPC:
    def __init__(self, name: str, host: str, port: int, user: str, password: str, cafile: Path,
                 timeout: float = 60.0):
        self.name = name
        self.url = f"https://{host}:{port}/"
        self.user, self.password = user, password
        self.cafile = cafile
        self.timeout = timeout
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._ssl: ssl.SSLContext | None = None
        self._http: aiohttp.ClientSession | None = None
        self._id = 0

    def _session(self) -> aiohttp.ClientSession:
        if self._ssl is None:  # the certificate exists only once the peer has started
            self._ssl = ssl.create_default_context(cafile=str(self.cafile))
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl, force_close=True))
        return self._http

    def forget_certificate(self) -> None:
        self._ssl = None

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "1.0", "id": self._id, "method": method, "params": list(params)})
        try:
            async with self._session().post(
                    self.url, data=body, headers={"Authorization": self._auth, "Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=timeout or self.timeout)) as r:
                text = await r.text()
                if r.status == 401:
                    raise NodeUnavailable(f"{self.name}: 401 Unauthorized")
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as e:
            raise NodeUnavailable(f"{self.name}: {method}: {type(e).__name__}: {e}") from None
        try:
            reply = json.loads(text)
        except ValueError:
            raise NodeUnavailable(f"{self.name}: {method}: not JSON (HTTP {r.status}): {text[:200]!r}") from None
        if reply.get("error"):
            err = reply["error"]
            raise RPCError(int(err.get("code", 0)), str(err.get("message", "")))
        return reply.get("result")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
