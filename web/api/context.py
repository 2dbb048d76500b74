"""What every handler needs, in one object stored on the aiohttp app."""

import ipaddress
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from aiohttp import web

from rpcclient import Exccd
from vspd.chain import bip32
from vspd.chain.errors import ChainError
from vspd.chain.params import NetParams
from vspd.frontend.pipeline import Pipeline
from vspd.frontend.replication import Replicator
from vspd.frontend.voterpool import VoterPool
from vspd.store import Store
from web.api.stats import StatsCache
from web.api.unknown_tickets import UnknownTickets
from web.api.wire import Signer

log = logging.getLogger("web")
MAX_INVALID_CHILDREN = 2


@lru_cache(maxsize=8)
def _external_branch(xpub: str, net: NetParams) -> bip32.ExtendedPublicKey:
    return bip32.decode_xpub(xpub, net).child(0)


def next_fee_address(xpub: str, last_index: int, net: NetParams) -> tuple[int, str]:
    """The first valid index after last_index and its address (xpub/0/i)."""
    branch = _external_branch(xpub, net)
    index = last_index
    for _ in range(MAX_INVALID_CHILDREN + 1):
        index += 1
        try:
            return index, str(branch.child(index).address())
        except ChainError:
            log.warning("fee xpub child %d is invalid; skipping it", index)
    raise ChainError("too many invalid fee address children in a row")


@dataclass
class AppContext:
    """What the handlers share; filled once, by whoever builds it (the frontend, or a test).

    The site's own structures (the home pages, the record, the metrics) are not here: the app
    factory (web/http/app.py) owns them, each under its own key on the aiohttp application.
    """
    net: NetParams
    store: Store
    exccd: Exccd
    signer: Signer
    vspfee: float
    vspclosed: bool = False
    vspclosedmsg: str = ""
    designation: str = "Voting Service Provider"
    supportemail: str = ""
    trusted_proxies: frozenset = field(default_factory=lambda: frozenset({"127.0.0.1", "::1"}))
    stats: StatsCache = field(init=False)  # made with the context (__post_init__): it reads the context
    clock: Callable[[], float] = time.time
    voters: VoterPool | None = None  # None only in API unit tests
    pipeline: Pipeline | None = None
    adminpass: str = ""
    replication: Replicator | None = None
    cookie_secret: bytes = b""
    session_generation: int = 0  # bumped by each logout: older session cookies stop working
    unknown_tickets: UnknownTickets = field(default_factory=UnknownTickets)
    ticketpage: bool = False  # the staker's ticket page (web/pages/ticketpage.py), an operator's option

    def __post_init__(self) -> None:
        self.stats = StatsCache(self)

    def now(self) -> int:
        return int(self.clock())

    def derive(self, xpub: str, last_index: int) -> tuple[int, str]:
        return next_fee_address(xpub, last_index, self.net)

    def client_ip(self, request: web.Request) -> str:
        return self.client_address(request.remote, request.headers.get("X-Forwarded-For", ""),
                                   request.headers.get("X-Real-IP", ""))

    def client_address(self, peer: str | None, forwarded_for: str, real_ip: str) -> str:
        """Left-most valid X-Forwarded-For (else X-Real-IP) entry, but only from a trusted proxy."""
        peer = peer or ""
        if peer in self.trusted_proxies:
            for value in (forwarded_for, real_ip):
                for part in value.split(","):
                    try:
                        return str(ipaddress.ip_address(part.strip()))
                    except ValueError:
                        continue
        return peer


CTX_KEY = web.AppKey("vspd_ctx", AppContext)


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX_KEY]
