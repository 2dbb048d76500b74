"""The staker's ticket page: GET /ticket/<hash>, and /ticket?hash= behind the home page's search box.

What it shows is only "this ticket uses this VSP" and what the chain
already shows to anyone (heights, confirmations, the fee and vote
transactions), in plain words with what to do next. Never the
commitment or fee address, the vote choices, the voting wallets' names or
hosts, or anything of another ticket. The page is an operator's option
(`ticketpage`, docs/operator-guide.md says why it is off by default),
lookups are rate limited per client, and every exccd call it makes is
bounded in time and kept per block (rpcclient/exccd.py BlockMemo), so a
reload costs no node round trip until the next block.
"""

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp_jinja2
from aiohttp import web

from rpcclient import NodeUnavailable, RPCError
from vspd.chain.rules import REQUIRED_CONFS, is_hash
from vspd.store import StoreError
from vspd.store.models import EXPIRED, FEE_BROADCAST, FEE_CONFIRMED, FEE_ERROR, FEE_RECEIVED, MISSED, REVOKED, VOTED, \
    Ticket
from web.api.context import AppContext, ctx_of
from web.pages.ratelimit import RateLimiter
from web.pages.site import base_context, error_page, fmt_time

log = logging.getLogger("web.ticketpage")
LOOKUP_LIMIT = web.AppKey("ticket_lookup_limiter", RateLimiter)
NODE_TIMEOUT = 5.0  # seconds for all of the page's exccd calls together


@dataclass
class View:
    """Everything the page says about one ticket, in the order it says it."""
    hash: str
    state: str  # the headline: one short phrase
    advice: str  # what the staker should do now
    fee: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    voters: str = ""
    outcome: str = ""
    fee_tx: str = ""
    fee_confirmations: int | None = None
    spend_tx: str = ""
    spend_height: int = 0
    node_problem: str = ""


@dataclass
class ChainFacts:
    """What exccd says of the ticket now (None where it did not answer)."""
    confirmations: int | None = None
    mined_height: int = 0
    live: bool | None = None
    fee_confirmations: int | None = None
    height: int = 0
    problem: str = ""


async def chain_facts(ctx: AppContext, t: Ticket, spent: bool) -> ChainFacts:
    f = ChainFacts(height=ctx.exccd.height)
    try:
        async with asyncio.timeout(NODE_TIMEOUT):
            raw = await ctx.exccd.get_raw_transaction(t.hash)
            f.confirmations, f.mined_height = raw.confirmations, raw.blockheight
            if t.fee_tx_hash and t.fee_tx_status in (FEE_BROADCAST, FEE_CONFIRMED):
                f.fee_confirmations = (await ctx.exccd.get_raw_transaction(t.fee_tx_hash)).confirmations
            mature_at = f.mined_height + ctx.net.ticket_maturity
            if not spent and f.mined_height and f.height >= mature_at:
                f.live = await ctx.exccd.exists_live_ticket(t.hash)
    except (RPCError, NodeUnavailable, TimeoutError) as e:
        f.problem = "this VSP's node did not answer just now, so some chain facts are missing: reload in a minute"
        log.info("ticket page: exccd did not answer (%s)", type(e).__name__)  # no hash: lookups are not logged
    return f


def explain(ctx: AppContext, t: Ticket, f: ChainFacts, spend: tuple[str, int] | None, holding: int,
            total_voters: int, now: int) -> View:
    """The words of the page: pure, so each state can be tested without a network."""
    v = View(t.hash, "", "", fee_tx=t.fee_tx_hash if t.fee_tx_status in (FEE_BROADCAST, FEE_CONFIRMED) else "",
             fee_confirmations=f.fee_confirmations, node_problem=f.problem)
    net = ctx.net
    amount = f"{t.fee_amount / 1e8:.8f} EXCC"

    # the fee
    if t.fee_waived:
        v.fee.append("No fee: this is one of the operator's own tickets.")
    elif t.fee_tx_status in ("none", FEE_ERROR):
        if t.fee_tx_status == FEE_ERROR:
            v.fee.append("A fee transaction was received but could not be broadcast (its inputs may have been "
                         "spent elsewhere).")
        if t.fee_expired(now):
            v.fee.append(f"Fee quoted: {amount}. The quote expired at {fmt_time(t.fee_expiration)} and no fee "
                         f"has been paid.")
        else:
            v.fee.append(f"Fee quoted: {amount}, to be paid before {fmt_time(t.fee_expiration)}. Not paid yet.")
    elif t.fee_tx_status == FEE_RECEIVED:
        v.fee.append(f"Fee of {amount} received. It is broadcast once the ticket has {REQUIRED_CONFS} "
                     f"confirmations.")
    elif t.fee_tx_status == FEE_BROADCAST:
        v.fee.append(f"Fee of {amount} paid and broadcast; it counts once its transaction has {REQUIRED_CONFS} "
                     f"confirmations.")
    else:
        v.fee.append(f"Fee of {amount} paid and confirmed.")

    # the ticket on the chain
    mined = f.mined_height or (t.purchase_height if t.confirmed else 0)
    if mined:
        mature_at = mined + net.ticket_maturity
        expires_at = mature_at + net.ticket_expiry
        v.chain.append(f"Mined in block {mined:,}.")
        if not t.outcome:
            if f.height and f.height < mature_at:
                v.chain.append(f"Immature: it becomes live at block {mature_at:,} ({mature_at - f.height:,} "
                               f"blocks from now, at height {f.height:,}).")
            elif f.live:
                v.chain.append(f"Live since block {mature_at:,}: it can be called to vote in any block until "
                               f"block {expires_at:,}, when it expires if never called.")
            elif f.live is False:
                v.chain.append(f"Mature since block {mature_at:,}, but no longer live on the chain.")
            else:
                v.chain.append(f"Live from block {mature_at:,}; it expires at block {expires_at:,} if never called.")
    elif f.confirmations == 0:
        v.chain.append("Not mined yet: the ticket is waiting in the mempool.")
    elif not f.problem:
        v.chain.append("Not found on the chain yet.")

    # the voting wallets
    if t.fee_tx_status == FEE_CONFIRMED and not t.outcome and total_voters:
        v.voters = f"Held by {holding} of this VSP's {total_voters} voting wallets."

    # the outcome, the headline and the advice
    if spend is not None:
        v.spend_tx, v.spend_height = spend
    if t.outcome == VOTED:
        v.state = "Voted"
        v.outcome = (f"Voted in block {v.spend_height:,}." if v.spend_height else "Voted.")
        v.advice = ("Nothing to do: the vote returned the ticket's price and its reward to your wallet "
                    f"(spendable after {net.coinbase_maturity} blocks).")
    elif t.outcome in (MISSED, EXPIRED, REVOKED):
        v.state = {MISSED: "Missed", EXPIRED: "Expired", REVOKED: "Revoked"}[t.outcome]
        where = f" in block {v.spend_height:,}" if v.spend_height else ""
        v.outcome = {MISSED: f"Called to vote, but the vote did not make it into the chain; revoked{where}.",
                     EXPIRED: f"Never called to vote before it expired; revoked{where}.",
                     REVOKED: f"Revoked{where}."}[t.outcome]
        v.advice = ("The revocation returned the ticket's price to your wallet; the fee is not refunded. "
                    "Nothing else to do." if t.outcome != MISSED else
                    "The revocation returned the ticket's price to your wallet. A miss is this VSP's to explain: "
                    "write to the support address below with this page's address.")
    elif t.fee_tx_status in ("none", FEE_ERROR) and not t.fee_waived:
        if t.fee_expired(now):
            v.state = "Fee quote expired, never paid"
            v.advice = ("Until a fee is paid this VSP will not vote the ticket. exccwallet asks for a new quote "
                        "and pays it by itself while it runs unlocked with this VSP set (--vsp.url, "
                        "--vsp.pubkey); in Exilibrium choose Tickets → \"Process managed tickets\". To register "
                        "again from scratch, restart exccwallet unlocked with the same --vsp.url and --vsp.pubkey: "
                        "it asks this VSP for a fee address for every unpaid ticket it bought through it.")
        else:
            v.state = "Fee quoted, not paid yet"
            v.advice = ("Keep your wallet running and unlocked: it pays the fee on its own within minutes. If the "
                        "quote expires first, the wallet asks for a new one.")
        if t.fee_tx_status == FEE_ERROR:
            v.state = "Fee could not be broadcast"
    elif t.fee_tx_status in (FEE_RECEIVED, FEE_BROADCAST):
        v.state = "Fee paid, waiting for confirmations"
        v.advice = "Nothing to do: keep the ticket's wallet as it is; this page updates with each block."
    elif mined and f.height and f.height < mined + net.ticket_maturity:
        v.state = "Immature"
        v.advice = ("Nothing to do: your wallet may go offline. This VSP votes the ticket when it is called; "
                    "the wallet needs to be online again only to spend the reward.")
    else:
        v.state = "Live" if f.live is not False else "Registered"
        v.advice = ("Nothing to do: your wallet may go offline. This VSP's voting wallets vote the ticket when "
                    "the chain calls it.")
    return v


async def ticket_view(ctx: AppContext, t: Ticket) -> View:
    spend = await ctx.store.ticket_spend(t.hash)
    facts = await chain_facts(ctx, t, spent=bool(t.outcome))
    holding = total = 0
    if ctx.voters is not None:
        total = ctx.voters.total
        holding = sum(1 for s in ctx.voters if s.health is not None and t.hash not in s.missing)
    return explain(ctx, t, facts, spend, holding, total, ctx.now())


def _disabled(request: web.Request) -> web.Response:
    return error_page(request, 404, "Not Found", "This VSP does not offer ticket lookups: your wallet's own "
                                                 "ticket list shows where each ticket stands.")


def _limited(request: web.Request) -> web.Response | None:
    ctx = ctx_of(request)
    if request.app[LOOKUP_LIMIT].allow(ctx.client_ip(request)):
        return None
    resp = error_page(request, 429, "Too Many Requests", "Too many ticket lookups from your address: wait a few "
                                                         "seconds and try again.")
    resp.headers["Retry-After"] = "5"
    return resp


def _malformed(request: web.Request, given: str) -> web.Response:
    shown = given if len(given) <= 100 else given[:100] + "…"
    return error_page(request, 400, "Bad Request", f"“{shown}” is not a ticket hash: a ticket hash is 64 "
                                                   f"hexadecimal characters (0-9, a-f), as your wallet lists it.")


async def search(request: web.Request) -> web.Response:
    """The home page's search box (a GET form): on to the ticket's own address."""
    ctx = ctx_of(request)
    if not ctx.ticketpage:
        return _disabled(request)
    given = request.query.get("hash", "").strip()
    if not is_hash(given, any_case=True):
        return _malformed(request, given)
    raise web.HTTPSeeOther(f"/ticket/{given.lower()}")


async def ticket_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if not ctx.ticketpage:
        return _disabled(request)
    given = request.match_info["hash"]
    if not is_hash(given.removesuffix("\n"), any_case=True):  # as its old "^...$" match: one final newline passed
        return _malformed(request, given)
    if given != given.lower():
        raise web.HTTPMovedPermanently(f"/ticket/{given.lower()}")
    limited = _limited(request)
    if limited is not None:
        return limited
    try:
        t, _ = await ctx.store.ticket_and_alt_sign(given)
    except StoreError as e:
        log.error("ticket page: %s", e)
        return error_page(request, 503, "Service Unavailable", "The database could not be read: try again soon.")
    if t is None:
        return error_page(request, 404, "Not Found",
                          f"This VSP does not know ticket {given}. It was bought with another VSP or without "
                          f"one, or its wallet never asked this VSP for a fee (a ticket shows here once the "
                          f"wallet has asked). Check the hash against your wallet's ticket list.")
    view = await ticket_view(ctx, t)
    resp = aiohttp_jinja2.render_template("ticket.html", request, {**base_context(ctx), "t": view})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def add_routes(app: web.Application) -> None:
    app[LOOKUP_LIMIT] = RateLimiter(rate=2.0, burst=10.0)
    app.router.add_get("/ticket", search)
    app.router.add_get("/ticket/{hash}", ticket_page)
