"""POST /api/v3/setaltsignaddr: register the one alternate signing address of a ticket."""

import logging

from aiohttp import web

from vspd.chain import address
from vspd.chain.errors import ChainError
from vspd.store import StoreError
from vspd.store.models import AltSignAddr

from . import binding
from .context import AppContext
from .ticketchecks import authenticate, broadcast_ticket, internal, read_body, require_can_vote, require_node, require_open
from .wire import CLIENT_SIGNATURE_HEADER, APIError, ErrorCode, b64, signed_json

log = logging.getLogger("web.api")


async def handle(ctx: AppContext, request: web.Request) -> web.Response:
    require_open(ctx)
    body = await read_body(request)
    await broadcast_ticket(ctx, body)
    auth = await authenticate(ctx, request, body)
    require_node(ctx)
    req = binding.bind(body, binding.SET_ALT_SIGN_ADDR)
    if await ctx.store.get_alt_sign(auth.ticket_hash) is not None:
        raise APIError(ErrorCode.BAD_REQUEST, "alternate sign address data already exists")
    try:
        alt = address.decode(req["altsignaddress"], ctx.net)
    except ChainError as e:
        raise APIError(ErrorCode.BAD_REQUEST, str(e)) from None
    if alt.kind != address.P2PKH:
        raise APIError(ErrorCode.BAD_REQUEST, "wrong type for alternate signing address")
    await require_can_vote(ctx, auth.ticket_hash)
    resp, rsp_body, rsp_sig = signed_json(ctx.signer, {"timestamp": ctx.now(), "request": b64(body)})
    try:
        await ctx.store.insert_alt_sign(AltSignAddr(
            auth.ticket_hash, str(alt), body.decode("utf-8", "replace"),
            request.headers.get(CLIENT_SIGNATURE_HEADER, ""), rsp_body.decode(), rsp_sig, ctx.now()))
    except StoreError as e:
        if await ctx.store.get_alt_sign(auth.ticket_hash) is not None:  # lost a race
            raise APIError(ErrorCode.BAD_REQUEST, "alternate sign address data already exists") from None
        raise internal("store alternate sign address", e) from None
    log.info("ticket %s: alternate sign address %s", auth.ticket_hash, alt)
    return resp
