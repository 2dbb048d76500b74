"""The voter role: the gRPC service beside one voting exccwallet and its own exccd.

It holds no database: the frontend is the source of truth and repairs a
voter that drifted. This module only wires the links and the server.
"""

import asyncio
import logging
import os
import socket

from rpcclient import Exccd
from rpcclient.exccwallet import ExccWallet
from rpcclient.voterserver import ListenError, VoterService, serve, server_credentials

from . import certs
from .config import Config
from .identity import host_id, node_id
from .errors import StartupError
from .tasks import run_until

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
        exccd = Exccd(cfg.net, host, port, cfg.exccduser, cfg.exccdpass, cfg.exccdcert)
        whost, wport = cfg.wallethost
        wallet = ExccWallet(cfg.net, whost, wport, cfg.walletuser, cfg.walletpass, cfg.walletcert)
        service = VoterService(cfg.net.name, exccd, wallet, node_id(cfg.exccdcert), host_id(),
                               certs.days_left(cfg.tlscert))
        lhost, lport = cfg.grpclisten
        listen = f"[{lhost}]:{lport}" if ":" in lhost else f"{lhost or '0.0.0.0'}:{lport}"
        try:
            check_can_listen(lhost, lport)
            server = await serve(service, listen, server_credentials(cfg.voterca, cfg.tlscert, cfg.tlskey))
        except ListenError as e:
            raise StartupError(f"option grpclisten: {e}") from None
        log.info("voter serving gRPC on %s (network %s)", listen, cfg.net.name)
        try:
            await run_until(stop, exccd.run(), wallet.run())
        finally:
            await server.stop(grace=5)
            log.info("voter stopped")
