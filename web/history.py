"""The signed request/response pairs kept per ticket for disputes (spec §3.9, §3.12)."""

from aiohttp import web

from vspd.store import StoreError

from .context import AppContext
from .ticketchecks import internal
from .wire import CLIENT_SIGNATURE_HEADER


async def record_exchange(ctx: AppContext, ticket_hash: str, body: bytes, request: web.Request,
                          rsp_body: bytes, rsp_sig: str) -> None:
    """Store the pair before answering, so nothing acknowledged goes unrecorded."""
    try:
        await ctx.store.save_vote_change(ticket_hash, body.decode("utf-8", "replace"),
                                         request.headers.get(CLIENT_SIGNATURE_HEADER, ""),
                                         rsp_body.decode(), rsp_sig)
    except StoreError as e:
        raise internal("save vote change record", e) from None
