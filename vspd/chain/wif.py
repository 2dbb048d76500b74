"""Wallet import format of EXCC: 1-byte network id, Bitcoin-style (spec §3.4.4)."""

from dataclasses import dataclass

import coincurve

from . import base58
from .errors import ChainError
from .params import NetParams

# Suffix byte after the 32-byte key, one per key type.
SECP256K1, ED25519, SCHNORR = 0, 1, 2
_SUFFIX_TO_TYPE = {0x01: SECP256K1, 0x02: ED25519, 0x03: SCHNORR}
_TYPE_TO_SUFFIX = {v: k for k, v in _SUFFIX_TO_TYPE.items()}
WIF_BYTES = 38  # network id, 32-byte key, key-type suffix, 4-byte checksum


@dataclass(frozen=True)
class WIF:
    net_id: int
    privkey: bytes
    compressed: bool
    key_type: int = SECP256K1

    def __repr__(self) -> str:  # never show the key
        return f"WIF(net_id={self.net_id:#x}, key_type={self.key_type}, compressed={self.compressed})"

    def encode(self) -> str:
        payload = bytes([self.net_id]) + self.privkey
        if self.compressed:
            payload += bytes([_TYPE_TO_SUFFIX[self.key_type]])
        return base58.check_encode(payload)

    def pubkey(self) -> bytes:
        """Compressed secp256k1 public key (vspd uses it whatever the flag)."""
        if self.key_type != SECP256K1:
            raise ChainError("not a secp256k1 ECDSA key")
        try:
            return coincurve.PrivateKey(self.privkey).public_key.format(compressed=True)
        except ValueError as e:
            raise ChainError(f"invalid private key: {e}") from None


def decode(text: str, net: NetParams | None = None) -> WIF:
    """Decode a WIF; with `net`, also insist on that network's id."""
    if not isinstance(text, str):
        raise ChainError("WIF must be a string")
    raw = base58.b58decode(text, WIF_BYTES)
    if len(raw) not in (37, 38):
        raise ChainError(f"malformed private key: length {len(raw)}")
    body, check = raw[:-4], raw[-4:]
    if base58.checksum(body) != check:
        raise ChainError("checksum mismatch")
    net_id, key = body[0], body[1:33]
    compressed, key_type = False, SECP256K1
    if len(body) == 34:
        suffix = body[33]
        if suffix not in _SUFFIX_TO_TYPE:
            raise ChainError(f"unknown key type suffix {suffix:#x}")
        compressed, key_type = True, _SUFFIX_TO_TYPE[suffix]
    if net is not None and net_id != net.wif_id:
        raise ChainError(f"private key is not for {net.name} (network id {net_id:#x})")
    if key_type == SECP256K1 and not (0 < int.from_bytes(key, "big") < coincurve.utils.GROUP_ORDER_INT):
        raise ChainError("private key out of range")
    return WIF(net_id, key, compressed, key_type)
