"""The ticket and fee rules, written once for every place that applies them.

The frontend's pipeline and API, the voter's service and carrier, the site's
pages and vspadmin all judge tickets and fees by these; pure, like the rest
of vspd.chain (the fee's broadcast, which is I/O, is rpcclient/exccd.py
send_fee).
"""

import re

from .address import Address
from .params import NetParams
from .tx import Tx, paid_to, voting_script
from .wif import WIF

# Confirmations a ticket needs before its fee is broadcast, and its fee before the ticket goes to the voting
# wallets (and before the frontend confirms a ticket at all).
REQUIRED_CONFS = 6

_HASH = re.compile(r"[0-9a-f]{64}")  # as exccd writes a transaction or block hash
_HASH_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")  # as a person may type or paste one


def is_hash(text: str, any_case: bool = False) -> bool:
    """Whether `text` is exactly a ticket (transaction or block) hash: 64 hex characters, nothing around them.

    Lower case only, as exccd writes them, unless `any_case` (what a person
    types; the caller lowers it after).
    """
    return (_HASH_ANY_CASE if any_case else _HASH).fullmatch(text) is not None


def pays_fee(fee_tx: Tx, fee_address: Address, fee_amount: int) -> bool:
    """The fee rule: the fee transaction pays the fee address at least the fee (atoms)."""
    return paid_to(fee_tx, fee_address) >= fee_amount


def key_votes_ticket(key: WIF, ticket: Tx, net: NetParams) -> bool:
    """The voting key rule: the key's address is the ticket's voting address (its version-0 OP_SSTX output 0).

    Raises ChainError for a key that has no secp256k1 public key (WIF.pubkey).
    """
    out0 = ticket.outputs[0] if ticket.outputs else None
    return out0 is not None and out0.version == 0 and \
        out0.script == voting_script(Address.from_pubkey(key.pubkey(), net))
