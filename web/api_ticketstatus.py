"""POST /api/v3/ticketstatus: what the VSP knows of a ticket (works while closed)."""

from aiohttp import web

from vspd.store import Ticket

from .context import AppContext
from .ticketchecks import authenticate, read_body
from .wire import APIError, ErrorCode, b64, go_json, signed_response


async def handle(ctx: AppContext, request: web.Request) -> web.Response:
    body = await read_body(request)
    auth = await authenticate(ctx, request, body)
    if auth.ticket is None:
        raise APIError(ErrorCode.UNKNOWN_TICKET)
    return signed_response(ctx.signer, status_body(ctx, auth.ticket, auth.alt_sign_address, body))


def status_body(ctx: AppContext, t: Ticket, alt_sign_address: str | None, request_body: bytes) -> bytes:
    """The answer's JSON, here and in web/fastlane.py alike."""
    return go_json({
        "timestamp": ctx.now(), "ticketconfirmed": t.confirmed, "feetxstatus": t.fee_tx_status,
        "feetxhash": t.fee_tx_hash, "altsignaddress": alt_sign_address or "",
        "votechoices": t.vote_choices, "tspendpolicy": t.tspend_policy,
        "treasurypolicy": t.treasury_policy, "request": b64(request_body)})
