"""The blocks the pipeline read, and the undo of what it took from those that left the main chain.

A VSP's record (outcomes, spends, confirmations, revenue) is only as true as
the blocks it came from. The pipeline keeps each scanned block's hash here;
when the node's chain no longer holds one of them, everything recorded from
the blocks above the fork point is undone in one transaction, so the next
pass reads the new branch as if the old one had never been (docs/reorgs.md).
"""

from dataclasses import dataclass, field

from .common import DAY, _now
from .models import FEE_BROADCAST, FEE_CONFIRMED

SCANNED_KEPT = 1024  # blocks below the tip whose hashes are kept: deeper than any reorganisation exccd reports


@dataclass
class Undone:
    """What one undo took back, for the operator's log line and the pass report."""
    outcomes: list[str] = field(default_factory=list)  # tickets live again (vote or revocation orphaned)
    tickets: list[str] = field(default_factory=list)  # tickets back to waiting for their confirmations
    fees: list[str] = field(default_factory=list)  # tickets whose fee is back to waiting for confirmations

    @property
    def count(self) -> int:
        return len(self.outcomes) + len(self.tickets) + len(self.fees)


class BlocksPart:
    """The scanned_blocks table, and the chain facts kept on tickets and ticket_spends."""

    async def scanned_top(self) -> tuple[int, str] | None:
        """The highest block the pipeline read: (height, hash)."""
        row = await self._read_one("SELECT height, hash FROM scanned_blocks ORDER BY height DESC LIMIT 1")
        return (row[0], row[1]) if row else None

    async def scanned_below(self, height: int, limit: int | None = None) -> list[tuple[int, str]]:
        """Kept blocks below `height`, highest first: where a fork point is looked for."""
        limit = SCANNED_KEPT if limit is None else limit
        rows = await self._read("SELECT height, hash FROM scanned_blocks WHERE height < ? "
                                "ORDER BY height DESC LIMIT ?", (height, limit))
        return [(r[0], r[1]) for r in rows]

    async def scanned_hash(self, height: int) -> str | None:
        row = await self._read_one("SELECT hash FROM scanned_blocks WHERE height = ?", (height,))
        return row[0] if row else None

    async def record_block(self, height: int, block_hash: str, outcomes: list[tuple[str, str, str]],
                           last_scanned: str, now: float | None = None) -> int:
        """One scanned block in one transaction: its outcomes (ticket, outcome, spender), its hash, and the
        pipeline's progress; hashes older than `kept` blocks go. Returns the outcomes recorded.

        All or nothing: an outcome is never kept without the hash of the block it came from, so a
        reorganisation always finds, and undoes, everything a block gave.
        """
        now = int(now if now is not None else _now())
        recorded = 0
        kept = SCANNED_KEPT
        async with self.transaction() as db:
            for ticket_hash, outcome, spender in outcomes:
                recorded += await self._record_outcome(db, ticket_hash, outcome, spender, height, now, block_hash)
            await self._exec(db, "INSERT OR REPLACE INTO scanned_blocks (height, hash) VALUES (?, ?)",
                             (height, block_hash))
            await self._exec(db, "DELETE FROM scanned_blocks WHERE height <= ?", (height - kept,))
            await self._exec(db, "INSERT OR REPLACE INTO pipeline_state (name, value) VALUES (?, ?)",
                             (last_scanned, height))
        return recorded

    async def undo_above(self, fork_height: int, last_scanned: str) -> Undone:
        """Take back every fact recorded from blocks above `fork_height`, in one transaction.

        Outcomes: the ticket is live again, its spend forgotten and its day's tally taken back.
        Ticket confirmations: back to waiting for six confirmations (the next passes confirm it again
        at its new height). Fee confirmations: back to broadcast, the fee taken back from its day's
        revenue; the kept fee transaction is sent again if the node no longer has it. Idempotent: a
        second call with the same fork point finds nothing left to undo.
        """
        undone = Undone()
        async with self.transaction() as db:
            spent = await (await db.execute(
                "SELECT t.hash, t.outcome, s.recorded FROM ticket_spends s JOIN tickets t ON t.hash = s.ticket_hash "
                "WHERE s.height > ?", (fork_height,))).fetchall()
            for ticket_hash, outcome, recorded in spent:
                if outcome and recorded:
                    await self._exec(db, f"UPDATE daily_record SET {outcome} = MAX({outcome} - 1, 0) WHERE day = ?",
                                     (recorded // DAY,))
                await self._exec(db, "UPDATE tickets SET outcome = '', updated = ? WHERE hash = ?",
                                 (_now(), ticket_hash))
                undone.outcomes.append(ticket_hash)
            await self._exec(db, "DELETE FROM ticket_spends WHERE height > ?", (fork_height,))
            fees = await (await db.execute(
                "SELECT hash, fee_amount, fee_waived, fee_counted FROM tickets WHERE fee_height > ? "
                "AND fee_tx_status = ?", (fork_height, FEE_CONFIRMED))).fetchall()
            for ticket_hash, amount, waived, counted in fees:
                if counted and not waived:
                    await self._exec(db, "UPDATE daily_record SET fees = MAX(fees - ?, 0) WHERE day = ?",
                                     (amount, counted // DAY))
                await self._exec(db, "UPDATE tickets SET fee_tx_status = ?, fee_height = 0, fee_block = '', "
                                     "fee_counted = 0, updated = ? WHERE hash = ?",
                                 (FEE_BROADCAST, _now(), ticket_hash))
                undone.fees.append(ticket_hash)
            rows = await (await db.execute(
                "SELECT hash FROM tickets WHERE purchase_block <> '' AND purchase_height > ?",
                (fork_height,))).fetchall()
            for (ticket_hash,) in rows:
                await self._exec(db, "UPDATE tickets SET confirmed = 0, purchase_block = '', updated = ? "
                                     "WHERE hash = ?", (_now(), ticket_hash))
                undone.tickets.append(ticket_hash)
            await self._exec(db, "DELETE FROM scanned_blocks WHERE height > ?", (fork_height,))
            await self._exec(db, "INSERT OR REPLACE INTO pipeline_state (name, value) VALUES (?, ?)",
                             (last_scanned, fork_height))
        return undone
