"""POST /api/v3/ticketstatus: what the VSP knows of a ticket (works while closed)."""

from aiohttp import web

from .context import AppContext
from .ticketchecks import authenticate, read_body
from .wire import APIError, ErrorCode, b64, signed_json


async def handle(ctx: AppContext, request: web.Request) -> web.Response:
    body = await read_body(request)
    auth = await authenticate(ctx, request, body)
    t = auth.ticket
    if t is None:
        raise APIError(ErrorCode.UNKNOWN_TICKET)
    alt = await ctx.store.get_alt_sign(t.hash)
    resp, _, _ = signed_json(ctx.signer, {
        "timestamp": ctx.now(), "ticketconfirmed": t.confirmed, "feetxstatus": t.fee_tx_status,
        "feetxhash": t.fee_tx_hash, "altsignaddress": alt.address if alt else "",
        "votechoices": t.vote_choices, "tspendpolicy": t.tspend_policy,
        "treasurypolicy": t.treasury_policy, "request": b64(body)})
    return resp
