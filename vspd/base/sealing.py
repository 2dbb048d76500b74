"""Encryption at rest for secrets kept in the database (AEAD, ChaCha20-Poly1305).

The key lives in its own file beside the database (mode 0600) and is never
replicated: a replica or a copied database alone cannot vote, sign or log in.
Each sealed value is bound to what it is for (the associated data), so a
ciphertext moved to another row does not open.
"""

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

PREFIX = "v1:"
KEY_BYTES = 32


class SealError(Exception):
    """A sealed value does not open with this key (wrong key file or tampering)."""


class Sealer:
    def __init__(self, key: bytes):
        if len(key) != KEY_BYTES:
            raise SealError("sealing key must be 32 bytes")
        self._aead = ChaCha20Poly1305(key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, plaintext: bytes, purpose: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext, purpose.encode())
        return PREFIX + base64.b64encode(nonce + ct).decode()

    def open(self, sealed: str, purpose: str) -> bytes:
        if not sealed.startswith(PREFIX):
            raise SealError(f"value for {purpose} is not sealed")
        try:
            raw = base64.b64decode(sealed[len(PREFIX):], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
        except (InvalidTag, ValueError):
            raise SealError(f"cannot open the value for {purpose}: wrong key file?") from None


def create_key_file(path: Path) -> bytes:
    """Write a new random key with mode 0600; refuse to overwrite."""
    key = os.urandom(KEY_BYTES)
    install_key_file(path, key)
    return key


def install_key_file(path: Path, key: bytes) -> None:
    """Put a known key in place with mode 0600 (its folder 0700, created if missing); refuse to overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")


def read_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SealError(f"cannot read key file {path}: {e.strerror}") from None
    try:
        key = bytes.fromhex(data.decode("ascii").strip())
    except ValueError:  # UnicodeDecodeError included: bytes that are not text are not hex either
        raise SealError(f"key file {path} is not hex") from None
    if len(key) != KEY_BYTES:
        raise SealError(f"key file {path} does not hold a 32-byte key")
    if path.stat().st_mode & 0o077:
        raise SealError(f"key file {path} is readable by others; chmod 600 it")
    return key
