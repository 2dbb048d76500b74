"""Prometheus metrics at /metrics (prometheus-client), one registry per app."""

import collections
import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from web.api.context import ctx_of


class Metrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("vspd_http_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram("vspd_http_request_seconds", "HTTP request latency", ["endpoint"], registry=r,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.voters_healthy = Gauge("vspd_voters_healthy", "Healthy voters", registry=r)
        self.voters_total = Gauge("vspd_voters_total", "Configured voters", registry=r)
        self.voter_lag = Gauge("vspd_voter_lag_blocks", "Blocks a voter's wallet lags the tip", ["voter"],
                               registry=r)
        self.voter_up = Gauge("vspd_voter_healthy", "1 if the voter is healthy", ["voter"], registry=r)
        self.voter_missing = Gauge("vspd_voter_missing_tickets", "Votable tickets not yet added to the voter",
                                   ["voter"], registry=r)
        self.tickets = Gauge("vspd_tickets", "Fee-confirmed tickets by outcome", ["outcome"], registry=r)
        self.exccd_up = Gauge("vspd_exccd_connected", "1 if the frontend's exccd is connected", registry=r)
        self.pass_seconds = Histogram("vspd_pipeline_pass_seconds", "Block pipeline pass duration", registry=r,
                                      buckets=(.001, .005, .01, .05, .1, .5, 1, 5, 10, 30))
        self.reorganisations = Counter("vspd_chain_reorganisations", "Reorganisations that took blocks the "
                                       "pipeline had read off the main chain", registry=r)
        self.reorganisation_depth = Gauge("vspd_chain_last_reorganisation_depth", "Blocks of ours the last "
                                          "reorganisation took off the main chain", registry=r)
        self.backup_running = Gauge("vspd_backup_running", "1 if litestream is running", registry=r)
        self.backup_sync_age = Gauge("vspd_backup_last_sync_age_seconds", "Seconds since the last replica sync",
                                     registry=r)
        self.backup_restarts = Gauge("vspd_backup_restarts", "Times litestream had to be restarted", registry=r)
        self.block_height = Gauge("vspd_block_height", "Best block height of the frontend's exccd", registry=r)
        # (endpoint, status) -> answers of web/http/fastlane.py, counted plainly as they are the most frequent;
        # those at hand take microseconds and stay out of the latency histogram, handlers' go in it
        self.hot_requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self._latency_of: dict[str, object] = {}  # endpoint -> its histogram child, looked up once

    def observe_latency(self, endpoint: str, seconds: float) -> None:
        child = self._latency_of.get(endpoint)
        if child is None:
            child = self._latency_of[endpoint] = self.latency.labels(endpoint)
        child.observe(seconds)

    def fold_hot_requests(self) -> None:
        """Add the fast lane's counts to the request counter."""
        for (endpoint, status), n in self.hot_requests.items():
            self.requests.labels(endpoint, str(status)).inc(n)
        self.hot_requests.clear()


# One Metrics per app, made by the app factory (web/http/app.py); the fast lane counts into it too, and
# the frontend observes its block passes there.
METRICS_KEY = web.AppKey("vspd_metrics", Metrics)


def _endpoint(request: web.Request) -> str:
    route = request.match_info.route
    return route.resource.canonical if route.resource is not None else "unmatched"


@web.middleware
async def count_requests(request: web.Request, handler):
    t0 = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        m = request.app[METRICS_KEY]
        ep = _endpoint(request)
        m.requests.labels(ep, str(status)).inc()
        m.latency.labels(ep).observe(time.perf_counter() - t0)


async def metrics(request: web.Request) -> web.Response:
    ctx, m = ctx_of(request), request.app[METRICS_KEY]
    m.fold_hot_requests()
    m.exccd_up.set(1 if ctx.exccd.connected else 0)
    if ctx.voters is not None:
        m.voters_total.set(ctx.voters.total)
        m.voters_healthy.set(len(ctx.voters.healthy()))
        for v in ctx.voters:
            m.voter_up.labels(v.name).set(1 if v.healthy else 0)
            m.voter_missing.labels(v.name).set(len(v.missing))
            if v.health is not None:
                m.voter_lag.labels(v.name).set(max(0, ctx.voters.tip() - v.health.wallet_height))
    if ctx.replication is not None:
        rep = ctx.replication
        m.backup_running.set(1 if rep.running else 0)
        m.backup_restarts.set(rep.restarts)
        age = rep.last_sync_age()
        m.backup_sync_age.set(age if age is not None else float("nan"))
    if ctx.stats is not None and ctx.stats.stats is not None:
        s = ctx.stats.stats
        m.block_height.set(s.blockheight)
        for outcome, n in (("voting", s.voting), ("voted", s.voted), ("expired", s.expired),
                           ("missed", s.missed), ("revoked", s.revoked)):
            m.tickets.labels(outcome).set(n)
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
