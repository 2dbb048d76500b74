"""The operator's side of the database: sealed keys, settings, and the admin audit trail.

What vspadmin and the admin pages change, apart from the tickets: the VSP's
keys (sealed), the settings the operator sets, the log of who changed what,
and resealing every sealed value under a new key.
"""

from vspd.base.sealing import Sealer

from .common import StoreError, _now


class SettingsPart:
    """The vsp_keys, vsp_settings and admin_log tables; resealing every secret."""

    async def set_key(self, name: str, value: bytes) -> None:
        async with self.transaction() as db:
            await self._exec(db, "INSERT OR REPLACE INTO vsp_keys (name, value) VALUES (?, ?)",
                             (name, self.sealer.seal(value, f"key:{name}")))

    async def get_key(self, name: str) -> bytes:
        row = await self._read_one("SELECT value FROM vsp_keys WHERE name = ?", (name,))
        if row is None:
            raise StoreError(f"the database has no {name}")
        return self.sealer.open(row[0], f"key:{name}")

    async def get_setting(self, name: str) -> str | None:
        row = await self._read_one("SELECT value FROM vsp_settings WHERE name = ?", (name,))
        return None if row is None else row[0]

    async def set_settings(self, values: dict[str, str], who: str, action: str, detail: str = "") -> None:
        """Change settings and record the admin action, in one transaction."""
        async with self.transaction() as db:
            for name, value in values.items():
                await self._exec(db, "INSERT OR REPLACE INTO vsp_settings (name, value) VALUES (?, ?)",
                                 (name, value))
            await self._exec(db, "INSERT INTO admin_log (time, who, action, detail) VALUES (?, ?, ?, ?)",
                             (_now(), who, action, detail))

    async def log_admin(self, who: str, action: str, detail: str = "") -> None:
        await self.set_settings({}, who, action, detail)

    async def admin_log(self, limit: int = 50) -> list[tuple]:
        return [tuple(r) for r in await self._read(
            "SELECT time, who, action, detail FROM admin_log ORDER BY id DESC LIMIT ?", (limit,))]

    async def reseal(self, new: Sealer) -> int:
        """Re-encrypt every sealed value under `new`, in one transaction."""
        n = 0
        async with self.transaction() as db:
            for name, value in await (await db.execute("SELECT name, value FROM vsp_keys")).fetchall():
                plain = self.sealer.open(value, f"key:{name}")
                await self._exec(db, "UPDATE vsp_keys SET value = ? WHERE name = ?",
                                 (new.seal(plain, f"key:{name}"), name))
                n += 1
            rows = await (await db.execute("SELECT hash, voting_wif FROM tickets WHERE voting_wif <> ''")).fetchall()
            for h, value in rows:
                plain = self.sealer.open(value, f"wif:{h}")
                await self._exec(db, "UPDATE tickets SET voting_wif = ? WHERE hash = ?",
                                 (new.seal(plain, f"wif:{h}"), h))
                n += 1
            for h, seq, value in await (await db.execute(
                    "SELECT ticket_hash, seq, request FROM vote_changes")).fetchall():
                plain = self.sealer.open(value, f"req:{h}")
                await self._exec(db, "UPDATE vote_changes SET request = ? WHERE ticket_hash = ? AND seq = ?",
                                 (new.seal(plain, f"req:{h}"), h, seq))
                n += 1
        self.sealer = new
        return n
