"""The voter's handed-over tickets, sealed at rest: one small file per ticket.

A voter holds no database, yet after a HandOver it must outlive its own
restarts and the frontend's absence until the ticket is in its wallet. A
file per ticket (written to a temporary name, fsynced, renamed) is enough:
there are only as many as tickets paid in the last few blocks, and a
crash leaves either the old file or the new one. The voting key and the
rest of the request are sealed (vspd/base/sealing.py) with the voter's own
key file, so the folder alone cannot vote; only the ticket hash, the fee
txid and the state are in clear, for the operator and the frontend.
"""

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vspd.base.sealing import Sealer, SealError, create_key_file, read_key_file
from vspd.chain.rules import is_hash

log = logging.getLogger("voter.pending")
PENDING = "pending"  # waiting for the ticket's confirmations
FEE_BROADCAST = "fee_broadcast"  # fee sent (or seen) and waiting for its confirmations
IMPORTED = "imported"  # in the wallet: nothing kept
KEY_FILE = "voter.key"
FOLDER = "pending"
SEALED = ("ticket_hex", "voting_wif", "vote_choices", "fee_tx_hex", "fee_address", "fee_amount")


@dataclass
class PendingTicket:
    ticket_hash: str
    ticket_hex: str
    voting_wif: str
    vote_choices: dict
    fee_tx_hex: str
    fee_tx_hash: str
    fee_address: str
    fee_amount: int
    handed_height: int  # the voter's tip when it took the ticket: bounds how long it is kept
    state: str = PENDING
    error: str = ""

    def __repr__(self) -> str:  # never the key in a log line
        return f"PendingTicket({self.ticket_hash}, fee {self.fee_tx_hash}, {self.state})"


def open_sealer(datadir: Path) -> Sealer:
    """The voter's sealing key, created (mode 0600) at its first start."""
    path = datadir / KEY_FILE
    if not path.exists():
        create_key_file(path)
        log.info("created the voter's sealing key %s (keep it with the voter; never copy it elsewhere)", path)
    return Sealer(read_key_file(path))


class PendingStore:
    def __init__(self, datadir: Path, sealer: Sealer):
        self.folder = datadir / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sealer = sealer
        self.tickets: dict[str, PendingTicket] = {}

    def load(self) -> None:
        """Read every kept ticket; a file that does not open is set aside, not fatal."""
        for path in sorted(self.folder.glob("*.json")):
            try:
                p = self._decode(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError, SealError) as e:
                log.error("pending ticket file %s cannot be read (%s): moved to %s.bad", path, e, path.name)
                path.rename(path.with_suffix(".bad"))
                continue
            self.tickets[p.ticket_hash] = p
        for leftover in self.folder.glob("*.tmp"):
            leftover.unlink()
        if self.tickets:
            log.info("%d handed-over tickets to carry", len(self.tickets))

    def _decode(self, d: dict) -> PendingTicket:
        h = d["ticket_hash"]
        if not is_hash(h):
            raise ValueError("bad ticket hash")
        secret = json.loads(self.sealer.open(d["sealed"], f"pending:{h}"))
        return PendingTicket(ticket_hash=h, fee_tx_hash=d["fee_tx_hash"], state=d["state"], error=d.get("error", ""),
                             handed_height=int(d["handed_height"]), **secret)

    def _path(self, ticket_hash: str) -> Path:
        return self.folder / f"{ticket_hash}.json"

    def put(self, p: PendingTicket) -> None:
        """Durable before it returns: the HandOver answer promises the ticket is kept."""
        d = asdict(p)
        secret = {k: d.pop(k) for k in SEALED}
        d["sealed"] = self.sealer.seal(json.dumps(secret).encode(), f"pending:{p.ticket_hash}")
        path = self._path(p.ticket_hash)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(d, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.tickets[p.ticket_hash] = p

    def drop(self, ticket_hash: str) -> None:
        if self.tickets.pop(ticket_hash, None) is not None:
            self._path(ticket_hash).unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self.tickets)
