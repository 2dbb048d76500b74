"""The wire contract of vspd API v3: error codes, JSON as Go writes it, signing.

Every JSON response is serialised once, signed (ed25519 over the exact
bytes) and sent as those bytes: the EXCC wallet checks the signature on 200
and 4xx alike and compares the echoed request byte for byte.
"""

import base64
import enum
import json
import secrets
import struct
from typing import Any, NamedTuple

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_HEADER = "VSP-Server-Signature"
RECENT_SIGNATURES, RECENT_BODY = 1024, 2048  # at most ~2 MiB of remembered answers
CLIENT_SIGNATURE_HEADER = "VSP-Client-Signature"


class ErrorCode(enum.IntEnum):
    BAD_REQUEST = 0
    INTERNAL_ERROR = 1
    VSP_CLOSED = 2
    FEE_ALREADY_RECEIVED = 3
    INVALID_FEE_TX = 4
    FEE_TOO_SMALL = 5
    UNKNOWN_TICKET = 6
    TICKET_CANNOT_VOTE = 7
    FEE_EXPIRED = 8
    INVALID_VOTE_CHOICES = 9
    BAD_SIGNATURE = 10
    INVALID_PRIV_KEY = 11
    FEE_NOT_RECEIVED = 12
    INVALID_TICKET = 13
    CANNOT_BROADCAST_TICKET = 14
    CANNOT_BROADCAST_FEE = 15
    CANNOT_BROADCAST_FEE_UNKNOWN_OUTPUTS = 16
    INVALID_TIMESTAMP = 17


DEFAULT_MESSAGES = {
    ErrorCode.BAD_REQUEST: "bad request",
    ErrorCode.INTERNAL_ERROR: "internal error",
    ErrorCode.VSP_CLOSED: "vsp is closed",
    ErrorCode.FEE_ALREADY_RECEIVED: "fee tx already received for ticket",
    ErrorCode.INVALID_FEE_TX: "invalid fee tx",
    ErrorCode.FEE_TOO_SMALL: "fee too small",
    ErrorCode.UNKNOWN_TICKET: "unknown ticket",
    ErrorCode.TICKET_CANNOT_VOTE: "ticket not eligible to vote",
    ErrorCode.FEE_EXPIRED: "fee has expired",
    ErrorCode.INVALID_VOTE_CHOICES: "invalid vote choices",
    ErrorCode.BAD_SIGNATURE: "bad request signature",
    ErrorCode.INVALID_PRIV_KEY: "invalid private key",
    ErrorCode.FEE_NOT_RECEIVED: "no fee tx received for ticket",
    ErrorCode.INVALID_TICKET: "not a valid ticket tx",
    ErrorCode.CANNOT_BROADCAST_TICKET: "ticket transaction could not be broadcast",
    ErrorCode.CANNOT_BROADCAST_FEE: "fee transaction could not be broadcast",
    ErrorCode.CANNOT_BROADCAST_FEE_UNKNOWN_OUTPUTS:
        "fee transaction could not be broadcast due to unknown outputs",
    ErrorCode.INVALID_TIMESTAMP: "old or reused timestamp",
}


def http_status(code: int) -> int:
    if code in (ErrorCode.INTERNAL_ERROR, ErrorCode.CANNOT_BROADCAST_TICKET, ErrorCode.CANNOT_BROADCAST_FEE):
        return 500
    if code == ErrorCode.CANNOT_BROADCAST_FEE_UNKNOWN_OUTPUTS:
        return 428
    if code in DEFAULT_MESSAGES.keys():
        return 400
    return 500


class APIError(Exception):
    """Raised by handlers; becomes a signed {"code","message"} response."""

    def __init__(self, code: ErrorCode, message: str | None = None):
        self.code = ErrorCode(code)
        self.message = message or DEFAULT_MESSAGES[self.code]
        super().__init__(self.message)


_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})
_GO_ESCAPED = "<>&\u2028\u2029"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class RawNumber(str):
    """A number already formatted the way Go prints it (see go_float)."""


_NESTED = (RawNumber, dict, list)  # what go_json's swap looks inside


def go_float(value: float, bits: int = 64) -> RawNumber:
    """Go's shortest round-trip formatting of a float64 (or float32)."""
    if bits == 32:
        packed = struct.pack("<f", value)
        text = next(t for t in (f"{value:.{p}g}" for p in range(1, 10))
                    if struct.pack("<f", float(t)) == packed)
    else:
        text = repr(float(value))
    if "e" in text:
        mant, exp = text.split("e")
        e = int(exp)
        if -7 < e < 21:
            text = f"{float(text):f}".rstrip("0").rstrip(".")
        else:
            text = f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if text.endswith(".0"):
        text = text[:-2]
    return RawNumber(text)


def go_json(obj: Any) -> bytes:
    """Compact JSON with Go's HTML escaping; field order is the dict's order."""
    raws: dict[str, str] = {}
    tag = ""  # drawn at the first RawNumber: most answers have none, and a draw is a system call

    def swap(o: Any) -> Any:
        """`o` with each RawNumber replaced by a placeholder; `o` itself if it holds none."""
        nonlocal tag
        if isinstance(o, RawNumber):
            tag = tag or secrets.token_hex(8)
            key = f"@{tag}{len(raws)}@"
            raws[key] = str(o)
            return key
        if isinstance(o, dict):
            for v in o.values():
                if isinstance(v, _NESTED):
                    return {k: swap(v) for k, v in o.items()}
            return o
        if isinstance(o, list):
            return [swap(v) for v in o]
        return o

    text = _ENCODER.encode(swap(obj))
    for c in _GO_ESCAPED:
        if c in text:
            text = text.translate(_GO_ESCAPES)
            break
    for key, raw in raws.items():
        text = text.replace(f'"{key}"', raw)
    return text.encode("utf-8")


class Signer:
    """The VSP's ed25519 key; only the 32-byte seed is ever stored (sealed)."""

    def __init__(self, seed: bytes):
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.pubkey = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.pubkey_b64 = base64.b64encode(self.pubkey).decode()
        self._default_errors: dict[ErrorCode, tuple[bytes, str]] = {}
        self._recent: dict[bytes, str] = {}

    def __repr__(self) -> str:
        return f"Signer(pubkey={self.pubkey_b64})"

    def sign(self, body: bytes) -> str:
        """The signature of `body`; a small body signed a moment ago is not signed again.

        ed25519 is deterministic, so a remembered signature is exactly what
        signing again would give: the same answer within one second (the
        timestamp's resolution) to a wallet polling its ticket costs one
        signing.
        """
        signature = self._recent.get(body)
        if signature is None:
            signature = base64.b64encode(self._key.sign(body)).decode()
            if len(body) <= RECENT_BODY:
                if len(self._recent) >= RECENT_SIGNATURES:
                    self._recent.clear()
                self._recent[body] = signature
        return signature

    def default_error(self, code: ErrorCode) -> tuple[bytes, str]:
        """Body and signature of `code` with its default message, signed once.

        The body is constant and ed25519 is deterministic, so this is exactly
        what signing it again would give.
        """
        signed = self._default_errors.get(code)
        if signed is None:
            body = go_json({"code": int(code), "message": DEFAULT_MESSAGES[code]})
            signed = self._default_errors[code] = (body, self.sign(body))
        return signed


class APIAnswer(NamedTuple):
    """An API answer as it goes on the wire, whichever server sends it (web/http/fastlane.py or aiohttp)."""
    status: int
    body: bytes
    signature: str


def signed_answer(signer: Signer, obj: Any, status: int = 200) -> APIAnswer:
    body = go_json(obj)
    return APIAnswer(status, body, signer.sign(body))


def error_answer(signer: Signer, err: APIError) -> APIAnswer:
    if err.message != DEFAULT_MESSAGES[err.code]:
        return signed_answer(signer, {"code": int(err.code), "message": err.message}, http_status(err.code))
    return APIAnswer(http_status(err.code), *signer.default_error(err.code))


def response_of(answer: APIAnswer) -> web.Response:
    """aiohttp's response: the signature header first, then Content-Type, as web/http/fastlane.py writes them."""
    return web.Response(body=answer.body, status=answer.status, content_type="application/json",
                        charset="utf-8", headers={SIGNATURE_HEADER: answer.signature})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
