"""Builds the frontend's aiohttp application."""

from aiohttp import web

from . import api, health, metrics
from .context import CTX_KEY, AppContext

# aiohttp's own limit stays above ours so that oversized API bodies get a
# signed code-0 error from read_body rather than a bare 413.
CLIENT_MAX_SIZE = 2 << 20


def create_app(ctx: AppContext) -> web.Application:
    if ctx.metrics is None:
        ctx.metrics = metrics.Metrics()
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[metrics.count_requests])
    app[CTX_KEY] = ctx
    api.add_routes(app)
    health.add_routes(app)
    metrics.add_routes(app)
    return app
