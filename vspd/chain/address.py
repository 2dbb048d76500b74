"""P2PKH and P2SH addresses: 2-byte network prefix, Hash160, base58check."""

from dataclasses import dataclass

from . import base58
from .errors import ChainError
from .hashes import hash160
from .params import NETWORKS, NetParams

P2PKH = "p2pkh"
P2SH = "p2sh"

OP_DUP, OP_HASH160, OP_EQUAL, OP_EQUALVERIFY, OP_CHECKSIG = 0x76, 0xA9, 0x87, 0x88, 0xAC
ADDRESS_BYTES = 26  # 2-byte prefix, 20-byte hash, 4-byte checksum
MAX_ADDRESS_CHARS = base58.max_encoded_len(ADDRESS_BYTES)


@dataclass(frozen=True)
class Address:
    net: NetParams
    kind: str
    hash: bytes

    def __post_init__(self):
        if self.kind not in (P2PKH, P2SH) or len(self.hash) != 20:
            raise ChainError("address needs a 20-byte hash and kind p2pkh or p2sh")

    @classmethod
    def from_pubkey(cls, pubkey: bytes, net: NetParams) -> "Address":
        return cls(net, P2PKH, hash160(pubkey))

    def encode(self) -> str:
        prefix = self.net.pkh_prefix if self.kind == P2PKH else self.net.sh_prefix
        return base58.check_encode(prefix + self.hash)

    __str__ = encode

    def script(self) -> bytes:
        """The version-0 payment script to this address."""
        if self.kind == P2PKH:
            return bytes([OP_DUP, OP_HASH160, 20]) + self.hash + bytes([OP_EQUALVERIFY, OP_CHECKSIG])
        return bytes([OP_HASH160, 20]) + self.hash + bytes([OP_EQUAL])


def decode(text: str, net: NetParams) -> Address:
    """Decode an address and insist that it belongs to `net`."""
    if not isinstance(text, str):
        raise ChainError("address must be a string")
    if len(text) > MAX_ADDRESS_CHARS:  # before the text is decoded, or quoted in a message
        raise ChainError(f"failed to decode address: {len(text)} characters "
                         f"(an address has at most {MAX_ADDRESS_CHARS})")
    try:
        prefix, payload = base58.check_decode(text, 2, ADDRESS_BYTES)
    except ChainError as e:
        raise ChainError(f'failed to decode address "{text}": {e}') from None
    if len(payload) != 20:
        raise ChainError(f'failed to decode address "{text}": wrong payload length {len(payload)}')
    if prefix == net.pkh_prefix:
        return Address(net, P2PKH, payload)
    if prefix == net.sh_prefix:
        return Address(net, P2SH, payload)
    for other in NETWORKS.values():
        if prefix in (other.pkh_prefix, other.sh_prefix):
            raise ChainError(
                f'failed to decode address "{text}": address is for {other.name}, not {net.name}')
    raise ChainError(f'failed to decode address "{text}": unknown address prefix {prefix.hex()}')


def script_address(script: bytes, net: NetParams) -> Address | None:
    """The address a standard P2PKH or P2SH script pays, or None."""
    if (len(script) == 25 and script[:3] == bytes([OP_DUP, OP_HASH160, 20])
            and script[23:] == bytes([OP_EQUALVERIFY, OP_CHECKSIG])):
        return Address(net, P2PKH, script[3:23])
    if len(script) == 23 and script[:2] == bytes([OP_HASH160, 20]) and script[22] == OP_EQUAL:
        return Address(net, P2SH, script[2:22])
    return None
