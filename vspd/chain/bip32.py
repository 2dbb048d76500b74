"""BIP32 extended public keys with EXCC versions; non-hardened derivation only.

The VSP only ever holds the operator's fee-account xpub and derives fee
addresses xpub/0/i from it, so private derivation is deliberately absent.
"""

import hashlib
import hmac
from dataclasses import dataclass

import coincurve

from . import base58
from .address import Address
from .errors import ChainError
from .hashes import hash160
from .params import NETWORKS, NetParams

HARDENED = 0x80000000
XPUB_BYTES = 82  # 78-byte serialization and a 4-byte checksum


@dataclass(frozen=True)
class ExtendedPublicKey:
    net: NetParams
    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes
    pubkey: bytes  # 33-byte compressed point

    def encode(self) -> str:
        payload = (self.net.hd_public + bytes([self.depth]) + self.parent_fingerprint
                   + self.child_number.to_bytes(4, "big") + self.chain_code + self.pubkey)
        return base58.check_encode(payload)

    __str__ = encode

    def fingerprint(self) -> bytes:
        return hash160(self.pubkey)[:4]

    def child(self, index: int) -> "ExtendedPublicKey":
        """Public child derivation (CKDpub); ChainError for an invalid child."""
        if not 0 <= index < HARDENED:
            raise ChainError("cannot derive a hardened child from a public key")
        if self.depth == 255:
            raise ChainError("cannot derive beyond depth 255")
        mac = hmac.new(self.chain_code, self.pubkey + index.to_bytes(4, "big"), hashlib.sha512).digest()
        il, ir = mac[:32], mac[32:]
        if int.from_bytes(il, "big") >= coincurve.utils.GROUP_ORDER_INT:
            raise ChainError(f"invalid child {index}")
        try:
            point = coincurve.PublicKey(self.pubkey).add(il)
        except ValueError:
            raise ChainError(f"invalid child {index}") from None
        return ExtendedPublicKey(self.net, self.depth + 1, self.fingerprint(), index, ir,
                                 point.format(compressed=True))

    def address(self) -> Address:
        return Address.from_pubkey(self.pubkey, self.net)


def decode_xpub(text: str, net: NetParams) -> ExtendedPublicKey:
    """Parse a serialized extended public key for `net`; reject private keys."""
    if not isinstance(text, str):
        raise ChainError("extended key must be a string")
    raw = base58.b58decode(text, XPUB_BYTES)
    if len(raw) != XPUB_BYTES:
        raise ChainError(f"extended key has wrong length {len(raw)} (want {XPUB_BYTES} bytes)")
    body, check = raw[:78], raw[78:]
    if base58.checksum(body) != check:
        raise ChainError("extended key checksum mismatch")
    version = body[:4]
    if version == net.hd_private:
        raise ChainError("extended key is private; give the public key (xpub)")
    if version != net.hd_public:
        for other in NETWORKS.values():
            if version in (other.hd_public, other.hd_private):
                raise ChainError(f"extended key is for {other.name}, not {net.name}")
        raise ChainError(f"unknown extended key version {version.hex()}")
    key = body[45:78]
    if key[0] not in (2, 3):
        raise ChainError("extended key does not hold a compressed public key")
    try:
        coincurve.PublicKey(key)
    except ValueError:
        raise ChainError("extended key holds an invalid public key") from None
    return ExtendedPublicKey(net, body[4], body[5:9], int.from_bytes(body[9:13], "big"),
                             body[13:45], key)


def fee_address(xpub: ExtendedPublicKey, index: int) -> Address:
    """Fee address number `index`: xpub/0/index (ChainError if invalid child)."""
    return xpub.child(0).child(index).address()
