"""The two hottest requests, answered ahead of aiohttp's router and middleware chain.

GET /api/v3/vspinfo and GET / change only with the chain and the voters:
their bytes are kept ready (stats.py signs the one, pages.py renders the
other) and answered here, counted for /metrics. Neither needs what the
middlewares add: a GET passes the CSRF check, a 200 needs no error page,
and these answers take microseconds, below the latency histogram's first
bucket. While their bytes are not ready, and for every other request,
the application answers as usual; so an answer from here is always the
one the application would have given.
"""

from typing import Callable

from aiohttp import web

from .context import AppContext
from .pages import home_page
from .wire import SIGNATURE_HEADER


def _vspinfo(ctx: AppContext, request: web.Request) -> web.Response | None:
    ready = ctx.stats.ready_vspinfo()
    if ready is None:
        return None
    body, signature = ready
    return web.Response(body=body, content_type="application/json", charset="utf-8",
                        headers={SIGNATURE_HEADER: signature})


def _home(ctx: AppContext, request: web.Request) -> web.Response | None:
    return home_page(ctx, request, render=False) if ctx.stats.stats is not None else None


HOT: dict[tuple[str, str], Callable[[AppContext, web.Request], web.Response | None]] = {
    ("GET", "/api/v3/vspinfo"): _vspinfo,
    ("GET", "/"): _home,
}


def install(server: web.Server, ctx: AppContext) -> None:
    """Put the hot paths in front of the handler the runner made for the application."""
    app_handler = server.request_handler
    counts = ctx.metrics.hot_requests

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        answer = HOT.get((request.method, request.raw_path))
        if answer is not None:
            resp = answer(ctx, request)
            if resp is not None:
                counts[request.raw_path] += 1
                return resp
        return await app_handler(request)

    server.request_handler = dispatch
