"""Fee xpubs: the extended public keys the fee addresses are derived from.

Its own module, as decred/vspd's database/feexpub.go: the current one and
the retired ones, each with the last index handed out (a new ticket takes
the next in tickets.py, in the same transaction as its row).
"""

from .common import StoreError, _now
from .models import FeeXPub


class FeeXPubsPart:
    """The fee_xpubs table."""

    async def add_xpub(self, xpub: str) -> FeeXPub:
        """Make `xpub` the current fee xpub, retiring the previous one."""
        async with self.transaction() as db:
            if await (await db.execute("SELECT 1 FROM fee_xpubs WHERE xpub = ?", (xpub,))).fetchone():
                raise StoreError("provided xpub has already been used")
            row = await (await db.execute("SELECT MAX(id) FROM fee_xpubs")).fetchone()
            new_id = 0 if row[0] is None else row[0] + 1
            await self._exec(db, "UPDATE fee_xpubs SET retired = ? WHERE retired = 0", (_now(),))
            await self._exec(db, "INSERT INTO fee_xpubs (id, xpub) VALUES (?, ?)", (new_id, xpub))
        return FeeXPub(new_id, xpub, 0, 0)

    async def current_xpub(self) -> FeeXPub:
        row = await self._read_one("SELECT id, xpub, last_index, retired FROM fee_xpubs "
                                   "ORDER BY id DESC LIMIT 1")
        if row is None:
            raise StoreError("the database has no fee xpub")
        return FeeXPub(*row)

    async def all_xpubs(self) -> list[FeeXPub]:
        return [FeeXPub(*r) for r in await self._read(
            "SELECT id, xpub, last_index, retired FROM fee_xpubs ORDER BY id DESC")]

    async def skip_fee_indexes(self, count: int) -> int:
        """Advance the current xpub's last index by `count` (after a restore)."""
        async with self.transaction() as db:
            await self._exec(db, "UPDATE fee_xpubs SET last_index = last_index + ? "
                                 "WHERE id = (SELECT MAX(id) FROM fee_xpubs)", (count,))
        return (await self.current_xpub()).last_index
