"""The voter role: the gRPC service beside one voting exccwallet and its own exccd.

It holds no database: the frontend is the source of truth and repairs a
voter that drifted. What it does keep are the paid tickets the frontend
handed over before their fee confirmed (vspd/voter/pending.py, sealed with the
voter's own key file `data/<network>/voter.key`, created at first start),
so that its carrier (vspd/voter/carrier.py) can take them to the wallet while the
frontend is down. This module only wires the links, the carrier and the server.
"""

import asyncio
import logging
import os
import socket

from rpcclient import Exccd
from rpcclient.exccwallet import ExccWallet
from vspd.base import tls as certs
from vspd.base.config import Config
from vspd.base.errors import StartupError
from vspd.base.identity import host_id, node_id
from vspd.base.sealing import SealError
from vspd.base.tasks import run_until
from vspd.voter.carrier import Carrier
from vspd.voter.pending import PendingStore, open_sealer
from vspd.voter.service import ListenError, VoterService, serve, server_credentials

log = logging.getLogger("voter")


def check_can_listen(host: str, port: int) -> None:
    """Ask the kernel before grpc does: grpc says only 'Failed to bind', after its own line on stderr."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family):
            pass
    except OSError as e:
        raise ListenError(f"cannot listen on {host or '*'}:{port}: {os.strerror(e.errno) if e.errno else e}") from None


class Voter:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.bound_port: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        host, port = cfg.exccdhost
        lhost, lport = cfg.grpclisten
        listen = f"[{lhost}]:{lport}" if ":" in lhost else f"{lhost or '0.0.0.0'}:{lport}"
        try:  # before anything is written: a voter that cannot serve leaves its folder as it was
            check_can_listen(lhost, lport)
        except ListenError as e:
            raise StartupError(f"option grpclisten: {e}") from None
        try:
            pending = PendingStore(cfg.datadir, open_sealer(cfg.datadir))
            pending.load()
        except (SealError, OSError) as e:
            raise StartupError(f"handed-over tickets in {cfg.datadir}: {e}") from None

        async def on_block(header_hex: str) -> None:
            carrier.wake.set()
        exccd = Exccd(cfg.net, host, port, cfg.exccduser, cfg.exccdpass, cfg.exccdcert, on_block=on_block)
        whost, wport = cfg.wallethost
        wallet = ExccWallet(cfg.net, whost, wport, cfg.walletuser, cfg.walletpass, cfg.walletcert)
        carrier = Carrier(pending, exccd, wallet, cfg.net)
        service = VoterService(cfg.net.name, exccd, wallet, node_id(cfg.exccdcert), host_id(),
                               certs.days_left(cfg.tlscert), carrier=carrier)
        try:
            server = await serve(service, listen, server_credentials(cfg.voterca, cfg.tlscert, cfg.tlskey))
        except ListenError as e:
            raise StartupError(f"option grpclisten: {e}") from None
        log.info("voter serving gRPC on %s (network %s)", listen, cfg.net.name)
        try:
            await run_until(stop, exccd.run(), wallet.run(), carrier.run())
        finally:
            await server.stop(grace=5)
            log.info("voter stopped")
