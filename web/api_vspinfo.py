"""GET /api/v3/vspinfo: the signed body kept by the stats cache."""

from .apirequest import APIRequest
from .context import AppContext
from .wire import APIAnswer


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    return APIAnswer(200, *await ctx.stats.vspinfo())
