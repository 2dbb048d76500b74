"""POST /api/v3/setaltsignaddr: register the one alternate signing address of a ticket."""

import logging

from vspd.chain import address
from vspd.chain.errors import ChainError
from vspd.store import StoreError
from vspd.store.models import AltSignAddr
from web.api import binding
from web.api.checks import authenticate, broadcast_ticket, internal, require_can_vote, require_node, require_open
from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import APIAnswer, APIError, ErrorCode, b64, signed_answer

log = logging.getLogger("web.api")


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    require_open(ctx)
    body = request.read()
    await broadcast_ticket(ctx, request)
    auth = await authenticate(ctx, request)
    require_node(ctx)
    req = request.bind(binding.SET_ALT_SIGN_ADDR)
    if await ctx.store.get_alt_sign(auth.ticket_hash) is not None:
        raise APIError(ErrorCode.BAD_REQUEST, "alternate sign address data already exists")
    try:
        alt = address.decode(req["altsignaddress"], ctx.net)
    except ChainError as e:
        raise APIError(ErrorCode.BAD_REQUEST, str(e)) from None
    if alt.kind != address.P2PKH:
        raise APIError(ErrorCode.BAD_REQUEST, "wrong type for alternate signing address")
    await require_can_vote(ctx, auth.ticket_hash)
    answer = signed_answer(ctx.signer, {"timestamp": ctx.now(), "request": b64(body)})
    try:
        await ctx.store.insert_alt_sign(AltSignAddr(
            auth.ticket_hash, str(alt), body.decode("utf-8", "replace"), request.signature, answer.body.decode(),
            answer.signature, ctx.now()))
    except StoreError as e:
        if await ctx.store.get_alt_sign(auth.ticket_hash) is not None:  # lost a race
            raise APIError(ErrorCode.BAD_REQUEST, "alternate sign address data already exists") from None
        raise internal("store alternate sign address", e) from None
    log.info("ticket %s: alternate sign address %s", auth.ticket_hash, alt)
    return answer
