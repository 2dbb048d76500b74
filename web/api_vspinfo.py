"""GET /api/v3/vspinfo: the signed body kept by the stats cache."""

from aiohttp import web

from .context import AppContext
from .wire import SIGNATURE_HEADER


async def handle(ctx: AppContext, request: web.Request) -> web.Response:
    body, signature = await ctx.stats.vspinfo()
    return web.Response(body=body, content_type="application/json", charset="utf-8",
                        headers={SIGNATURE_HEADER: signature})
