"""A VSP client that builds and signs requests the way exccwallet does (used by the soak and the tests).

exccwallet (internal/vsp) marshals the request struct with Go's
json.Marshal, signs the bytes with the commitment address key
("ExchangeCoin Signed Message:\n", single SHA-256), and on every 200 or 4xx
reply checks the ed25519 VSP-Server-Signature and the echoed request.
"""

import base64
import json
import time
from dataclasses import dataclass

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vspd.chain.message import sign_message
from web.api.wire import go_json


class BadServerSignature(AssertionError):
    pass


@dataclass
class Reply:
    status: int
    body: bytes
    json: dict
    signature: str

    @property
    def code(self):
        return self.json.get("code")


class VSPClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, pubkey: bytes | None = None):
        self.http = session
        self.base = base_url.rstrip("/")
        self.pubkey = pubkey

    async def vspinfo(self) -> Reply:
        async with self.http.get(self.base + "/api/v3/vspinfo") as r:
            body = await r.read()
        info = json.loads(body)
        if self.pubkey is None:
            self.pubkey = base64.b64decode(info["pubkey"])
        return self._check(r.status, body, r.headers.get("VSP-Server-Signature", ""), None)

    def _check(self, status: int, body: bytes, sig: str, request: bytes | None) -> Reply:
        if status == 200 or 400 <= status < 500:
            try:
                Ed25519PublicKey.from_public_bytes(self.pubkey).verify(base64.b64decode(sig), body)
            except Exception as e:
                raise BadServerSignature(f"status {status}: invalid server signature: {e!r} body={body!r}")
        data = json.loads(body) if body else {}
        if status == 200 and request is not None:
            assert base64.b64decode(data["request"]) == request, "request echo differs"
        return Reply(status, body, data, sig)

    async def post(self, path: str, body: bytes, signing_key: bytes | None, sig_override: str | None = None,
                   headers: dict | None = None) -> Reply:
        h = {"Content-Type": "application/json"}
        if sig_override is not None:
            h["VSP-Client-Signature"] = sig_override
        elif signing_key is not None:
            h["VSP-Client-Signature"] = base64.b64encode(sign_message(signing_key, body)).decode()
        h.update(headers or {})
        async with self.http.post(self.base + path, data=body, headers=h) as r:
            rbody = await r.read()
        return self._check(r.status, rbody, r.headers.get("VSP-Server-Signature", ""), body)

    # -- the wallet's requests, field order as in its Go structs -------------
    async def feeaddress(self, key: bytes, ticket_hash: str, ticket_hex: str, parent_hex: str, **kw) -> Reply:
        body = go_json({"timestamp": now(), "tickethash": ticket_hash, "tickethex": ticket_hex,
                        "parenthex": parent_hex})
        return await self.post("/api/v3/feeaddress", body, key, **kw)

    async def payfee(self, key: bytes, ticket_hash: str, fee_hex: str, voting_wif: str,
                     votechoices=None, tspend=None, treasury=None, **kw) -> Reply:
        body = go_json({"timestamp": now(), "tickethash": ticket_hash, "feetx": fee_hex,
                        "votingkey": voting_wif, "votechoices": votechoices or {},
                        "tspendpolicy": tspend or {}, "treasurypolicy": treasury or {}})
        return await self.post("/api/v3/payfee", body, key, **kw)

    async def ticketstatus(self, key: bytes, ticket_hash: str, **kw) -> Reply:
        return await self.post("/api/v3/ticketstatus", go_json({"tickethash": ticket_hash}), key, **kw)

    async def setvotechoices(self, key: bytes, ticket_hash: str, votechoices, timestamp=None,
                             tspend=None, treasury=None, **kw) -> Reply:
        body = go_json({"timestamp": timestamp or now(), "tickethash": ticket_hash,
                        "votechoices": votechoices, "tspendpolicy": tspend or {},
                        "treasurypolicy": treasury or {}})
        return await self.post("/api/v3/setvotechoices", body, key, **kw)

    async def setaltsignaddr(self, key: bytes, ticket_hash: str, ticket_hex: str, parent_hex: str,
                             alt: str, **kw) -> Reply:
        body = go_json({"timestamp": now(), "tickethash": ticket_hash, "tickethex": ticket_hex,
                        "parenthex": parent_hex, "altsignaddress": alt})
        return await self.post("/api/v3/setaltsignaddr", body, key, **kw)


def now() -> int:
    return int(time.time())
