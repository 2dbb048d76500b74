"""Base58 (Bitcoin alphabet) and base58check with double-SHA-256 checksums.

Decoding is quadratic in the length of the text (one big-integer multiply
per character), so every decode states the most bytes it expects and text
longer than those bytes could ever encode to is refused before any
arithmetic: a 200,000-character "key" costs a length check, not seconds.
"""

import math

from .errors import ChainError
from .hashes import double_sha256

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
MAX_DECODED = 128  # bytes; the longest thing vspd decodes is an extended key (82)


def max_encoded_len(n_bytes: int) -> int:
    """The longest base58 text that `n_bytes` bytes encode to (a leading zero byte is one '1')."""
    return math.ceil(n_bytes * math.log(256) / math.log(58))


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str, max_bytes: int = MAX_DECODED) -> bytes:
    if not isinstance(text, str):
        raise ChainError("base58: expected a string")
    if len(text) > max_encoded_len(max_bytes):
        raise ChainError(f"base58: {len(text)} characters is longer than {max_bytes} bytes encode to")
    n = 0
    for c in text:
        digit = _INDEX.get(c)
        if digit is None:
            raise ChainError(f"base58: invalid character {c!r}")
        n = n * 58 + digit
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + body


def checksum(payload: bytes) -> bytes:
    return double_sha256(payload)[:4]


def check_encode(payload: bytes) -> str:
    """Encode payload (version bytes included) with a 4-byte checksum."""
    return b58encode(payload + checksum(payload))


def check_decode(text: str, version_len: int = 2, max_bytes: int = MAX_DECODED) -> tuple[bytes, bytes]:
    """Decode base58check (at most `max_bytes` with the checksum) into (version bytes, payload)."""
    raw = b58decode(text, max_bytes)
    if len(raw) < version_len + 4:
        raise ChainError("invalid format: version and/or checksum bytes missing")
    body, check = raw[:-4], raw[-4:]
    if checksum(body) != check:
        raise ChainError("checksum error")
    return body[:version_len], body[version_len:]
