"""Builders of ticket and fee transactions for tests, shaped as exccwallet makes them."""

import os

import coincurve

from vspd.chain import tx, wif
from vspd.chain.address import P2PKH, P2SH, Address
from vspd.chain.params import NetParams


class Key:
    """A secp256k1 key with its P2PKH address and WIF on one network."""

    def __init__(self, net: NetParams, secret: bytes | None = None):
        self.net = net
        self.secret = secret or os.urandom(32)
        self.pubkey = coincurve.PrivateKey(self.secret).public_key.format()
        self.address = Address.from_pubkey(self.pubkey, net)

    @property
    def wif(self) -> str:
        return wif.WIF(self.net.wif_id, self.secret, True).encode()


def commitment_script(addr: Address, amount: int) -> bytes:
    amt = amount | (1 << 63 if addr.kind == P2SH else 0)
    return bytes([tx.OP_RETURN, 30]) + addr.hash + amt.to_bytes(8, "little") + b"\x00\x58"


def make_parent(value: int = 10_000_000_000) -> tx.Tx:
    """A plain transaction whose output 0 funds a ticket."""
    pay = bytes([0x76, 0xA9, 20]) + os.urandom(20) + bytes([0x88, 0xAC])
    return tx.Tx(inputs=[tx.TxIn(os.urandom(32), 0, 0, sig_script=b"\x00" * 10)],
                 outputs=[tx.TxOut(value, pay)])


def make_ticket(voting: Key, commitment: Key, parent: tx.Tx | None = None, price: int = 20_000_000,
                p2sh_commitment: bool = False) -> tx.Tx:
    """A solo ticket: OP_SSTX to the voting key, commitment, zero change."""
    parent = parent or make_parent()
    commit_addr = commitment.address if not p2sh_commitment else Address(commitment.net, P2SH, commitment.address.hash)
    change = Address(voting.net, P2PKH, b"\x00" * 20)
    return tx.Tx(
        inputs=[tx.TxIn(bytes.fromhex(parent.txid())[::-1], 0, 0, value_in=price + 5000,
                        sig_script=b"\x47" + os.urandom(71))],
        outputs=[tx.TxOut(price, bytes([tx.OP_SSTX]) + voting.address.script()),
                 tx.TxOut(0, commitment_script(commit_addr, price + 5000)),
                 tx.TxOut(0, bytes([tx.OP_SSTXCHANGE]) + change.script())],
        expiry=0)


def make_fee_tx(fee_address: Address, amount: int, extra_outputs: int = 1) -> tx.Tx:
    outs = [tx.TxOut(amount, fee_address.script())]
    for _ in range(extra_outputs):
        outs.append(tx.TxOut(1_000_000, Address(fee_address.net, P2PKH, os.urandom(20)).script()))
    return tx.Tx(inputs=[tx.TxIn(os.urandom(32), 1, 0, value_in=amount + 2_000_000, sig_script=b"\x01" * 30)],
                 outputs=outs)
