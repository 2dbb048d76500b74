"""POST /api/v3/setvotechoices: change a ticket's preferences (works while closed)."""

import asyncio
import logging

from vspd.frontend.voterpool import VoterState, VoterUnavailable
from vspd.store import StoreError
from vspd.store.models import FEE_CONFIRMED, FEE_NONE
from web.api import binding, votechoices
from web.api.checks import authenticate, internal
from web.api.context import AppContext
from web.api.history import record_exchange
from web.api.request import APIRequest
from web.api.wire import APIAnswer, APIError, ErrorCode, b64, signed_answer

log = logging.getLogger("web.api")
CHOICES_WAIT = 2.0  # the answer waits at most this long for the reachable voters to take the choices


async def handle(ctx: AppContext, request: APIRequest) -> APIAnswer:
    body = request.read()
    auth = await authenticate(ctx, request)
    if ctx.voters is not None and not ctx.voters.reachable():
        raise internal("setvotechoices", RuntimeError("no voter is reachable"))
    t = auth.ticket
    if t is None:
        raise APIError(ErrorCode.UNKNOWN_TICKET)
    if t.fee_tx_status == FEE_NONE:
        raise APIError(ErrorCode.FEE_NOT_RECEIVED)
    if t.outcome:
        raise APIError(ErrorCode.TICKET_CANNOT_VOTE, f"ticket not eligible to vote (status={t.outcome})")
    req = request.bind(binding.SET_VOTE_CHOICES)
    stamps = await ctx.store.request_timestamps(t.hash)
    if None in stamps:
        raise internal(f"parse stored request of {t.hash}", ValueError("no integer timestamp in a kept request"))
    if stamps and req["timestamp"] <= max(stamps):
        raise APIError(ErrorCode.INVALID_TIMESTAMP)
    bad = votechoices.problems(req, ctx.net)
    if bad:
        raise APIError(ErrorCode.INVALID_VOTE_CHOICES, next(iter(bad.values())))
    t.vote_choices = {**t.vote_choices, **req["votechoices"]}
    t.tspend_policy = {**t.tspend_policy, **req["tspendpolicy"]}
    t.treasury_policy = {**t.treasury_policy, **req["treasurypolicy"]}
    try:
        await ctx.store.update_fields(t.hash, {"vote_choices": t.vote_choices, "tspend_policy": t.tspend_policy,
                                               "treasury_policy": t.treasury_policy})
    except StoreError as e:
        raise internal("store vote choices", e) from None
    log.info("vote choices of ticket %s updated", t.hash)
    if t.fee_tx_status == FEE_CONFIRMED and ctx.voters is not None and t.vote_choices:
        await push_choices(ctx, t)
    answer = signed_answer(ctx.signer, {"timestamp": ctx.now(), "request": b64(body)})
    await record_exchange(ctx, t.hash, request, answer)
    return answer


async def push_choices(ctx: AppContext, t) -> None:
    """Queue the merged choices for every reachable voter and wait, bounded, until they took them.

    Through each voter's own queue, like the pipeline's hand-overs: a call never overtakes that
    voter's queued adds, and a hung voter costs the answer CHOICES_WAIT, not its call's timeout.
    The wallet is still answered after the voters hold the choices, as a rule; consistency
    (Pipeline.check_voter) fixes the rest.
    """
    ticket_hash, choices, targets = t.hash, t.vote_choices, ctx.voters.reachable()
    waiting = {s.name for s in targets}
    all_done = asyncio.Event()

    async def job(state: VoterState) -> None:
        try:
            await state.client.set_vote_choices(ticket_hash, choices)
        except VoterUnavailable as e:
            log.warning("vote choices of %s not sent to voter %s: %s", ticket_hash, state.name, e)
        finally:
            waiting.discard(state.name)
            if not waiting:
                all_done.set()
    for state in targets:
        ctx.voters.submit(state, ("vote choices", ticket_hash), job)
    if not waiting:
        return
    try:
        await asyncio.wait_for(all_done.wait(), CHOICES_WAIT)
    except TimeoutError:
        log.warning("vote choices of %s: not every voter took them within %.0f s; the consistency check "
                    "sends them", ticket_hash, CHOICES_WAIT)
