"""Tickets: their rows, the fee address each is given, their fee and outcome.

The ticket row is what every request and every block pass reads and writes,
so it has its own module, as decred/vspd's database/ticket.go. A ticket's
vote changes and alternate sign address are in votechanges.py and altsign.py.
"""

import sqlite3
import time
from typing import Callable, Iterable

from .common import DAY, StoreError, _now
from .models import FEE_BROADCAST, FEE_CONFIRMED, Ticket, dumps_map, loads_map

TICKET_COLUMNS = ("hash, purchase_height, commitment_address, fee_xpub_id, fee_address_index, "
                  "fee_address, fee_amount, fee_expiration, confirmed, voting_wif, vote_choices, "
                  "tspend_policy, treasury_policy, fee_tx_hex, fee_tx_hash, fee_tx_status, outcome, "
                  "fee_waived, created, updated")

_TICKET_BY_HASH = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hash = ?"
_TICKET_AND_ALT_BY_HASH = (f"SELECT {TICKET_COLUMNS}, (SELECT address FROM alt_sign_addrs WHERE ticket_hash = "
                           f"tickets.hash) FROM tickets WHERE hash = ?")


class TicketsPart:
    """The tickets table (and the fee xpub index each new ticket takes)."""

    def _row_to_ticket(self, row, unseal: bool = True) -> Ticket:
        t = Ticket(hash=row[0], purchase_height=row[1], commitment_address=row[2], fee_xpub_id=row[3],
                   fee_address_index=row[4], fee_address=row[5], fee_amount=row[6],
                   fee_expiration=row[7], confirmed=bool(row[8]), vote_choices=loads_map(row[10]),
                   tspend_policy=loads_map(row[11]), treasury_policy=loads_map(row[12]),
                   fee_tx_hex=row[13], fee_tx_hash=row[14], fee_tx_status=row[15], outcome=row[16],
                   fee_waived=bool(row[17]), created=row[18], updated=row[19])
        if row[9] and unseal:
            t.voting_wif = self.sealer.open(row[9], f"wif:{t.hash}").decode()
        return t

    async def get_ticket(self, ticket_hash: str) -> Ticket | None:
        row = await self._read_row(_TICKET_BY_HASH, ticket_hash)
        return self._row_to_ticket(row) if row else None

    async def ticket_and_alt_sign(self, ticket_hash: str) -> tuple[Ticket | None, str | None]:
        """Our record of the ticket and its alternate sign address (None where there is none), in one read.

        What every authenticated ticket request needs. The voting key is
        not opened (voting_wif is left empty): no request needs it, and
        update_fields writes only the columns it is given.
        """
        row = await self._read_row(_TICKET_AND_ALT_BY_HASH, ticket_hash)
        return (self._row_to_ticket(row, unseal=False), row[20]) if row else (None, None)

    async def insert_new_ticket(self, ticket: Ticket,
                                derive: Callable[[str, int], tuple[int, str]]) -> Ticket:
        """Allocate the next fee address and insert the ticket, atomically.

        `derive(xpub, last_index)` returns (index, address) for the first
        usable index after last_index. Index and ticket commit together, so
        an index is never handed out twice, across restarts or concurrency.
        """
        self.ticket_inserts += 1
        try:
            return await self._insert_new_ticket(ticket, derive)
        finally:
            self.ticket_inserts += 1

    async def _insert_new_ticket(self, ticket: Ticket, derive: Callable[[str, int], tuple[int, str]]) -> Ticket:
        async with self.transaction() as db:
            row = await (await db.execute(
                "SELECT id, xpub, last_index FROM fee_xpubs ORDER BY id DESC LIMIT 1")).fetchone()
            if row is None:
                raise StoreError("the database has no fee xpub")
            xpub_id, xpub, last = row
            index, addr = derive(xpub, last)
            await self._exec(db, "UPDATE fee_xpubs SET last_index = ? WHERE id = ?", (index, xpub_id))
            ticket.fee_xpub_id, ticket.fee_address_index, ticket.fee_address = xpub_id, index, addr
            ticket.created = ticket.updated = _now()
            try:
                await self._exec(db, f"INSERT INTO tickets ({TICKET_COLUMNS}) VALUES "
                                     f"({', '.join('?' * 20)})", self._ticket_values(ticket))
            except sqlite3.IntegrityError as e:
                raise StoreError(f"cannot insert ticket {ticket.hash}: {e}") from None
        return ticket

    def _ticket_values(self, t: Ticket) -> tuple:
        wif = self.sealer.seal(t.voting_wif.encode(), f"wif:{t.hash}") if t.voting_wif else ""
        return (t.hash, t.purchase_height, t.commitment_address, t.fee_xpub_id, t.fee_address_index,
                t.fee_address, t.fee_amount, t.fee_expiration, int(t.confirmed), wif,
                dumps_map(t.vote_choices), dumps_map(t.tspend_policy), dumps_map(t.treasury_policy),
                t.fee_tx_hex, t.fee_tx_hash, t.fee_tx_status, t.outcome, int(t.fee_waived),
                t.created, t.updated)

    async def update_ticket(self, t: Ticket) -> None:
        """Rewrite every field of an existing ticket."""
        t.updated = _now()
        values = self._ticket_values(t)
        async with self.transaction() as db:
            n = await self._exec(db, "UPDATE tickets SET " + ", ".join(
                f"{c.strip()} = ?" for c in TICKET_COLUMNS.split(",")[1:]) + " WHERE hash = ?",
                values[1:] + (t.hash,))
            if n != 1:
                raise StoreError(f"ticket {t.hash} does not exist")

    # and the block a ticket's purchase was confirmed in (vspd/store/blocks.py undoes it when it leaves the chain)
    _UPDATABLE = (frozenset(c.strip() for c in TICKET_COLUMNS.split(",")[1:]) - {"created", "updated"}
                  | {"purchase_block"})

    async def update_fields(self, ticket_hash: str, fields: dict, expect: dict | None = None) -> bool:
        """Set only `fields`, and only while the row still matches `expect`; True if it did.

        Writers that read a ticket, await the network, then write must not
        overwrite what another writer committed meanwhile (a payfee landing
        during a pipeline pass): they change just their columns, conditionally.
        """
        values = {}
        for name, value in fields.items():
            if name not in self._UPDATABLE:
                raise StoreError(f"cannot update ticket column {name!r}")
            if name == "voting_wif":
                value = self.sealer.seal(value.encode(), f"wif:{ticket_hash}") if value else ""
            elif name in ("vote_choices", "tspend_policy", "treasury_policy"):
                value = dumps_map(value)
            elif isinstance(value, bool):
                value = int(value)
            values[name] = value
        where, params = ["hash = ?"], [ticket_hash]
        for name, value in (expect or {}).items():
            if name not in self._UPDATABLE:
                raise StoreError(f"cannot match ticket column {name!r}")
            if isinstance(value, (tuple, list)):
                where.append(f"{name} IN ({', '.join('?' * len(value))})")
                params.extend(value)
            else:
                where.append(f"{name} = ?")
                params.append(int(value) if isinstance(value, bool) else value)
        sets = ", ".join(f"{n} = ?" for n in values) + ", updated = ?"
        async with self.transaction() as db:
            n = await self._exec(db, f"UPDATE tickets SET {sets} WHERE {' AND '.join(where)}",
                                 (*values.values(), _now(), *params))
        return n == 1

    async def delete_ticket(self, ticket_hash: str) -> None:
        """Forget a ticket that was never mined, with its history."""
        async with self.transaction() as db:
            for table, col in (("tickets", "hash"), ("vote_changes", "ticket_hash"),
                               ("alt_sign_addrs", "ticket_hash")):
                await self._exec(db, f"DELETE FROM {table} WHERE {col} = ?", (ticket_hash,))

    async def tickets_where(self, where: str, params: Iterable = (), limit: int | None = None) -> list[Ticket]:
        sql = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {where}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._row_to_ticket(r) for r in await self._read(sql, params)]

    async def unpaid_tickets(self, limit: int) -> list[Ticket]:
        """Tickets quoted a fee that was never paid (or not broadcastable), newest first."""
        return await self.tickets_where("fee_tx_status IN ('none', 'error') AND fee_waived = 0 AND outcome = '' "
                                        "ORDER BY created DESC", limit=limit)

    async def set_outcome(self, ticket_hash: str, outcome: str, spender: str = "", height: int = 0,
                          now: float | None = None, block: str = "") -> None:
        """Record the outcome, the transaction that spent the ticket (and its block) and the day's tally,
        in one transaction; when is kept, so that a reorganisation takes the tally back from that day."""
        now = int(now if now is not None else time.time())
        async with self.transaction() as db:
            await self._record_outcome(db, ticket_hash, outcome, spender, height, now, block)

    async def _record_outcome(self, db, ticket_hash: str, outcome: str, spender: str, height: int, now: int,
                              block: str) -> int:
        """Inside a transaction: the outcome, its spend and the day's tally; 0 if the ticket had one already."""
        if outcome not in ("voted", "missed", "expired", "revoked"):
            raise StoreError(f"not an outcome: {outcome!r}")
        if not await self._exec(db, "UPDATE tickets SET outcome = ?, updated = ? WHERE hash = ? AND outcome = ''",
                                (outcome, now, ticket_hash)):
            return 0
        if spender:
            await self._exec(db, "INSERT OR REPLACE INTO ticket_spends (ticket_hash, spender, height, block, "
                                 "recorded) VALUES (?, ?, ?, ?, ?)", (ticket_hash, spender, height, block, now))
        await self._exec(db, f"INSERT INTO daily_record (day, {outcome}) VALUES (?, 1) ON CONFLICT (day) "
                             f"DO UPDATE SET {outcome} = {outcome} + 1", (now // DAY,))
        return 1

    async def ticket_spend(self, ticket_hash: str) -> tuple[str, int] | None:
        """(spending transaction, height) of a voted or revoked ticket, if recorded."""
        row = await self._read_row("SELECT spender, height FROM ticket_spends WHERE ticket_hash = ?", ticket_hash)
        return (row[0], row[1]) if row else None

    async def confirm_fee(self, ticket_hash: str, fee_tx_hash: str, atoms: int, now: float | None = None,
                          height: int = 0, block: str = "") -> bool:
        """Mark a broadcast fee confirmed (if it still is that fee) in its block, and add it to the day's revenue.

        The fee transaction is kept: if a reorganisation takes its block away, it is sent again from it.
        """
        now = int(now if now is not None else time.time())
        async with self.transaction() as db:
            if not await self._exec(db, "UPDATE tickets SET fee_tx_status = ?, fee_height = ?, fee_block = ?, "
                                        "fee_counted = ?, updated = ? "
                                        "WHERE hash = ? AND fee_tx_status = ? AND fee_tx_hash = ?",
                                    (FEE_CONFIRMED, height, block, now, now, ticket_hash, FEE_BROADCAST,
                                     fee_tx_hash)):
                return False
            await self._exec(db, "INSERT INTO daily_record (day, fees) VALUES (?, ?) ON CONFLICT (day) "
                                 "DO UPDATE SET fees = fees + excluded.fees", (now // DAY, atoms))
        return True

    async def votable_choices(self, after: str = "", limit: int = 1000) -> list[tuple[str, dict]]:
        """A page of (hash, vote choices) of the tickets still to vote, in hash order after `after`.

        Just the two columns a consistency check compares, a page at a time:
        the whole set of votable tickets is never in memory at once.
        """
        rows = await self._read("SELECT hash, vote_choices FROM tickets WHERE fee_tx_status = 'confirmed' "
                                "AND outcome = '' AND hash > ? ORDER BY hash LIMIT ?", (after, limit))
        return [(r[0], loads_map(r[1])) for r in rows]

    async def earliest_votable_height(self) -> int:
        row = await self._read_one("SELECT MIN(purchase_height) FROM tickets WHERE fee_tx_status = ? "
                                   "AND outcome = '' AND purchase_height > 0", (FEE_CONFIRMED,))
        return row[0] or 0
