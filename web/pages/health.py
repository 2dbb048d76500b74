"""/status for monitors and /admin/status for the operator: the honest truth.

/status answers 200 only when the frontend's exccd, every voter and the
intake rule are fine and no voter is missing a votable ticket, otherwise
503 naming each failing part. It carries no secrets and no ticket data.
/admin/status (HTTP Basic, user `admin`, or the admin page's session) has the full per-component picture.
"""

import base64
import hashlib
import hmac
import json
import time

from aiohttp import web

from vspd.frontend.feecap import current_quotes
from vspd.version import __version__
from web.api.checks import intake_problem
from web.api.context import AppContext, ctx_of
from web.pages import session
from web.pages.ratelimit import RateLimiter

STALE_POLLS = 6  # a voter report older than this many poll intervals is stale
STATUS_LIMIT = web.AppKey("status_limiter", RateLimiter)
ADMIN_STATUS_LIMIT = web.AppKey("admin_status_limiter", RateLimiter)


def starting(ctx: AppContext) -> list[str]:
    """What a frontend just started has not done yet: until then it knows nothing to report."""
    waiting = []
    if ctx.pipeline is not None and ctx.pipeline.passes == 0:
        waiting.append("first block pass")
    if ctx.voters is not None and any(v.checked == 0 for v in ctx.voters):
        waiting.append("first voter health poll")
    if not (ctx.stats and ctx.stats.stats and ctx.stats.stats.blockheight):
        waiting.append("first chain height")
    return waiting


def problems(ctx: AppContext) -> list[str]:
    waiting = starting(ctx)
    found = [f"starting: waiting for the {', the '.join(waiting)}"] if waiting else []
    if not ctx.exccd.connected:
        found.append(f"exccd unreachable: {ctx.exccd.rpc.last_error}")
    if ctx.voters is not None:
        now = time.time()
        for v in ctx.voters:
            if not v.checked:
                continue  # not polled yet: 'starting' says so
            if now - v.checked > max(30.0, STALE_POLLS * ctx.voters.interval):
                found.append(f"voter {v.name}: no health report for {int(now - v.checked)} s")
            elif v.problems:
                found.append(f"voter {v.name}: {'; '.join(v.problems)}")
            if v.missing:
                found.append(f"voter {v.name}: {len(v.missing)} ticket(s) not added yet (repair retrying)")
    if ctx.store is not None and ctx.store.write_problem is not None:
        found.append(f"database: writes failing for {int(time.time() - ctx.store.write_problem_since)} s: "
                     f"{ctx.store.write_problem}")
    elif ctx.store is not None and ctx.store.space_problem():
        found.append(f"database: {ctx.store.space_problem()}")
    intake = intake_problem(ctx)
    if intake:
        found.append(f"not accepting tickets: {intake}")
    if ctx.replication is not None:
        backup = ctx.replication.problem()
        if backup:
            found.append(backup)
    return found


async def warnings(ctx: AppContext) -> list[str]:
    """What the operator should fix though nothing is down: the fee above what wallets pay."""
    quotes = await current_quotes(ctx.exccd, ctx.vspfee, ctx.net)
    if isinstance(quotes, str):  # exccd unreachable: problems() says so already
        return []
    problem = quotes.problem()
    return [problem] if problem else []


def _word(ctx: AppContext, found: list[str]) -> str:
    return "ok" if not found else "starting" if starting(ctx) else "degraded"


def _json(data: dict, status: int) -> web.Response:
    return web.Response(text=json.dumps(data, indent=1), status=status, content_type="application/json")


async def status(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if not request.app[STATUS_LIMIT].allow(ctx.client_ip(request)):
        return web.Response(status=429, text="rate limit exceeded")
    found = problems(ctx)
    voters = ctx.voters
    body = {"status": _word(ctx, found), "problems": found, "network": ctx.net.name,
            "version": __version__,
            "blockheight": ctx.stats.stats.blockheight if ctx.stats and ctx.stats.stats else 0,
            "voters": {"healthy": len(voters.healthy()) if voters else 0, "total": voters.total if voters else 0}}
    return _json(body, 200 if not found else 503)


def check_basic_auth(header: str, password: str) -> bool:
    """user `admin` and the admin password, compared in constant time."""
    if not header.startswith("Basic ") or not password:
        return False
    try:
        user, _, given = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    ok_pass = hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                                  hashlib.sha256(password.encode()).digest())
    return hmac.compare_digest(user.encode(), b"admin") & ok_pass


async def admin_status(request: web.Request) -> web.Response:
    """For a monitor with HTTP Basic, or a browser with the admin page's session cookie.

    A request with neither gets the challenge without spending the rate
    limit: a browser asks first without a password, then at once with it.
    """
    ctx = ctx_of(request)
    if not session.of_request(request, ctx.cookie_secret, ctx.adminpass, ctx.session_generation):
        header = request.headers.get("Authorization")
        if header is not None and not request.app[ADMIN_STATUS_LIMIT].allow(ctx.client_ip(request)):
            return web.Response(status=429)
        if header is None or not check_basic_auth(header, ctx.adminpass):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="Authorization Required"'})
    found = problems(ctx)
    p = ctx.pipeline
    body = {
        "status": _word(ctx, found), "problems": found, "warnings": await warnings(ctx),
        "version": __version__, "network": ctx.net.name, "vspclosed": ctx.vspclosed,
        "exccd": {"host": ctx.exccd.rpc.url, "connected": ctx.exccd.connected,
                  "error": ctx.exccd.rpc.last_error, "version": str(ctx.exccd.version or ""),
                  "bestblockheight": ctx.stats.stats.blockheight if ctx.stats and ctx.stats.stats else 0},
        "voters": [v.as_dict() for v in ctx.voters] if ctx.voters is not None else [],
        "pipeline": {"passes": p.passes, "last": vars(p.last_report)} if p is not None else {},
        "database": {"free_bytes": ctx.store.free_bytes, "write_problem": ctx.store.write_problem,
                     "write_problem_since": ctx.store.write_problem_since or None},
        "backup": {**ctx.replication.as_dict(), "replica_txid": await ctx.replication.replica_position()}
        if ctx.replication is not None else {},
    }
    return _json(body, 200 if not found else 503)


def add_routes(app: web.Application) -> None:
    app[STATUS_LIMIT] = RateLimiter()
    app[ADMIN_STATUS_LIMIT] = RateLimiter()
    app.router.add_get("/status", status)
    app.router.add_get("/admin/status", admin_status)
