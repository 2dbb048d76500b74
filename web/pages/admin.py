"""The operator's admin pages: login, status, tickets, xpubs, revenue, backups, settings.

Every state-changing action is logged (who, from where, when) in the
database, is idempotent, and answers a bad form value with the form and a
clear message, changing nothing.
"""

import base64
import hashlib
import hmac
import logging
import re
import tempfile
import time
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup, escape

from rpcclient import NodeUnavailable, RPCError
from vspd.chain import bip32
from vspd.chain import tx as txmod
from vspd.chain import wif as wifmod
from vspd.chain.errors import ChainError
from vspd.chain.rules import REQUIRED_CONFS, is_hash, key_votes_ticket
from vspd.frontend import preflight
from vspd.store import StoreError, Ticket
from vspd.store.models import EXPIRED, MISSED
from web.api.context import AppContext, ctx_of
from web.pages import session
from web.pages.health import problems, warnings
from web.pages.ratelimit import RateLimiter
from web.pages.record import RECORD_KEY
from web.pages.site import base_context

log = logging.getLogger("web.admin")
LOGIN_LIMIT = web.AppKey("login_limiter", RateLimiter)
TABS = (("status", "VSP status"), ("tickets", "Ticket search"), ("unpaid", "Unpaid"), ("missed", "Missed tickets"),
        ("xpubs", "Fee xpubs"), ("revenue", "Revenue"), ("backup", "Database"), ("settings", "Open/close"),
        ("listing", "Listing rules"), ("log", "Admin log"), ("record", "Charts"))
_WIF_IN_JSON = re.compile(r'("votingkey"\s*:\s*")[^"]*(")')
_B64_REQUEST = re.compile(r'("request"\s*:\s*")([^"]*)(")')


def who(ctx: AppContext, request: web.Request) -> str:
    return f"admin@{ctx.client_ip(request)}"


def _session_key(ctx: AppContext) -> bytes:
    return session.signing_key(ctx.cookie_secret, ctx.adminpass)


def is_admin(request: web.Request) -> bool:
    ctx = ctx_of(request)
    return session.of_request(request, ctx.cookie_secret, ctx.adminpass, ctx.session_generation)


def secure(ctx: AppContext, request: web.Request) -> bool:
    if request.secure:
        return True
    return request.remote in ctx.trusted_proxies and request.headers.get("X-Forwarded-Proto", "") == "https"


def login_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, {**base_context(ctx_of(request)), "error": error},
                                          status=status)


async def admin_page(request: web.Request, tab: str = "status", status: int = 200, **extra) -> web.Response:
    ctx = ctx_of(request)
    tab = tab if tab in dict(TABS) else "status"
    data = {**base_context(ctx), "tabs": TABS, "tab": tab, "problems": problems(ctx),
            "voters": [v.as_dict() for v in ctx.voters] if ctx.voters is not None else [],
            "tip": ctx.voters.tip() if ctx.voters is not None else ctx.exccd.height,
            "link": lambda kind, value: explorer_link(ctx, kind, value), "redact": redact_wif,
            "redact_response": redact_response}
    data["backup"] = backup_rows(ctx.replication.as_dict() if ctx.replication is not None else None)
    if tab == "status":
        data["warnings"] = await warnings(ctx)
    elif tab == "unpaid":
        data["unpaid"] = await ctx.store.unpaid_tickets(limit=1000)
    elif tab == "missed":
        data["missed"] = await ctx.store.tickets_where("outcome IN (?, ?) ORDER BY purchase_height DESC",
                                                       (MISSED, EXPIRED), limit=1000)
    elif tab == "xpubs":
        data["xpubs"] = await ctx.store.all_xpubs()
    elif tab == "revenue":
        data["revenue"] = await ctx.store.revenue(ctx.exccd.height, ctx.net.blocks_per_day)
    elif tab == "backup":
        data["dbsize"] = await ctx.store.file_size()
    elif tab == "settings":
        data["own"] = await ctx.store.tickets_where("fee_waived = 1", limit=1000)
    elif tab == "listing" and ctx.voters is not None:
        facts = await preflight.running_facts(ctx.net, ctx.voters, ctx.replication, ctx.store, ctx.vspclosed,
                                              ctx.exccd, ctx.vspfee)
        data["checks"] = preflight.evaluate(facts)
    elif tab == "log":
        data["log"] = await ctx.store.admin_log()
    elif tab == "record":
        data["days"] = int(request.query["days"]) if request.query.get("days") in ("30", "365") else 90
        record = request.app[RECORD_KEY]
        await record.refresh()
        data["charts"] = record.admin(data["days"])
    data.update(extra)
    return aiohttp_jinja2.render_template("admin.html", request, data, status=status)


def backup_rows(state: dict | None) -> list[tuple[str, str]]:
    """The replication state in words and units, for a person (the dict's keys and Python values are for code)."""
    if state is None:
        return [("Replication", "off: no replica is configured")]
    age = state["last_sync_age"]
    return [("Replica", state["replica"]),
            ("litestream", "running" if state["running"] else "not running"),
            ("Restarts", str(state["restarts"])),
            ("Last sync", "none yet" if age is None else f"{age:.1f} s ago"),
            ("Newest local transaction", state["local_txid"]),
            ("Sync errors", str(state["sync_errors"])),
            ("Last error", state["error"] or "none"),
            ("Problem", state["problem"] or "none")]


def explorer_link(ctx: AppContext, kind: str, value: str):
    if not ctx.net.explorer or not value:
        return value
    return Markup(f'<a href="{escape(ctx.net.explorer)}/{kind}/{escape(value)}" rel="noopener noreferrer">'
                  f'{escape(value)}</a>')


def redact_wif(request_json: str) -> str:
    """Stored payfee requests hold the voting key: never show it on a page."""
    return _WIF_IN_JSON.sub(r"\1[voting key hidden]\2", request_json)


def redact_response(response_json: str) -> str:
    """A signed response echoes its request base64-encoded in `request`: hide the voting key in there too.

    What cannot be decoded is hidden whole (it could hold the key in a form we do not read).
    """
    def hide(m: re.Match) -> str:
        try:
            inner = base64.b64decode(m[2], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return m[1] + "[hidden]" + m[3]
        return m[1] + base64.b64encode(redact_wif(inner).encode()).decode() + m[3]
    return _B64_REQUEST.sub(hide, response_json)


async def get_admin(request: web.Request) -> web.Response:
    if not is_admin(request):
        return login_page(request, status=401)
    return await admin_page(request, request.query.get("tab", "status"))


async def post_login(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if not request.app[LOGIN_LIMIT].allow(ctx.client_ip(request)):
        return login_page(request, "Rate limit exceeded: wait a moment and try again.", 429)
    form = await request.post()
    given = form.get("password", "")
    if not isinstance(given, str) or not _password_ok(given, ctx.adminpass):
        log.warning("failed admin login from %s", ctx.client_ip(request))
        return login_page(request, "Incorrect password.", 401)
    log.info("admin login from %s", ctx.client_ip(request))
    resp = web.HTTPFound("/admin")
    session.set_cookie(resp, session.make(_session_key(ctx), generation=ctx.session_generation),
                       secure(ctx, request))
    raise resp


def _password_ok(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                                                  hashlib.sha256(expected.encode()).digest())


async def post_logout(request: web.Request) -> web.Response:
    """Logging out ends every admin session, not just this browser's cookie."""
    ctx = ctx_of(request)
    if is_admin(request):
        ctx.session_generation += 1
        await ctx.store.set_settings({"sessiongeneration": str(ctx.session_generation)}, who(ctx, request),
                                     "logout")
    resp = web.HTTPFound("/admin")
    session.clear_cookie(resp)
    raise resp


def require_admin(handler):
    async def wrapper(request: web.Request) -> web.Response:
        if not is_admin(request):
            return login_page(request, status=401)
        return await handler(request)
    return wrapper


@require_admin
async def post_ticket_search(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    form = await request.post()
    query = str(form.get("hash", "")).strip().lower()
    if not is_hash(query):  # stripped and lowered: as the "^...$" it had
        return await admin_page(request, "tickets", 400, query=query, error="A ticket hash is 64 hex characters.")
    t = await ctx.store.get_ticket(query)
    if t is None:
        return await admin_page(request, "tickets", query=query)
    return await admin_page(request, "tickets", query=query, ticket=t,
                            changes=await ctx.store.vote_changes(t.hash), alt=await ctx.store.get_alt_sign(t.hash))


@require_admin
async def post_closed(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    form = await request.post()
    closed = str(form.get("closed", ""))
    message = str(form.get("message", "")).strip()
    if closed not in ("true", "false"):
        return await admin_page(request, "settings", 400, error="Choose close or reopen.")
    if len(message) > 500 or any(ord(c) < 32 for c in message):
        return await admin_page(request, "settings", 400, error="The message must be one line of at most 500 characters.")
    is_closed = closed == "true"
    message = message if is_closed else ""
    await ctx.store.set_settings({"vspclosed": closed, "vspclosedmsg": message}, who(ctx, request),
                                 "close" if is_closed else "reopen", message)
    ctx.vspclosed, ctx.vspclosedmsg = is_closed, message
    await ctx.stats.refresh()
    log.info("%s %s the VSP%s", who(ctx, request), "closed" if is_closed else "reopened",
             f": {message}" if message else "")
    return await admin_page(request, "settings", message="The VSP is closed to new tickets." if is_closed
                            else "The VSP is open.")


@require_admin
async def post_xpub(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    form = await request.post()
    text = str(form.get("xpub", "")).strip()
    try:
        xpub = str(bip32.decode_xpub(text, ctx.net))
    except ChainError as e:
        return await admin_page(request, "xpubs", 400, form_xpub=text, error=f"Not a usable {ctx.net.name} xpub: {e}")
    current = await ctx.store.current_xpub()
    if current.xpub == xpub:
        return await admin_page(request, "xpubs", message="That xpub is already the current one.")
    try:
        await ctx.store.add_xpub(xpub)
    except StoreError as e:
        return await admin_page(request, "xpubs", 400, form_xpub=text, error=str(e))
    await ctx.store.log_admin(who(ctx, request), "retire xpub", f"{current.id} -> new")
    log.info("%s retired fee xpub %d", who(ctx, request), current.id)
    return await admin_page(request, "xpubs", message="The new fee xpub is current; the old one is kept for lookups.")


@require_admin
async def post_own_ticket(request: web.Request) -> web.Response:
    """Register one of the operator's own tickets, voted without a fee."""
    ctx = ctx_of(request)
    form = await request.post()
    h = str(form.get("hash", "")).strip().lower()
    key_text = str(form.get("votingkey", "")).strip()
    if not is_hash(h):  # stripped and lowered: as the "^...$" it had
        return await admin_page(request, "settings", 400, error="A ticket hash is 64 hex characters.")
    existing = await ctx.store.get_ticket(h)
    if existing is not None:
        note = "already registered as an operator ticket" if existing.fee_waived else "already registered by a staker"
        return await admin_page(request, "settings", message=f"Ticket {h} is {note}.")
    try:
        key = wifmod.decode(key_text, ctx.net)
        raw = await ctx.exccd.get_raw_transaction(h)
        ticket_tx = txmod.from_hex(raw.hex)
    except ChainError as e:
        return await admin_page(request, "settings", 400, error=f"Invalid voting key or ticket: {e}")
    except (RPCError, NodeUnavailable) as e:
        return await admin_page(request, "settings", 400, error=f"exccd does not know that ticket: {e}")
    if not txmod.is_ticket(ticket_tx, ctx.net):
        return await admin_page(request, "settings", 400, error="That transaction is not a solo ticket.")
    if not key_votes_ticket(key, ticket_tx, ctx.net):
        return await admin_page(request, "settings", 400, error="The voting key does not match the ticket.")
    t = Ticket(hash=h, commitment_address=str(txmod.commitment_address(ticket_tx, ctx.net)), fee_xpub_id=0,
               fee_address_index=0, fee_address="", fee_amount=0, fee_expiration=int(time.time()),
               confirmed=raw.confirmations >= REQUIRED_CONFS,
               purchase_height=raw.blockheight if raw.confirmations >= REQUIRED_CONFS else 0,
               voting_wif=key.encode(), fee_waived=True)
    try:
        await ctx.store.insert_new_ticket(t, ctx.derive)
    except (StoreError, ChainError) as e:
        return await admin_page(request, "settings", 400, error=f"Cannot register: {e}")
    await ctx.store.log_admin(who(ctx, request), "register operator ticket", h)
    log.info("%s registered operator ticket %s (fee waived)", who(ctx, request), h)
    return await admin_page(request, "settings", message=f"Ticket {h} will be voted without a fee.")


@require_admin
async def get_backup(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vspd.db"
        try:
            await ctx.store.backup_to(path)
        except Exception:
            log.exception("backup download failed")
            return web.Response(status=500)
        data = path.read_bytes()
    await ctx.store.log_admin(who(ctx, request), "download backup", f"{len(data)} bytes")
    return web.Response(body=data, content_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="vspd.db"'})


def add_routes(app: web.Application) -> None:
    app[LOGIN_LIMIT] = RateLimiter()
    app.router.add_get("/admin", get_admin)
    app.router.add_post("/admin", post_login)
    app.router.add_post("/admin/logout", post_logout)
    app.router.add_post("/admin/ticket", post_ticket_search)
    app.router.add_post("/admin/closed", post_closed)
    app.router.add_post("/admin/xpub", post_xpub)
    app.router.add_post("/admin/ownticket", post_own_ticket)
    app.router.add_get("/admin/backup", get_backup)
