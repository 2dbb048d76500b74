"""The frontend role: owns the database, the exccd link, the voters, the site, the pipeline.

Like ElectrumX's controller, it wires everything in one place and runs it
in one task group; shutdown is that group being cancelled.
"""

import asyncio
import logging
import sqlite3
import time

from rpcclient import Exccd
from rpcclient.voterclient import VoterAddress
from vspd.base.config import Config
from vspd.base.errors import StartupError
from vspd.base.paths import key_file
from vspd.base.runlock import AlreadyRunning, RunLock
from vspd.base.sealing import Sealer, SealError, read_key_file
from vspd.base.tasks import every, run_until
from vspd.frontend.pipeline import CONSISTENCY_INTERVAL, PassReport, Pipeline
from vspd.frontend.repairs import Repairs
from vspd.frontend.replication import ReplicaError, Replicator
from vspd.frontend.voterpool import VoterPool
from vspd.store import Store, StoreError
from web.api.context import AppContext
from web.api.wire import Signer
from web.http.app import start_runner
from web.http.connguard import Limits
from web.http.fastlane import FastLaneSite
from web.http.metrics import METRICS_KEY, Metrics
from web.pages.record import RECORD_KEY, Record

log = logging.getLogger("frontend")
STATS_INTERVAL = 60.0
SAMPLE_INTERVAL = 300.0  # seconds between samples of the tickets' and voters' state


class Frontend:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.new_block = asyncio.Event()
        self.ctx: AppContext | None = None
        self.metrics: Metrics | None = None  # the site's (its app owns them), set once the site is built
        self.record: Record | None = None
        self.bound_port: int | None = None
        self._probe_failing = False  # the last replica probe failed (logged once per change)

    async def on_block(self, header_hex: str) -> None:
        if self.ctx is not None:
            self.ctx.unknown_tickets.clear()  # a block may hold any of them
        self.new_block.set()

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        if not cfg.dbpath.exists():
            raise StartupError(f"database {cfg.dbpath} does not exist; create it with "
                               f"`vspadmin --homedir={cfg.homedir} --network={cfg.net.name} createdatabase <xpub>`")
        lock = RunLock(cfg.datadir, "vspd frontend")
        try:
            lock.acquire()
        except AlreadyRunning as e:
            raise StartupError(str(e)) from None
        try:
            await self._run_locked(stop)
        finally:
            lock.release()

    async def _run_locked(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        try:
            replicator = Replicator(
                cfg.dbpath, cfg.backupreplica, cfg.datadir / "litestream.yml", cfg.logdir / "litestream.log",
                cfg.backupsyncinterval, cfg.backupmaxfailing, cfg.backupsftpkey, cfg.backupsftphostkey,
                cfg.backupackwait)
        except ReplicaError as e:
            raise StartupError(f"option backupreplica: {e}") from None
        await asyncio.to_thread(replicator.reap_stale)  # a killed frontend's litestream: before we write
        try:
            sealer = Sealer(read_key_file(key_file(cfg.datadir)))
            store = await Store.open(cfg.dbpath, sealer)
        except (SealError, StoreError) as e:
            raise StartupError(str(e)) from None
        try:
            busy, frames, moved = await store.checkpoint()
            if frames:
                log.info("checkpointed %d WAL frames left by the last run before litestream starts", moved)
        except sqlite3.Error as e:  # not fatal: litestream may still cope
            log.warning("cannot checkpoint the WAL before litestream starts: %s", e)
        voters: VoterPool | None = None
        try:
            try:
                signer = Signer(await store.get_key("signingseed"))
                await store.current_xpub()
            except (SealError, StoreError) as e:
                raise StartupError(str(e)) from None
            host, port = cfg.exccdhost
            exccd = Exccd(cfg.net, host, port, cfg.exccduser, cfg.exccdpass, cfg.exccdcert,
                          on_block=self.on_block)
            closed, closedmsg = cfg.vspclosed, cfg.vspclosedmsg
            if not closed and await store.get_setting("vspclosed") == "true":
                closed = True  # closed from the admin page: that outlives restarts
                closedmsg = await store.get_setting("vspclosedmsg") or ""
            voters = VoterPool(
                [VoterAddress(*v) for v in cfg.voters], cfg.voterca, cfg.tlscert, cfg.tlskey, cfg.net.name,
                cfg.maxlag, cfg.minvoters,
                local_height=lambda: exccd.height, interval=cfg.healthinterval)
            pipeline = Pipeline(store, exccd, voters, cfg.net, on_changed=self._after_pass)
            repairs = Repairs(voters, pipeline.check_voter, CONSISTENCY_INTERVAL)
            voters.on_repair = repairs.request
            ctx = self.ctx = AppContext(  # filled here, once: the handlers only read what they share
                net=cfg.net, store=store, exccd=exccd, signer=signer, vspfee=cfg.vspfee,
                vspclosed=closed, vspclosedmsg=closedmsg, designation=cfg.designation,
                supportemail=cfg.supportemail, trusted_proxies=frozenset(cfg.trustedproxies),
                voters=voters, pipeline=pipeline, replication=replicator, adminpass=cfg.adminpass,
                cookie_secret=await store.get_key("cookiesecret"),
                session_generation=int(await store.get_setting("sessiongeneration") or 0),
                ticketpage=cfg.ticketpage)
            if cfg.net.name == "mainnet" and cfg.backupreplica.kind == "file":
                log.warning("backups go to the local folder %s: that is not off-site", cfg.backupreplica.path)
            log.info("vspd frontend on %s; VSP pubkey %s; %d voters", cfg.net.name, signer.pubkey_b64,
                     voters.total)
            if cfg.vspclosed:
                log.warning("the VSP is closed: new tickets are refused")
            limits = Limits(cfg.headtimeout, cfg.bodytimeout, cfg.idletimeout, cfg.sendtimeout, cfg.maxclientconns)
            runner = await start_runner(ctx, cfg.webserverdebug, limits.idle)
            self.metrics, self.record = runner.app[METRICS_KEY], runner.app[RECORD_KEY]
            try:
                lhost, lport = cfg.listen
                site = FastLaneSite(ctx, runner, lhost or None, lport, limits)
                try:
                    self.bound_port = await site.start()
                except OSError as e:
                    raise StartupError(f"option listen: cannot listen on {lhost}:{lport}: {e.strerror}") from None
                log.info("listening on %s:%d", lhost or "*", self.bound_port)
                interval = 1.0 if cfg.webserverdebug else STATS_INTERVAL
                try:
                    await run_until(stop, exccd.run(), voters.run(), replicator.run(),
                                    every(interval, self._refresh_stats, first_delay=0),
                                    every(300, self._mark_up, first_delay=0),
                                    # once the voters have answered a first health check, then every 5 minutes
                                    every(SAMPLE_INTERVAL, self._sample_day, first_delay=2 * cfg.healthinterval + 1),
                                    every(cfg.healthinterval, self._watch_disk, first_delay=0),
                                    every(cfg.healthinterval, self._probe_replica,
                                          first_delay=cfg.healthinterval),
                                    self._block_worker(), repairs.run())
                finally:
                    await site.stop()
            finally:
                await runner.cleanup()
        finally:
            if voters is not None:
                await voters.close()
            await store.close()
            log.info("frontend stopped")

    async def _refresh_stats(self, recount: bool = True) -> None:
        try:
            await self.ctx.stats.refresh(recount)
            await self.record.refresh()
        except Exception:
            log.exception("stats refresh failed")

    async def _mark_up(self) -> None:
        try:
            await self.ctx.store.mark_up()
        except StoreError as e:
            log.warning("cannot record uptime: %s", e)

    async def _watch_disk(self) -> None:
        """The database's free space each health interval, for /status; after a write the disk refused,
        one small write too, so that /status clears as soon as there is room, block or no block."""
        try:
            await self.ctx.store.check_space()
        except OSError as e:
            log.warning("cannot read the free space of %s: %s", self.cfg.datadir, e)
        if self.ctx.store.write_problem is not None:
            try:
                await self.ctx.store.probe_write()
            except StoreError as e:
                log.debug("the database still refuses writes: %s", e)  # /status says so

    async def _probe_replica(self) -> None:
        """When nothing was synced for a health interval, one small write synced to the replica.

        Between registrations litestream has nothing to send, so an unreachable replica went unseen
        until the next staker was refused (soak, seed 1025855847: an 11 s outage with no registration
        never reached /status). The write makes litestream reach the replica; durable() marks it
        behind, or clears that, as for a payfee.
        """
        replicator, store = self.ctx.replication, self.ctx.store
        age = replicator.last_sync_age()
        if not replicator.control_ready or (age is not None and age < self.cfg.healthinterval
                                            and not replicator.behind):
            return
        try:
            await store.check_space()  # afresh: _watch_disk's last reading may predate a fill
        except OSError:
            return
        if store.space_problem() is not None:  # no probe into a full disk: /status says that, and a failed
            return                             # probe write would put its own words in place of it
        try:
            await store.set_state("replica_probe", int(time.time()))
        except StoreError as e:
            log.debug("no replica probe: the database refuses writes: %s", e)  # /status says so
            return
        why = await replicator.durable()
        if bool(why) != self._probe_failing:  # one line per change, not one per interval
            self._probe_failing = bool(why)
            if why:
                log.warning("the backup replica did not take a probe write: %s", why)
            else:
                log.info("the backup replica takes writes again")

    async def _sample_day(self) -> None:
        """A sample of the tickets' and the voters' state for the record (web/pages/record.py draws it)."""
        ctx = self.ctx
        try:
            tip = ctx.voters.tip()
            await ctx.store.sample_day(await ctx.store.state_counts(), [
                (v.name, v.healthy, max(tip - v.health.wallet_height, 0) if v.health is not None else 0)
                for v in ctx.voters if v.checked])  # not polled yet: no sample
        except StoreError as e:
            log.warning("cannot record the day's sample: %s", e)

    async def _after_pass(self, report: PassReport) -> None:
        self.metrics.pass_seconds.observe(report.seconds)
        if report.reorg_depth:
            self.metrics.reorganisations.inc()
            self.metrics.reorganisation_depth.set(report.reorg_depth)
        await self._refresh_stats(recount=report.changes > 0)  # the height changes every block

    async def _block_worker(self) -> None:
        """One pipeline pass at start and per block; notifications that pile up coalesce."""
        if await self.ctx.exccd.wait_connected(30):
            await self._pass()
        while True:
            await self.new_block.wait()
            self.new_block.clear()
            await self._pass()

    async def _pass(self) -> None:
        """A pass a write failed in (a full disk) stops there; the next block's pass redoes it."""
        try:
            await self.ctx.pipeline.run_pass()
        except StoreError as e:
            log.warning("block pass stopped, redone at the next block: %s", e)

