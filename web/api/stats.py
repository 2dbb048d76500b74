"""The numbers of /vspinfo and the home page, and the signed body built from them.

The body is kept signed, not built per request: it is rebuilt and
re-signed when a number changes, or when it is asked for in a later second
than the one its `timestamp` says (the Go vspd sends the current time), so
at most once a second and only while someone asks.
"""

import logging
from dataclasses import dataclass

from rpcclient import NodeUnavailable, RPCError
from vspd.frontend import feecap
from vspd.version import __version__
from web.api.wire import go_float, go_json

log = logging.getLogger("web.stats")


@dataclass(frozen=True)
class Stats:
    vspclosed: bool
    vspclosedmsg: str
    feepercentage: float
    voting: int
    voted: int
    revoked: int  # all revocations: missed + expired (+ legacy revoked)
    expired: int
    missed: int
    blockheight: int
    pool_size: int
    totalvotingwallets: int
    votingwalletsonline: int

    @property
    def network_proportion(self) -> float:
        return self.voting / self.pool_size if self.pool_size else 0.0

    @property
    def miss_rate(self) -> float:
        done = self.voted + self.revoked
        return self.missed / done if done else 0.0

    @property
    def expired_rate(self) -> float:
        done = self.voted + self.revoked
        return self.expired / done if done else 0.0


class StatsCache:
    def __init__(self, ctx):
        self.ctx = ctx
        self.stats: Stats | None = None
        self._counts: dict | None = None
        self.updated = 0
        self._body: bytes | None = None
        self._sig: str | None = None
        self._second = 0  # the timestamp in _body
        self.fee_warning: str | None = None  # the fee above what exccwallet pays (vspd/frontend/feecap.py), for the home page

    async def refresh(self, recount: bool = True) -> Stats:
        """Re-read the numbers; `recount=False` reuses the ticket counts (nothing changed)."""
        ctx = self.ctx
        if recount or self._counts is None:
            self._counts = await ctx.store.ticket_counts()
        counts = self._counts
        height, pool = (self.stats.blockheight, self.stats.pool_size) if self.stats else (0, 0)
        if ctx.exccd.connected:
            try:
                best = await ctx.exccd.best_block()
                height, pool = best.height, best.pool_size
                now, nxt = await ctx.exccd.stake_difficulty()
                self.fee_warning = feecap.quotes(height, now, nxt, ctx.vspfee, ctx.net).problem()
            except (NodeUnavailable, RPCError) as e:
                log.warning("cannot refresh block height and ticket price: %s", e)
        voters = ctx.voters
        online, total = (len(voters.healthy()), voters.total) if voters is not None else (0, 0)
        stats = Stats(ctx.vspclosed, ctx.vspclosedmsg, ctx.vspfee, counts[""], counts["voted"],
                      counts["revoked"] + counts["expired"] + counts["missed"], counts["expired"],
                      counts["missed"], height, pool, total, online)
        if stats != self.stats:
            self.stats = stats
            self._body = None
        self.updated = ctx.now()
        return stats

    def _build(self) -> None:
        s, ctx = self.stats, self.ctx
        self._body = go_json({
            "apiversions": [3], "timestamp": self._second, "pubkey": ctx.signer.pubkey_b64,
            "feepercentage": go_float(s.feepercentage), "vspclosed": s.vspclosed,
            "vspclosedmsg": s.vspclosedmsg, "network": ctx.net.name, "vspdversion": __version__,
            "voting": s.voting, "voted": s.voted, "totalvotingwallets": s.totalvotingwallets,
            "votingwalletsonline": s.votingwalletsonline, "revoked": s.revoked, "expired": s.expired,
            "missed": s.missed, "blockheight": s.blockheight,
            "estimatednetworkproportion": go_float(s.network_proportion, 32)})
        self._sig = ctx.signer.sign(self._body)

    def ready_vspinfo(self) -> tuple[bytes, str] | None:
        """The signed body, or None before the first refresh (without waiting for one)."""
        if self.stats is None:
            return None
        now = self.ctx.now()
        if self._body is None or now != self._second:
            self._second = now
            self._build()
        return self._body, self._sig

    async def vspinfo(self) -> tuple[bytes, str]:
        if self.stats is None:
            await self.refresh()
        return self.ready_vspinfo()
