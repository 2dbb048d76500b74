"""POST /api/v3/feeaddress (step 1): quote the fee and hand out a fee address."""

import logging

from rpcclient import NodeUnavailable, RPCError
from vspd.chain.errors import ChainError
from vspd.chain.fees import vsp_fee
from vspd.chain.rules import REQUIRED_CONFS
from vspd.store import StoreError, Ticket
from vspd.store.models import FEE_BROADCAST, FEE_CONFIRMED, FEE_ERROR, FEE_NONE, FEE_RECEIVED
from web.api import binding
from web.api.checks import authenticate, broadcast_ticket, internal, require_can_vote, require_intake, require_node, \
    require_open, require_replicated
from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import APIAnswer, APIError, ErrorCode, b64, signed_answer

FEE_QUOTE_SECONDS = 3600
log = logging.getLogger("web.api")


async def current_fee(ctx: AppContext) -> int:
    try:
        best = await ctx.exccd.best_block()
    except (NodeUnavailable, RPCError) as e:
        raise internal("best block", e) from None
    return vsp_fee(best.sbits, best.height, ctx.vspfee, ctx.net)


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    require_open(ctx)
    require_intake(ctx)
    body = request.read()
    await broadcast_ticket(ctx, request)
    auth = await authenticate(ctx, request)
    require_node(ctx)
    request.bind(binding.FEE_ADDRESS)
    ticket = auth.ticket
    if ticket is not None and ticket.fee_tx_status in (FEE_RECEIVED, FEE_BROADCAST, FEE_CONFIRMED):
        raise APIError(ErrorCode.FEE_ALREADY_RECEIVED)
    raw = await require_can_vote(ctx, auth.ticket_hash)
    now = ctx.now()
    if ticket is not None:
        if ticket.fee_expired(now):
            ticket.fee_amount = await current_fee(ctx)
            ticket.fee_expiration = now + FEE_QUOTE_SECONDS
            try:
                requoted = await ctx.store.update_fields(
                    ticket.hash, {"fee_amount": ticket.fee_amount, "fee_expiration": ticket.fee_expiration},
                    {"fee_tx_status": (FEE_NONE, FEE_ERROR)})
            except StoreError as e:
                raise internal("update fee quote", e) from None
            if not requoted:  # a payfee landed meanwhile
                raise APIError(ErrorCode.FEE_ALREADY_RECEIVED)
            log.info("re-quoted fee for ticket %s: %d atoms", ticket.hash, ticket.fee_amount)
    else:
        fee = await current_fee(ctx)
        confirmed = raw.confirmations >= REQUIRED_CONFS
        ticket = Ticket(hash=auth.ticket_hash, commitment_address=auth.commitment_address,
                        fee_xpub_id=0, fee_address_index=0, fee_address="", fee_amount=fee,
                        fee_expiration=now + FEE_QUOTE_SECONDS, confirmed=confirmed,
                        purchase_height=raw.blockheight if confirmed else 0)
        try:
            await ctx.store.insert_new_ticket(ticket, ctx.derive)
        except (StoreError, ChainError) as e:
            # A concurrent request for the same ticket may have won the insert.
            ticket = await ctx.store.get_ticket(auth.ticket_hash)
            if ticket is None:
                raise internal("insert ticket", e) from None
        log.info("new ticket %s: fee address %s (index %d), %d atoms", ticket.hash, ticket.fee_address,
                 ticket.fee_address_index, ticket.fee_amount)
    # Off-site before acknowledged. On refusal the row stays (its address is never handed to another
    # ticket) and the wallet's next feeaddress gets the same address.
    await require_replicated(ctx)
    return signed_answer(ctx.signer, {
        "timestamp": now, "feeaddress": ticket.fee_address, "feeamount": ticket.fee_amount,
        "expiration": ticket.fee_expiration, "request": b64(body)})
