"""Opening the database, migrations, the connections, and `Store`, which joins the parts.

One writer connection behind an asyncio.Lock (every write is one short
transaction, committed before the caller answers anyone) and one reader
connection, so readers see only committed rows and never wait for writers
(WAL). The queries live with what they store, one module each, as
decred/vspd's database/: tickets.py, votechanges.py, altsign.py,
feexpubs.py, settings.py (keys, settings, the admin log), record.py (the
public record), upkeep.py (uptime, free space, state, the file) and
importing.py (importvspd). Each is a part of `Store` over `StoreBase` here.

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

from .altsign import AltSignPart
from .blocks import BlocksPart
from .common import SchemaError, StoreError, WriteFailed
from .feexpubs import FeeXPubsPart
from .importing import ImportPart
from .models import FEE_NONE
from .record import RecordPart
from .settings import SettingsPart
from .tickets import TicketsPart
from .upkeep import LOW_SPACE, UpkeepPart
from .votechanges import MAX_VOTE_CHANGES, VoteChangesPart

BUSY_TIMEOUT_MS = 5000
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
HOT_ROWS = 4096  # kept reads (a ticket row is ~1 KB); all forgotten at the next write


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


class StoreBase:
    """The connections, the one writer's transactions, and the reads every part makes."""

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


class Store(TicketsPart, BlocksPart, VoteChangesPart, AltSignPart, FeeXPubsPart, SettingsPart, RecordPart, UpkeepPart,
            ImportPart, StoreBase):
    """The frontend database. Create with `await Store.open(path, sealer)`."""


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


async def _configure(db: aiosqlite.Connection) -> None:
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await db.execute("PRAGMA foreign_keys = ON")
    # Checkpoints are litestream's (it runs whenever the frontend does): SQLite's
    # autocheckpoint at 1000 WAL pages races litestream 0.5's own and leaves the
    # replica missing pages, which restores as a corrupt database (see
    # tests/frontend/test_replication_checkpoint.py). The frontend's start checkpoints
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
