"""The hottest requests, answered ahead of aiohttp's router and middleware chain.

GET /api/v3/vspinfo and GET / change only with the chain and the voters:
their bytes are kept ready (stats.py signs the one, pages.py renders the
other). POST /api/v3/ticketstatus of a ticket that the unknown-ticket
cache holds is a constant, signed once. These are answered here and
counted for /metrics; the middlewares add nothing to them (the CSRF rule
is applied here to the POST, no error page is involved, and they take
microseconds, below the latency histogram's first bucket). When an answer
is not ready, and for every other request, the application answers as
usual; so an answer from here is always the one the application would give.
"""

from typing import Awaitable, Callable

from aiohttp import web

from . import csrf
from .context import AppContext
from .pages import home_page
from .ticketchecks import known_unknown, read_body
from .wire import SIGNATURE_HEADER, APIError, ErrorCode, error_response

SMALL_BODY = 4096  # a ticketstatus request is ~80 bytes; larger ones take the usual way


async def _vspinfo(ctx: AppContext, request: web.BaseRequest) -> web.Response | None:
    ready = ctx.stats.ready_vspinfo()
    if ready is None:
        return None
    body, signature = ready
    return web.Response(body=body, content_type="application/json", charset="utf-8",
                        headers={SIGNATURE_HEADER: signature})


async def _home(ctx: AppContext, request: web.BaseRequest) -> web.Response | None:
    return home_page(ctx, request, render=False) if ctx.stats.stats is not None else None


async def _unknown_ticket_status(ctx: AppContext, request: web.BaseRequest) -> web.Response | None:
    declared = request.content_length
    if declared is None or declared > SMALL_BODY or not csrf.allowed(request.method, request.headers, request.host):
        return None
    if not known_unknown(ctx, await read_body(request)):  # the body stays on the request for the application
        return None
    return error_response(ctx.signer, APIError(ErrorCode.UNKNOWN_TICKET))


Hot = Callable[[AppContext, web.BaseRequest], Awaitable[web.Response | None]]
HOT: dict[tuple[str, str], Hot] = {
    ("GET", "/api/v3/vspinfo"): _vspinfo,
    ("GET", "/"): _home,
    ("POST", "/api/v3/ticketstatus"): _unknown_ticket_status,
}


def install(server: web.Server, ctx: AppContext) -> None:
    """Put the hot paths in front of the handler the runner made for the application."""
    app_handler = server.request_handler
    counts = ctx.metrics.hot_requests

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        answer = HOT.get((request.method, request.raw_path))
        if answer is not None:
            resp = await answer(ctx, request)
            if resp is not None:
                counts[request.raw_path, resp.status] += 1
                return resp
        return await app_handler(request)

    server.request_handler = dispatch
