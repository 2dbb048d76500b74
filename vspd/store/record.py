"""The public record: ticket counts now, and the daily roll-ups the stats and charts draw.

Apart from the tickets because it is read, not acted on: web/pages/record.py
and the stats draw it, and its rows (daily_record, daily_tickets, voter_days)
only grow, a few a day. tickets.py adds to the day's tally as outcomes and
fees land.
"""

import time

from .common import DAY
from .models import FEE_CONFIRMED

# The daily record of tickets that came without one (imported): by the day each ticket row last changed,
# the best date such rows keep. schema/0005_record.sql runs the same for databases from before the record.
_RECORD_FROM_TICKETS = (
    "INSERT INTO daily_record (day, voted, missed, expired, revoked, fees) SELECT updated / 86400, "
    "SUM(outcome = 'voted'), SUM(outcome = 'missed'), SUM(outcome = 'expired'), SUM(outcome = 'revoked'), "
    "SUM(CASE WHEN fee_tx_status = 'confirmed' AND fee_waived = 0 THEN fee_amount ELSE 0 END) FROM tickets "
    "WHERE outcome <> '' OR (fee_tx_status = 'confirmed' AND fee_waived = 0) GROUP BY updated / 86400 "
    "ON CONFLICT (day) DO UPDATE SET voted = voted + excluded.voted, missed = missed + excluded.missed, "
    "expired = expired + excluded.expired, revoked = revoked + excluded.revoked, fees = fees + excluded.fees")


class RecordPart:
    """Counts and roll-ups over the tickets, and the daily_tickets and voter_days samples."""

    async def ticket_counts(self) -> dict[str, int]:
        """Counts of fee-confirmed tickets by outcome ('' = still voting)."""
        rows = await self._read("SELECT outcome, COUNT(*) FROM tickets WHERE fee_tx_status = ? "
                                "GROUP BY outcome", (FEE_CONFIRMED,))
        counts = {o: 0 for o in ("", "voted", "revoked", "expired", "missed")}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def state_counts(self) -> dict[str, int]:
        """Tickets by state now: awaiting (fee not confirmed), voting, and each outcome."""
        rows = await self._read("SELECT outcome, fee_tx_status = 'confirmed', COUNT(*) FROM tickets "
                                "GROUP BY 1, 2")
        counts = dict.fromkeys(("awaiting", "voting", "voted", "missed", "expired", "revoked"), 0)
        for outcome, confirmed, n in rows:
            key = outcome or ("voting" if confirmed else "awaiting")
            counts[key] += n
        return counts

    async def sample_day(self, counts: dict[str, int], voters: list[tuple[str, bool, int]],
                         now: float | None = None) -> None:
        """Today's ticket counts, and one health sample (name, healthy, lag) per voter."""
        day = int(now if now is not None else time.time()) // DAY
        async with self.transaction() as db:
            await self._exec(db, "INSERT OR REPLACE INTO daily_tickets (day, awaiting, voting, voted, missed, "
                                 "expired, revoked) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (day, counts["awaiting"], counts["voting"], counts["voted"], counts["missed"],
                              counts["expired"], counts["revoked"]))
            for name, healthy, lag in voters:
                await self._exec(db, "INSERT INTO voter_days (day, voter, samples, healthy, max_lag) "
                                     "VALUES (?, ?, 1, ?, ?) ON CONFLICT (day, voter) DO UPDATE SET "
                                     "samples = samples + 1, healthy = healthy + excluded.healthy, "
                                     "max_lag = max(max_lag, excluded.max_lag)", (day, name, int(healthy), lag))

    async def record_since(self, day: int) -> dict[str, list[tuple]]:
        """The roll-up rows from `day` on (a year of them is a few hundred rows per table)."""
        return {
            "daily": [tuple(r) for r in await self._read(
                "SELECT day, voted, missed, expired, revoked, fees FROM daily_record WHERE day >= ? ORDER BY day",
                (day,))],
            "tickets": [tuple(r) for r in await self._read(
                "SELECT day, awaiting, voting, voted, missed, expired, revoked FROM daily_tickets WHERE day >= ? "
                "ORDER BY day", (day,))],
            "voters": [tuple(r) for r in await self._read(
                "SELECT day, voter, samples, healthy, max_lag FROM voter_days WHERE day >= ? ORDER BY voter, day",
                (day,))]}

    async def revenue(self, height: int, blocks_per_day: int) -> tuple[int, int, int]:
        """Fees of fee-confirmed, not fee-waived tickets: lifetime, 28 days, 24 hours."""
        def since(blocks: int) -> str:
            return (f"SELECT COALESCE(SUM(fee_amount), 0) FROM tickets WHERE fee_tx_status = 'confirmed' "
                    f"AND fee_waived = 0 AND (purchase_height >= {max(height - blocks, 1)} OR purchase_height = 0)")
        lifetime = (await self._read_one("SELECT COALESCE(SUM(fee_amount), 0) FROM tickets WHERE "
                                         "fee_tx_status = 'confirmed' AND fee_waived = 0"))[0]
        return (lifetime, (await self._read_one(since(28 * blocks_per_day)))[0],
                (await self._read_one(since(blocks_per_day)))[0])

    async def outcomes_since(self, since: float) -> dict[str, int]:
        rows = await self._read("SELECT outcome, COUNT(*) FROM tickets WHERE outcome <> '' AND updated >= ? "
                                "GROUP BY outcome", (int(since),))
        return {r[0]: r[1] for r in rows}
