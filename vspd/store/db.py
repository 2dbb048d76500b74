"""Opening the database, migrations, and every query the VSP makes.

One writer connection behind an asyncio.Lock (every write is one short
transaction, committed before the caller answers anyone) and one reader
connection, so readers see only committed rows and never wait for writers
(WAL). Tables are small and few, so the queries live together here.

Reads of one row by its primary key (a ticket, its alternate sign address)
run on the event loop's own thread, through a third, read-only connection:
such a read takes a few microseconds, where the hop to the reader's thread
and back costs tens, and it is the hot path of every ticket request. That
connection never waits: were SQLite ever busy, the read goes to the reader's
thread instead. Like every read, it ends its statement before returning, so
it sees everything committed before it started.

The rows such reads found are also kept (`HOT_ROWS` at most) until the end
of the next write transaction, which forgets them all: this process is
the only writer (the run lock keeps other frontends and vspadmin's
replacing commands out), so a kept row is exactly what SQLite would
answer. A read from the reader's thread that a write ended during keeps
nothing. Even the point read costs a few system calls (the WAL's shared
locks), and a wallet asks about the same tickets again and again.
"""

import asyncio
import importlib.resources
import json
import os
import re
import sqlite3
import time
import urllib.parse
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterable, Sequence

import aiosqlite

from vspd.base.sealing import Sealer

from .models import FEE_BROADCAST, FEE_CONFIRMED, FEE_NONE, AltSignAddr, FeeXPub, Ticket, VoteChange, dumps_map, \
    loads_map

BUSY_TIMEOUT_MS = 5000
MAX_VOTE_CHANGES = 10
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

TICKET_COLUMNS = ("hash, purchase_height, commitment_address, fee_xpub_id, fee_address_index, "
                  "fee_address, fee_amount, fee_expiration, confirmed, voting_wif, vote_choices, "
                  "tspend_policy, treasury_policy, fee_tx_hex, fee_tx_hash, fee_tx_status, outcome, "
                  "fee_waived, created, updated")

_TICKET_BY_HASH = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hash = ?"
_VOTE_CHANGES_OF = ("SELECT seq, request, request_sig, response, response_sig, created FROM vote_changes "
                    "WHERE ticket_hash = ? ORDER BY seq")
_TICKET_AND_ALT_BY_HASH = (f"SELECT {TICKET_COLUMNS}, (SELECT address FROM alt_sign_addrs WHERE ticket_hash = "
                           f"tickets.hash) FROM tickets WHERE hash = ?")
DAY = 86400
# The daily record of tickets that came without one (imported): by the day each ticket row last changed,
# the best date such rows keep. schema/0005_record.sql runs the same for databases from before the record.
_RECORD_FROM_TICKETS = (
    "INSERT INTO daily_record (day, voted, missed, expired, revoked, fees) SELECT updated / 86400, "
    "SUM(outcome = 'voted'), SUM(outcome = 'missed'), SUM(outcome = 'expired'), SUM(outcome = 'revoked'), "
    "SUM(CASE WHEN fee_tx_status = 'confirmed' AND fee_waived = 0 THEN fee_amount ELSE 0 END) FROM tickets "
    "WHERE outcome <> '' OR (fee_tx_status = 'confirmed' AND fee_waived = 0) GROUP BY updated / 86400 "
    "ON CONFLICT (day) DO UPDATE SET voted = voted + excluded.voted, missed = missed + excluded.missed, "
    "expired = expired + excluded.expired, revoked = revoked + excluded.revoked, fees = fees + excluded.fees")
LOW_SPACE = 1 << 20  # bytes free in the database's folder below which its disk counts as full
HOT_ROWS = 4096  # kept reads (a ticket row is ~1 KB); all forgotten at the next write


class StoreError(Exception):
    """A database operation could not be done (duplicate, missing row, ...)."""


class SchemaError(StoreError):
    """The database's schema version is not one this code can use."""


class WriteFailed(StoreError):
    """A write the disk refused (full, or an I/O error): rolled back, nothing of it kept.

    The process goes on: reads still work, and the next write (the next block
    pass redoes what failed) succeeds once the disk has room again.
    """


def write_failure(e: sqlite3.Error) -> str | None:
    """What a failed write says about the disk, or None when the error is not the disk's."""
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return "the database's disk is full"
    if code == sqlite3.SQLITE_IOERR:
        return f"the database's disk cannot be written ({e})"
    return None


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in schema/, in order, gap-free."""
    found = []
    for entry in importlib.resources.files("schema").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m[1]), entry.name, entry.read_text()))
    found.sort()
    for i, (version, name, _) in enumerate(found, start=1):
        if version != i:
            raise SchemaError(f"schema migrations are not numbered 1..n: {name}")
    return found


def latest_version() -> int:
    return len(migrations())


def _now() -> int:
    return int(time.time())


class Store:
    """The frontend database. Create with `await Store.open(path, sealer)`."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, point: sqlite3.Connection,
                 sealer: Sealer, path: Path):
        self._w = writer
        self._r = reader
        self._point = point
        self._hot: dict[tuple[str, str], Sequence] = {}  # (query, key) -> rows (or what they say), until a write
        self.writes = 0  # write transactions ended; each forgets the hot rows
        self.sealer = sealer
        self.path = path
        self._lock = asyncio.Lock()
        self.max_vote_changes = MAX_VOTE_CHANGES
        self.query_count = 0  # reads and writes issued, for benchmarks
        # Moves when a ticket insert starts and when it ends: a cache of "not in the
        # database" made across either moment no longer counts (web/api/unknown_tickets.py).
        self.ticket_inserts = 0
        # Why the last write failed and since when (time.time()), until a write commits again.
        self.write_problem: str | None = None
        self.write_problem_since = 0.0
        self.free_bytes: int | None = None  # at the last check_space()

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    async def open(cls, path: Path, sealer: Sealer, create: bool = False) -> "Store":
        """Open (or with `create`, make) the database; a refusal leaves its files as they were."""
        path = Path(path)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            await asyncio.to_thread(inspect, path)
        try:
            writer = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.DatabaseError as e:
            raise StoreError(_open_error(path, e)) from None
        try:
            await _configure(writer)
            await _migrate(writer)
            reader = await aiosqlite.connect(_read_only_uri(path), uri=True, isolation_level=None)
        except sqlite3.DatabaseError as e:
            await writer.close()
            raise StoreError(_open_error(path, e)) from None
        except BaseException:
            await writer.close()
            raise
        try:
            await _configure(reader)
            point = sqlite3.connect(_read_only_uri(path), uri=True, isolation_level=None, timeout=0)
        except sqlite3.DatabaseError as e:
            await reader.close()
            await writer.close()
            raise StoreError(_open_error(path, e)) from None
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        if create:
            path.chmod(0o600)
        return cls(writer, reader, point, sealer, path)

    async def checkpoint(self) -> tuple[int, int, int]:
        """Move the whole WAL into the database file and empty it: (busy, WAL frames, frames moved).

        For the frontend's start, before its litestream: a WAL that a killed
        frontend left behind, already partly checkpointed while no litestream
        held it, leaves litestream 0.5.17 reading pages past the end of the
        database file ("write ltx from db: read database page N: EOF") on every
        sync; with the WAL emptied it snapshots the whole file and goes on.
        """
        async with self._lock:
            row = await (await self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")).fetchone()
        return tuple(row)

    async def close(self) -> None:
        self._point.close()
        await self._r.close()
        await self._w.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; the commit happens before this returns."""
        async with self._lock:
            try:
                try:
                    await self._w.execute("BEGIN IMMEDIATE")
                    changes = self._w.total_changes
                    try:
                        yield self._w
                    except BaseException:
                        await self._rollback()
                        raise
                    await self._w.execute("COMMIT")
                except sqlite3.OperationalError as e:
                    why = write_failure(e)
                    if why is None:
                        raise
                    await self._rollback()  # SQLite may have rolled back already; it may not have
                    if self.write_problem is None:
                        self.write_problem_since = time.time()
                    self.write_problem = why
                    raise WriteFailed(why) from None
                if self._w.total_changes != changes:  # a commit that wrote nothing proves no room
                    self.write_problem = None
            finally:
                self._forget_hot_rows()

    async def check_space(self) -> int:
        """Bytes free for the database's folder: a full disk is reported before a write fails on it."""
        st = await asyncio.to_thread(os.statvfs, self.path.parent)
        self.free_bytes = st.f_bavail * st.f_frsize
        return self.free_bytes

    def space_problem(self) -> str | None:
        """Why writes fail or are about to: the last failed write's reason, else too little room left."""
        if self.write_problem is not None:
            return self.write_problem
        if self.free_bytes is not None and self.free_bytes < LOW_SPACE:
            return f"the database's disk is full ({self.free_bytes} bytes free)"
        return None

    async def _rollback(self) -> None:
        """End the open transaction, if any: a COMMIT the disk refused can leave it open."""
        if self._w.in_transaction:
            try:
                await self._w.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass  # nothing left to roll back: SQLite ended it with the error

    def _forget_hot_rows(self) -> None:
        self._hot.clear()
        self.writes += 1

    async def _read(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        """Run and drain one query in a single call on the reader's thread.

        The reader connection is shared. A statement left open between two
        thread calls (execute, then fetchall) keeps its read transaction, and
        any read issued meanwhile joins that older snapshot: a row committed
        just before would be missing. One call leaves no statement open.
        """
        self.query_count += 1
        return list(await self._r.execute_fetchall(sql, tuple(params)))

    async def _read_one(self, sql: str, params: Iterable = ()):
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    def _rows_now(self, sql: str, key: str) -> list[tuple] | None:
        """The rows of a read by one key: kept ones, else read on this thread; None if SQLite is busy.

        fetchall steps the statement to its end, which resets it: no read
        transaction stays open to hide a later commit.
        """
        rows = self._hot.get((sql, key))
        if rows is not None:
            return rows
        self.query_count += 1
        try:
            rows = self._point.execute(sql, (key,)).fetchall()
        except sqlite3.OperationalError:  # busy or locked: never wait on the event loop
            return None
        self._keep(sql, key, rows)
        return rows

    def _keep(self, sql: str, key: str, rows: Sequence) -> None:
        if rows:  # what is not there is the unknown-ticket cache's to remember (web/api/unknown_tickets.py)
            if len(self._hot) >= HOT_ROWS:
                self._hot.clear()
            self._hot[sql, key] = rows

    async def _keep_unless_written(self, sql: str, key: str, read: Callable[[], Awaitable[Sequence]]) -> Sequence:
        """What `read` answers, kept only if no write ended while it ran: else it may be older than SQLite's."""
        writes = self.writes
        rows = await read()
        if writes == self.writes:
            self._keep(sql, key, rows)
        return rows

    async def _rows(self, sql: str, key: str) -> list[tuple]:
        """A read by one key: on this thread if SQLite lets it through at once, else on the reader's."""
        rows = self._rows_now(sql, key)
        if rows is None:
            rows = await self._keep_unless_written(sql, key, lambda: self._read(sql, (key,)))
        return rows

    async def _read_row(self, sql: str, key: str):
        rows = await self._rows(sql, key)
        return rows[0] if rows else None

    async def _exec(self, db: aiosqlite.Connection, sql: str, params: Iterable = ()) -> int:
        self.query_count += 1
        cur = await db.execute(sql, tuple(params))
        return cur.rowcount

    # -- VSP keys ------------------------------------------------------------
    async def set_key(self, name: str, value: bytes) -> None:
        async with self.transaction() as db:
            await self._exec(db, "INSERT OR REPLACE INTO vsp_keys (name, value) VALUES (?, ?)",
                             (name, self.sealer.seal(value, f"key:{name}")))

    async def get_key(self, name: str) -> bytes:
        row = await self._read_one("SELECT value FROM vsp_keys WHERE name = ?", (name,))
        if row is None:
            raise StoreError(f"the database has no {name}")
        return self.sealer.open(row[0], f"key:{name}")

    # -- fee xpubs -----------------------------------------------------------
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

    # -- tickets -------------------------------------------------------------
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

    _UPDATABLE = frozenset(c.strip() for c in TICKET_COLUMNS.split(",")[1:]) - {"created", "updated"}

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

    async def ticket_counts(self) -> dict[str, int]:
        """Counts of fee-confirmed tickets by outcome ('' = still voting)."""
        rows = await self._read("SELECT outcome, COUNT(*) FROM tickets WHERE fee_tx_status = ? "
                                "GROUP BY outcome", (FEE_CONFIRMED,))
        counts = {o: 0 for o in ("", "voted", "revoked", "expired", "missed")}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def set_outcome(self, ticket_hash: str, outcome: str, spender: str = "", height: int = 0,
                          now: float | None = None) -> None:
        """Record the outcome, the transaction that spent the ticket and the day's tally, in one transaction."""
        if outcome not in ("voted", "missed", "expired", "revoked"):
            raise StoreError(f"not an outcome: {outcome!r}")
        now = int(now if now is not None else time.time())
        async with self.transaction() as db:
            if not await self._exec(db, "UPDATE tickets SET outcome = ?, updated = ? WHERE hash = ? AND outcome = ''",
                                    (outcome, now, ticket_hash)):
                return
            if spender:
                await self._exec(db, "INSERT OR REPLACE INTO ticket_spends (ticket_hash, spender, height) "
                                     "VALUES (?, ?, ?)", (ticket_hash, spender, height))
            await self._exec(db, f"INSERT INTO daily_record (day, {outcome}) VALUES (?, 1) ON CONFLICT (day) "
                                 f"DO UPDATE SET {outcome} = {outcome} + 1", (now // DAY,))

    async def ticket_spend(self, ticket_hash: str) -> tuple[str, int] | None:
        """(spending transaction, height) of a voted or revoked ticket, if recorded."""
        row = await self._read_row("SELECT spender, height FROM ticket_spends WHERE ticket_hash = ?", ticket_hash)
        return (row[0], row[1]) if row else None

    async def confirm_fee(self, ticket_hash: str, fee_tx_hash: str, atoms: int, now: float | None = None) -> bool:
        """Mark a broadcast fee confirmed (if it still is that fee) and add it to the day's revenue."""
        now = int(now if now is not None else time.time())
        async with self.transaction() as db:
            if not await self._exec(db, "UPDATE tickets SET fee_tx_status = ?, fee_tx_hex = '', updated = ? "
                                        "WHERE hash = ? AND fee_tx_status = ? AND fee_tx_hash = ?",
                                    (FEE_CONFIRMED, now, ticket_hash, FEE_BROADCAST, fee_tx_hash)):
                return False
            await self._exec(db, "INSERT INTO daily_record (day, fees) VALUES (?, ?) ON CONFLICT (day) "
                                 "DO UPDATE SET fees = fees + excluded.fees", (now // DAY, atoms))
        return True

    # -- the record over time (web/pages/record.py draws it) -------------------------
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

    # -- settings and the admin audit trail ----------------------------------
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

    async def revenue(self, height: int, blocks_per_day: int) -> tuple[int, int, int]:
        """Fees of fee-confirmed, not fee-waived tickets: lifetime, 28 days, 24 hours."""
        def since(blocks: int) -> str:
            return (f"SELECT COALESCE(SUM(fee_amount), 0) FROM tickets WHERE fee_tx_status = 'confirmed' "
                    f"AND fee_waived = 0 AND (purchase_height >= {max(height - blocks, 1)} OR purchase_height = 0)")
        lifetime = (await self._read_one("SELECT COALESCE(SUM(fee_amount), 0) FROM tickets WHERE "
                                         "fee_tx_status = 'confirmed' AND fee_waived = 0"))[0]
        return (lifetime, (await self._read_one(since(28 * blocks_per_day)))[0],
                (await self._read_one(since(blocks_per_day)))[0])

    async def mark_up(self, now: float | None = None) -> None:
        async with self.transaction() as db:
            await self._exec(db, "INSERT OR IGNORE INTO uptime_hours (hour) VALUES (?)",
                             (int((now or time.time()) // 3600),))

    async def uptime_hours(self, since: float) -> int:
        return (await self._read_one("SELECT COUNT(*) FROM uptime_hours WHERE hour >= ?",
                                     (int(since // 3600),)))[0]

    async def outcomes_since(self, since: float) -> dict[str, int]:
        rows = await self._read("SELECT outcome, COUNT(*) FROM tickets WHERE outcome <> '' AND updated >= ? "
                                "GROUP BY outcome", (int(since),))
        return {r[0]: r[1] for r in rows}

    # -- pipeline state ----------------------------------------------------
    async def get_state(self, name: str, default: int = 0) -> int:
        row = await self._read_one("SELECT value FROM pipeline_state WHERE name = ?", (name,))
        return default if row is None else row[0]

    async def set_state(self, name: str, value: int) -> None:
        async with self.transaction() as db:
            await self._exec(db, "INSERT OR REPLACE INTO pipeline_state (name, value) VALUES (?, ?)",
                             (name, value))

    async def probe_write(self) -> None:
        """One write that always changes a row, after a failed one: does the disk take writes again?"""
        await self.set_state("write_probe", _now())

    # -- vote changes ------------------------------------------------------
    async def save_vote_change(self, ticket_hash: str, request: str, request_sig: str,
                               response: str, response_sig: str) -> int:
        async with self.transaction() as db:
            rows = await (await db.execute(
                "SELECT seq FROM vote_changes WHERE ticket_hash = ? ORDER BY seq", (ticket_hash,))).fetchall()
            seqs = [r[0] for r in rows]
            excess = len(seqs) - self.max_vote_changes + 1
            if excess > 0:
                await self._exec(db, "DELETE FROM vote_changes WHERE ticket_hash = ? AND seq <= ?",
                                 (ticket_hash, seqs[excess - 1]))
            seq = seqs[-1] + 1 if seqs else 0
            # The payfee request carries the voting key: requests are sealed like every secret.
            await self._exec(db, "INSERT INTO vote_changes VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (ticket_hash, seq, self.sealer.seal(request.encode(), f"req:{ticket_hash}"),
                              request_sig, response, response_sig, _now()))
        return seq

    async def vote_changes(self, ticket_hash: str) -> list[VoteChange]:
        rows = await self._rows(_VOTE_CHANGES_OF, ticket_hash)
        return [VoteChange(r[0], self.sealer.open(r[1], f"req:{ticket_hash}").decode(), *r[2:]) for r in rows]

    async def request_timestamps(self, ticket_hash: str) -> tuple[int | None, ...]:
        """The timestamp each kept request of the ticket carries (None: not an integer, or not JSON).

        Kept like the rows it comes from (until the next write): a replayed
        setvotechoices would otherwise open and parse every stored request.
        """
        stamps = self._hot.get(("timestamps", ticket_hash))
        if stamps is None:
            async def read() -> tuple[int | None, ...]:
                return tuple(_timestamp_of(c.request) for c in await self.vote_changes(ticket_hash))
            stamps = await self._keep_unless_written("timestamps", ticket_hash, read)
        return stamps

    # -- alternate signing addresses ----------------------------------------
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

    # -- importing another VSP's database --------------------------------------
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

    # -- maintenance ---------------------------------------------------------
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

    async def backup_to(self, dest: Path) -> None:
        """A consistent snapshot through SQLite's online backup API."""
        async with self._lock:
            try:
                target = await aiosqlite.connect(dest)
                try:
                    await self._w.backup(target)
                finally:
                    await target.close()
            except sqlite3.DatabaseError as e:
                raise StoreError(f"cannot write a snapshot to {dest}: {e}") from None

    async def file_size(self) -> int:
        return self.path.stat().st_size


def _open_error(path: Path, e: sqlite3.Error) -> str:
    """Why the database cannot be opened; on a full disk SQLite says only "disk I/O error" (its -shm)."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return f"database {path}: {e}"
    free = st.f_bavail * st.f_frsize
    return f"database {path}: {e}" + (f": its disk is full ({free} bytes free)" if free < LOW_SPACE else "")


def _read_only_uri(path: Path) -> str:
    return f"file:{urllib.parse.quote(str(path))}?mode=ro"


def inspect(path: Path) -> int:
    """Checks that only read, before anything writes: the file is an intact vspd database we can use.

    Opening for writing switches the journal to WAL and runs migrations, so
    an empty file, a newer schema or a damaged file must be refused before
    that. Returns the schema version.
    """
    if not path.exists():
        raise StoreError(f"database {path} does not exist; create it with `vspadmin createdatabase`")
    if not path.is_file():
        raise StoreError(f"database {path} is not a file")
    if path.stat().st_size == 0:
        raise StoreError(f"database {path} is empty (0 bytes), not a vspd database: restore it "
                         f"(`vspadmin restore`) or move it away")
    uri = _read_only_uri(path)
    if not Path(f"{path}-wal").exists():  # all is in the file: read it as is, creating no -wal or -shm beside it
        uri += "&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            found = [row[0] for row in con.execute("PRAGMA quick_check(1)")]
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"database {path} is unreadable: {e}") from None
    if found != ["ok"]:
        raise StoreError(f"database {path} is damaged: {' '.join(found[0].split())}")
    if version > latest_version():
        raise SchemaError(f"database {path} has schema version {version}, newer than this vspd supports "
                          f"({latest_version()}); upgrade vspd")
    if version == 0:
        raise StoreError(f"database {path} is not a vspd database (schema version 0)")
    return version


def _timestamp_of(request: str) -> int | None:
    try:
        stamp = json.loads(request)["timestamp"]
    except (ValueError, KeyError, TypeError):
        return None
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None


async def _configure(db: aiosqlite.Connection) -> None:
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await db.execute("PRAGMA foreign_keys = ON")
    # Checkpoints are litestream's (it runs whenever the frontend does): SQLite's
    # autocheckpoint at 1000 WAL pages races litestream 0.5's own and leaves the
    # replica missing pages, which restores as a corrupt database (see
    # tests/test_replication_checkpoint.py). The frontend's start checkpoints
    # once, before its litestream; a connection closing last checkpoints too.
    await db.execute("PRAGMA wal_autocheckpoint = 0")


async def _migrate(db: aiosqlite.Connection) -> None:
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = FULL")
    current = (await (await db.execute("PRAGMA user_version")).fetchone())[0]
    steps = migrations()
    if current > len(steps):
        raise SchemaError(f"database schema version {current} is newer than this vspd supports "
                          f"({len(steps)}); upgrade vspd")
    for version, name, sql in steps[current:]:
        # executescript commits first; the whole migration runs as one transaction.
        await db.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")


__all__ = ["Store", "StoreError", "SchemaError", "WriteFailed", "FEE_NONE", "latest_version"]
