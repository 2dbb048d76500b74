"""POST /api/v3/payfee (step 2): take the fee transaction and the voting key."""

import logging

from rpcclient import NodeUnavailable, RPCError
from rpcclient.exccd import is_orphan_error, send_fee
from vspd.chain import address
from vspd.chain import tx as txmod
from vspd.chain import wif as wifmod
from vspd.chain.errors import ChainError
from vspd.chain.rules import key_votes_ticket, pays_fee
from vspd.store import StoreError
from vspd.store.models import FEE_BROADCAST, FEE_CONFIRMED, FEE_ERROR, FEE_NONE, FEE_RECEIVED
from web.api import binding, votechoices
from web.api.checks import authenticate, internal, require_can_vote, require_intake, require_node, require_open, \
    require_replicated
from web.api.context import AppContext
from web.api.history import record_exchange
from web.api.request import APIRequest
from web.api.wire import APIAnswer, APIError, ErrorCode, b64, signed_answer

log = logging.getLogger("web.api")


def _voting_key(req: dict, ctx: AppContext) -> wifmod.WIF:
    try:
        key = wifmod.decode(req["votingkey"], ctx.net)
        key.pubkey()
        return key
    except ChainError as e:
        raise APIError(ErrorCode.INVALID_PRIV_KEY, f"invalid private key: {e}") from None


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    require_open(ctx)
    require_intake(ctx)
    body = request.read()
    auth = await authenticate(ctx, request)
    require_node(ctx)
    ticket = auth.ticket
    if ticket is None:
        raise APIError(ErrorCode.UNKNOWN_TICKET)
    req = request.bind(binding.PAY_FEE)
    if ticket.fee_tx_status in (FEE_RECEIVED, FEE_BROADCAST, FEE_CONFIRMED):
        raise APIError(ErrorCode.FEE_ALREADY_RECEIVED)
    raw = await require_can_vote(ctx, ticket.hash)
    now = ctx.now()
    if ticket.fee_expired(now):
        raise APIError(ErrorCode.FEE_EXPIRED)
    key = _voting_key(req, ctx)
    bad_prefs = votechoices.problems(req, ctx.net)
    for name, err in bad_prefs.items():  # as upstream: logged, not stored, ticket still accepted
        log.warning("ticket %s: ignoring invalid %s: %s", ticket.hash, name, err)

    try:
        fee_tx = txmod.from_hex(req["feetx"])
    except ChainError as e:
        raise APIError(ErrorCode.INVALID_FEE_TX, f"invalid fee tx: {e}") from None
    problem = txmod.sanity_problem(fee_tx, ctx.net)
    if problem:
        raise APIError(ErrorCode.INVALID_FEE_TX, f"invalid fee tx: {problem}")
    try:
        fee_addr = address.decode(ticket.fee_address, ctx.net)
    except ChainError as e:
        raise internal("decode stored fee address", e) from None
    paid = txmod.paid_to(fee_tx, fee_addr)
    if paid <= 0:
        raise APIError(ErrorCode.INVALID_FEE_TX,
                       f"feetx did not include any payments for fee address {ticket.fee_address}")
    if not pays_fee(fee_tx, fee_addr, ticket.fee_amount):
        raise APIError(ErrorCode.FEE_TOO_SMALL)

    try:
        ticket_tx = txmod.from_hex(raw.hex)
    except ChainError as e:
        raise internal("decode ticket", e) from None
    if not key_votes_ticket(key, ticket_tx, ctx.net):
        raise APIError(ErrorCode.INVALID_PRIV_KEY, "voting address does not match provided private key")

    payment = {"voting_wif": key.encode(), "fee_tx_hex": req["feetx"].lower(), "fee_tx_hash": fee_tx.txid(),
               "fee_tx_status": FEE_RECEIVED}
    for name, attr in (("votechoices", "vote_choices"), ("tspendpolicy", "tspend_policy"),
                       ("treasurypolicy", "treasury_policy")):
        if name not in bad_prefs:
            payment[attr] = req[name]
    before = {name: getattr(ticket, name) for name in payment}
    try:  # only one fee per ticket, even for concurrent requests
        stored = await ctx.store.update_fields(ticket.hash, payment, {"fee_tx_status": (FEE_NONE, FEE_ERROR)})
    except StoreError as e:
        raise internal("store fee payment", e) from None
    if not stored:
        raise APIError(ErrorCode.FEE_ALREADY_RECEIVED)
    try:
        await require_replicated(ctx)  # before the fee is broadcast, and before the answer
    except APIError:
        await _unreceive(ctx, ticket.hash, payment["fee_tx_hash"], before)
        raise
    for name, value in payment.items():
        setattr(ticket, name, value)
    log.info("fee %s received for ticket %s (%d atoms)", ticket.fee_tx_hash, ticket.hash, paid)

    if ticket.confirmed:
        await broadcast_fee(ctx, ticket)
    if ctx.pipeline is not None:  # every voter gets it now, to finish the job even without us (issue 20)
        await ctx.pipeline.hand_over_now(ticket)  # after the broadcast: a fee we refuse is never handed over

    answer = signed_answer(ctx.signer, {"timestamp": now, "request": b64(body)})
    await record_exchange(ctx, ticket.hash, request, answer)
    return answer


async def broadcast_fee(ctx: AppContext, ticket) -> None:
    """Send the fee tx; on failure mark it `error` and tell the client why."""
    try:  # no look-up: any refusal but exccd's "already have" is the client's error here, as it always was
        await send_fee(ctx.exccd, ticket.fee_tx_hex, ticket.fee_tx_hash, look_up=False)
    except (RPCError, NodeUnavailable) as e:
        log.warning("cannot broadcast fee %s of ticket %s: %s", ticket.fee_tx_hash, ticket.hash, e)
        try:
            await ctx.store.update_fields(ticket.hash, {"fee_tx_status": FEE_ERROR}, _this_fee(ticket))
        except StoreError as se:
            log.error("cannot record fee error of %s: %s", ticket.hash, se)
        if isinstance(e, RPCError) and is_orphan_error(e):
            raise APIError(ErrorCode.CANNOT_BROADCAST_FEE_UNKNOWN_OUTPUTS) from None
        raise APIError(ErrorCode.CANNOT_BROADCAST_FEE) from None
    try:
        await ctx.store.update_fields(ticket.hash, {"fee_tx_status": FEE_BROADCAST}, _this_fee(ticket))
    except StoreError as e:
        raise internal("store fee broadcast", e) from None
    log.info("fee %s of ticket %s broadcast", ticket.fee_tx_hash, ticket.hash)


async def _unreceive(ctx: AppContext, ticket_hash: str, fee_tx_hash: str, before: dict) -> None:
    """A refused payfee changes nothing: the row is as it was (unless the fee went out meanwhile), the fee is
    not ours to broadcast, and the wallet sends it again (exccwallet's reconcilePayment retries)."""
    try:
        await ctx.store.update_fields(ticket_hash, before,
                                      {"fee_tx_status": FEE_RECEIVED, "fee_tx_hash": fee_tx_hash})
    except StoreError as e:
        log.error("cannot take back the unacknowledged fee of %s: %s", ticket_hash, e)


def _this_fee(ticket) -> dict:
    """Change the status only while the row still holds this fee, still unsent."""
    return {"fee_tx_status": FEE_RECEIVED, "fee_tx_hash": ticket.fee_tx_hash}
