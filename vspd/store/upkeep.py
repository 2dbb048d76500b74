"""Keeping the database and the process well: uptime, free space, write probes, checkpoints, state.

Nothing here is a stored thing of the VSP's customers: the hours the VSP
was up, whether the disk still takes writes, the pipeline's own counters,
and the file itself (checkpoint, backup, size).
"""

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import aiosqlite

from .common import StoreError, _now

LOW_SPACE = 1 << 20  # bytes free in the database's folder below which its disk counts as full


class UpkeepPart:
    """The uptime_hours and pipeline_state tables, the disk's free space, and the file."""

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

    async def mark_up(self, now: float | None = None) -> None:
        async with self.transaction() as db:
            await self._exec(db, "INSERT OR IGNORE INTO uptime_hours (hour) VALUES (?)",
                             (int((now or time.time()) // 3600),))

    async def uptime_hours(self, since: float) -> int:
        return (await self._read_one("SELECT COUNT(*) FROM uptime_hours WHERE hour >= ?",
                                     (int(since // 3600),)))[0]

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
