"""POST /api/v3/ticketstatus: what the VSP knows of a ticket (works while closed)."""

from web.api.checks import authenticate
from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import APIAnswer, APIError, ErrorCode, b64, signed_answer


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    body = request.read()
    auth = await authenticate(ctx, request)
    if auth.ticket is None:
        raise APIError(ErrorCode.UNKNOWN_TICKET)
    t, alt = auth.ticket, auth.alt_sign_address
    return signed_answer(ctx.signer, {
        "timestamp": ctx.now(), "ticketconfirmed": t.confirmed, "feetxstatus": t.fee_tx_status,
        "feetxhash": t.fee_tx_hash, "altsignaddress": alt or "", "votechoices": t.vote_choices,
        "tspendpolicy": t.tspend_policy, "treasurypolicy": t.treasury_policy, "request": b64(body)})
