"""Compact secp256k1 message signatures with EXCC's magic and single SHA-256."""

import base64
import binascii

import coincurve

from .address import P2PKH, Address, decode
from .errors import ChainError
from .hashes import sha256
from .params import NetParams

MAGIC = b"ExchangeCoin Signed Message:\n"


def varint(n: int) -> bytes:
    """Bitcoin CompactSize encoding of n."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def message_digest(message: bytes) -> bytes:
    preimage = varint(len(MAGIC)) + MAGIC + varint(len(message)) + message
    return sha256(preimage)


def sign_message(privkey: bytes, message: bytes, compressed: bool = True) -> bytes:
    """65-byte compact signature, as exccwallet's signmessage makes it."""
    sig = coincurve.PrivateKey(privkey).sign_recoverable(message_digest(message), hasher=None)
    recid = sig[64]
    return bytes([27 + recid + (4 if compressed else 0)]) + sig[:64]


def recover_address(signature: bytes, message: bytes, net: NetParams) -> Address:
    """The P2PKH address whose key made `signature` over `message`."""
    if len(signature) != 65:
        raise ChainError(f"signature must be 65 bytes, got {len(signature)}")
    header = signature[0]
    if not 27 <= header <= 34:
        raise ChainError(f"invalid signature header byte {header}")
    compressed = header >= 31
    recid = (header - 27) & 3
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            signature[1:] + bytes([recid]), message_digest(message), hasher=None)
    except (ValueError, TypeError) as e:
        raise ChainError(f"cannot recover public key: {e}") from None
    return Address.from_pubkey(pub.format(compressed=compressed), net)


def verify_message(address: str, signature_b64: str, message: bytes, net: NetParams) -> bool:
    """True when the base64 signature over message recovers to `address`.

    Any malformed input (address of another network, bad base64, bad
    signature) is simply "not verified", as exccd's verifymessage treats it.
    """
    try:
        expected = decode(address, net)
        if expected.kind != P2PKH:
            return False
        sig = base64.b64decode(signature_b64, validate=True)
        return recover_address(sig, message, net) == expected
    except (ChainError, binascii.Error, ValueError):
        return False
