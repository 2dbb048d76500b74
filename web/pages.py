"""The public pages: home, API documentation, static files, and error pages."""

import datetime
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from vspd.version import __version__

from .context import AppContext, ctx_of
from .wire import DEFAULT_MESSAGES, go_float

STATIC = Path(__file__).parent / "static"


def fmt_time(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "–"


def base_context(ctx: AppContext) -> dict:
    s = ctx.stats.stats if ctx.stats is not None else None
    return {"ctx": ctx, "version": __version__, "stats": s, "fmt_time": fmt_time,
            "updated": fmt_time(ctx.stats.updated) if s else ""}


def site_url(ctx: AppContext, request: web.Request) -> str:
    scheme = request.scheme
    if request.remote in ctx.trusted_proxies:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
    return f"{scheme}://{request.host}"


def voter_words(ctx: AppContext) -> list[dict]:
    if ctx.voters is None:
        return []
    return [{"name": v.name, "healthy": v.healthy,
             "words": "online, synced, unlocked and voting" if v.healthy else "; ".join(v.problems)}
            for v in ctx.voters]


async def home(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if ctx.stats.stats is None:
        await ctx.stats.refresh()
    data = base_context(ctx)
    data.update(voters=voter_words(ctx), url=site_url(ctx, request), fee=go_float(ctx.vspfee))
    return aiohttp_jinja2.render_template("home.html", request, data)


async def api_page(request: web.Request) -> web.Response:
    data = base_context(ctx_of(request))
    data["errors"] = [(int(code), message) for code, message in DEFAULT_MESSAGES.items()]
    return aiohttp_jinja2.render_template("api.html", request, data)


def error_page(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    return aiohttp_jinja2.render_template("error.html", request, {
        **base_context(ctx_of(request)), "status": status, "reason": reason, "message": message}, status=status)


@web.middleware
async def html_errors(request: web.Request, handler):
    """404 and 405 as pages for people; API paths keep plain answers."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith("/api/"):
            raise
        return error_page(request, 404, "Not Found", "There is no page at this address.")
    except web.HTTPMethodNotAllowed as e:
        if request.path.startswith("/api/"):
            raise
        resp = error_page(request, 405, "Method Not Allowed", f"{request.method} is not allowed here.")
        resp.headers["Allow"] = ",".join(sorted(e.allowed_methods))
        return resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/api", api_page)
    app.router.add_static("/public/", STATIC, append_version=False)



