"""The signed request/response pairs kept per ticket for disputes (spec §3.9, §3.12)."""

from vspd.store import StoreError
from web.api.checks import internal
from web.api.context import AppContext
from web.api.request import APIRequest
from web.api.wire import APIAnswer


async def record_exchange(ctx: AppContext, ticket_hash: str, request: APIRequest, answer: APIAnswer) -> None:
    """Store the pair before answering, so nothing acknowledged goes unrecorded."""
    try:
        await ctx.store.save_vote_change(ticket_hash, request.read().decode("utf-8", "replace"), request.signature,
                                         answer.body.decode(), answer.signature)
    except StoreError as e:
        raise internal("save vote change record", e) from None
