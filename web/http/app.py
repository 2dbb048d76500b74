"""Builds the frontend's aiohttp application."""

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web.api import routes as api
from web.api.context import CTX_KEY, AppContext
from web.http import clientgone, csrf, metrics, serverlog
from web.pages import admin, health
from web.pages import site as pages
from web.pages import ticketpage
from web.pages.record import RECORD_KEY, Record

TEMPLATES = Path(__file__).parents[1] / "pages" / "templates"

# aiohttp's own limit stays above ours so that oversized API bodies get a
# signed code-0 error (web/api/request.py) rather than a bare 413.
CLIENT_MAX_SIZE = 2 << 20


def create_app(ctx: AppContext, debug: bool = False) -> web.Application:
    """The app, owning the site's own structures under their keys: the metrics, the record, the home pages.

    They sit above web.api, so the context cannot hold them; readers take them from the app, and the
    frontend from its runner's app.
    """
    app = web.Application(client_max_size=CLIENT_MAX_SIZE,
                          middlewares=[metrics.count_requests, csrf.protect, pages.html_errors,
                                       clientgone.quietly])
    app[CTX_KEY] = ctx
    app[metrics.METRICS_KEY] = metrics.Metrics()
    record = app[RECORD_KEY] = Record(ctx.store, ctx.clock)
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                               auto_reload=debug)
    app[pages.HOME_PAGES_KEY] = pages.HomePages(env, record)
    api.add_routes(app)
    pages.add_routes(app)
    admin.add_routes(app)
    ticketpage.add_routes(app)
    health.add_routes(app)
    metrics.add_routes(app)
    return app


async def start_runner(ctx: AppContext, debug: bool = False, keepalive_timeout: float = 75.0) -> web.AppRunner:
    """The application, set up; web/http/fastlane.py puts its listening socket in front of it."""
    runner = web.AppRunner(create_app(ctx, debug), access_log=None, shutdown_timeout=10, logger=serverlog.LOGGER,
                           keepalive_timeout=keepalive_timeout)
    await runner.setup()
    return runner
