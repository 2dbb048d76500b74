"""The frontend role: owns the database, the exccd link, the site and the pipeline.

Like ElectrumX's controller, it wires everything in one place and runs it
in one task group; shutdown is that group being cancelled.
"""

import asyncio
import logging

from aiohttp import web

from rpcclient import Exccd
from web.app import create_app
from web.context import AppContext
from web.stats import StatsCache
from web.wire import Signer

from .config import Config
from .errors import StartupError
from .paths import key_file
from .store import Store, StoreError
from .store.sealing import SealError, Sealer, read_key_file
from .tasks import every, run_until

log = logging.getLogger("frontend")
STATS_INTERVAL = 60.0


class Frontend:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.new_block = asyncio.Event()
        self.ctx: AppContext | None = None
        self.bound_port: int | None = None

    async def on_block(self, header_hex: str) -> None:
        self.new_block.set()

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        if not cfg.dbpath.exists():
            raise StartupError(f"database {cfg.dbpath} does not exist; create it with "
                               f"`vspadmin --homedir={cfg.homedir} --network={cfg.net.name} createdatabase <xpub>`")
        try:
            sealer = Sealer(read_key_file(key_file(cfg.datadir)))
            store = await Store.open(cfg.dbpath, sealer)
        except (SealError, StoreError) as e:
            raise StartupError(str(e)) from None
        try:
            try:
                signer = Signer(await store.get_key("signingseed"))
                await store.current_xpub()
            except (SealError, StoreError) as e:
                raise StartupError(str(e)) from None
            host, port = cfg.exccdhost
            exccd = Exccd(cfg.net, host, port, cfg.exccduser, cfg.exccdpass, cfg.exccdcert,
                          on_block=self.on_block)
            ctx = self.ctx = AppContext(
                net=cfg.net, store=store, exccd=exccd, signer=signer, vspfee=cfg.vspfee,
                vspclosed=cfg.vspclosed, vspclosedmsg=cfg.vspclosedmsg, designation=cfg.designation,
                supportemail=cfg.supportemail, trusted_proxies=frozenset(cfg.trustedproxies))
            ctx.stats = StatsCache(ctx)
            log.info("vspd frontend on %s; VSP pubkey %s", cfg.net.name, signer.pubkey_b64)
            if cfg.vspclosed:
                log.warning("the VSP is closed: new tickets are refused")
            runner = web.AppRunner(create_app(ctx), access_log=None, shutdown_timeout=10)
            await runner.setup()
            try:
                lhost, lport = cfg.listen
                site = web.TCPSite(runner, lhost or None, lport)
                try:
                    await site.start()
                except OSError as e:
                    raise StartupError(f"option listen: cannot listen on {lhost}:{lport}: {e.strerror}") from None
                self.bound_port = site._server.sockets[0].getsockname()[1]
                log.info("listening on %s:%d", lhost or "*", self.bound_port)
                interval = 1.0 if cfg.webserverdebug else STATS_INTERVAL
                await run_until(stop, exccd.run(), every(interval, self._refresh_stats, first_delay=0),
                                self._block_worker())
            finally:
                await runner.cleanup()
        finally:
            await store.close()
            log.info("frontend stopped")

    async def _refresh_stats(self) -> None:
        try:
            await self.ctx.stats.refresh()
        except Exception:
            log.exception("stats refresh failed")

    async def _block_worker(self) -> None:
        """One pass per block notification; notifications that pile up coalesce."""
        while True:
            await self.new_block.wait()
            self.new_block.clear()
            await self._refresh_stats()
