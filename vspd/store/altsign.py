"""Alternate sign addresses: the address a ticket's owner set to sign its requests.

Its own module, as decred/vspd's database/altsignaddr.go: one row per
ticket, written once (setaltsignaddr), read by every authenticated request
(tickets.py reads it joined to the ticket).
"""

import sqlite3

from .common import StoreError, _now
from .models import AltSignAddr


class AltSignPart:
    """The alt_sign_addrs table."""

    async def insert_alt_sign(self, rec: AltSignAddr) -> None:
        async with self.transaction() as db:
            try:
                await self._exec(db, "INSERT INTO alt_sign_addrs VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (rec.ticket_hash, rec.address, rec.request, rec.request_sig,
                                  rec.response, rec.response_sig, rec.created or _now()))
            except sqlite3.IntegrityError as e:
                raise StoreError(f"cannot store alternate sign address: {e}") from None

    async def get_alt_sign(self, ticket_hash: str) -> AltSignAddr | None:
        row = await self._read_row("SELECT * FROM alt_sign_addrs WHERE ticket_hash = ?", ticket_hash)
        return AltSignAddr(*row) if row else None
