"""GET /api/v3/vspinfo: the signed body kept by the stats cache."""

from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import APIAnswer


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    return APIAnswer(200, *await ctx.stats.vspinfo())
