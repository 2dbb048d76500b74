"""Filling a new, empty database from another VSP's (vspadmin importvspd), in one transaction.

The one write that touches every table at once, so apart from each table's
module; it seals every secret as the other writes do.
"""

from .common import StoreError, _now
from .models import AltSignAddr, Ticket, VoteChange
from .record import _RECORD_FROM_TICKETS
from .tickets import TICKET_COLUMNS


class ImportPart:
    """Importing another VSP's records."""

    async def import_records(self, xpub: str, last_index: int, keys: dict[str, bytes], tickets: list[Ticket],
                             vote_changes: dict[str, list[VoteChange]], alt_signs: list[AltSignAddr],
                             who: str, detail: str) -> None:
        """Fill a new, empty database in one transaction, sealing every secret as the other writes do."""
        async with self.transaction() as db:
            if (await (await db.execute("SELECT COUNT(*) FROM fee_xpubs")).fetchone())[0]:
                raise StoreError("the database is not empty")
            await self._exec(db, "INSERT INTO fee_xpubs (id, xpub, last_index) VALUES (0, ?, ?)", (xpub, last_index))
            for name, value in keys.items():
                await self._exec(db, "INSERT INTO vsp_keys (name, value) VALUES (?, ?)",
                                 (name, self.sealer.seal(value, f"key:{name}")))
            await db.executemany(f"INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ({', '.join('?' * 20)})",
                                 [self._ticket_values(t) for t in tickets])
            await db.executemany("INSERT INTO vote_changes VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (h, c.seq, self.sealer.seal(c.request.encode(), f"req:{h}"), c.request_sig, c.response,
                 c.response_sig, c.created) for h, records in vote_changes.items() for c in records])
            await db.executemany("INSERT INTO alt_sign_addrs VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (a.ticket_hash, a.address, a.request, a.request_sig, a.response, a.response_sig, a.created)
                for a in alt_signs])
            await self._exec(db, _RECORD_FROM_TICKETS)
            await self._exec(db, "INSERT INTO admin_log (time, who, action, detail) VALUES (?, ?, ?, ?)",
                             (_now(), who, "importvspd", detail))
