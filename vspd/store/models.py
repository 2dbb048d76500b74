"""The stored things, as plain dataclasses (one row each)."""

import json
from dataclasses import dataclass, field

FEE_NONE, FEE_RECEIVED, FEE_BROADCAST, FEE_CONFIRMED, FEE_ERROR = (
    "none", "received", "broadcast", "confirmed", "error")
OUTCOME_NONE, VOTED, REVOKED, EXPIRED, MISSED = "", "voted", "revoked", "expired", "missed"


@dataclass
class Ticket:
    hash: str
    commitment_address: str
    fee_xpub_id: int
    fee_address_index: int
    fee_address: str
    fee_amount: int
    fee_expiration: int
    purchase_height: int = 0
    confirmed: bool = False
    voting_wif: str = ""  # plaintext in memory only; sealed in the database
    vote_choices: dict = field(default_factory=dict)
    tspend_policy: dict = field(default_factory=dict)
    treasury_policy: dict = field(default_factory=dict)
    fee_tx_hex: str = ""
    fee_tx_hash: str = ""
    fee_tx_status: str = FEE_NONE
    outcome: str = OUTCOME_NONE
    fee_waived: bool = False
    created: int = 0
    updated: int = 0

    def __repr__(self) -> str:  # keep the voting key out of logs and tracebacks
        return (f"Ticket({self.hash}, fee={self.fee_tx_status}, confirmed={self.confirmed}, "
                f"outcome={self.outcome or '-'})")

    def fee_expired(self, now: int) -> bool:
        return now > self.fee_expiration


@dataclass
class FeeXPub:
    id: int
    xpub: str
    last_index: int
    retired: int


@dataclass
class VoteChange:
    seq: int
    request: str
    request_sig: str
    response: str
    response_sig: str
    created: int


@dataclass
class AltSignAddr:
    ticket_hash: str
    address: str
    request: str
    request_sig: str
    response: str
    response_sig: str
    created: int


def dumps_map(m: dict) -> str:
    """Maps are stored as Go would marshal them: compact, sorted keys."""
    return json.dumps(m or {}, separators=(",", ":"), sort_keys=True)


def loads_map(text: str) -> dict:
    value = json.loads(text) if text else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("stored value is not a JSON object")
    return value
