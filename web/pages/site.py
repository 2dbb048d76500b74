"""The public pages: home, API documentation, static files, and error pages."""

import datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from vspd.version import __version__
from web.api import openapi
from web.api.context import AppContext, ctx_of
from web.api.wire import go_float
from web.pages.record import RECORD_KEY, Record

STATIC = Path(__file__).parent / "static"


def fmt_time(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "–"


def base_context(ctx: AppContext) -> dict:
    s = ctx.stats.stats if ctx.stats is not None else None
    return {"ctx": ctx, "version": __version__, "stats": s, "fmt_time": fmt_time,
            "updated": fmt_time(ctx.stats.updated) if s else ""}


def site_url(scheme: str, remote: str | None, host: str, forwarded_proto: str | None,
             trusted_proxies: frozenset) -> str:
    """The URL people reach this site at: our scheme, or the one a trusted proxy says."""
    if remote in trusted_proxies and forwarded_proto is not None:
        scheme = forwarded_proto.split(",")[0].strip() or scheme
    return f"{scheme}://{host}"


def request_site_url(ctx: AppContext, request: web.BaseRequest) -> str:
    return site_url(request.scheme, request.remote, request.host, request.headers.get("X-Forwarded-Proto"),
                    ctx.trusted_proxies)


def voter_words(ctx: AppContext) -> list[dict]:
    if ctx.voters is None:
        return []
    return [{"name": v.name, "healthy": v.healthy,
             "words": "online, synced, unlocked and voting" if v.healthy else "; ".join(v.problems)}
            for v in ctx.voters]


def home_key(ctx: AppContext, record: Record, voters: list[dict]) -> tuple:
    """Everything home.html and base.html show that can change while running (the URL aside)."""
    s = ctx.stats
    return (s.stats, s.updated, s.fee_warning, tuple(tuple(v.values()) for v in voters), ctx.vspclosed,
            ctx.vspclosedmsg, ctx.vspfee, ctx.designation, ctx.supportemail, record.version, ctx.ticketpage)


class HomePages:
    """home.html rendered once per change of what it shows, kept as bytes, per site URL.

    It holds the app's Record (web/pages/record.py): the charts are part of what it shows.
    """

    def __init__(self, env: jinja2.Environment, record: Record, max_urls: int = 8):
        self.env = env
        self.record = record
        self.max_urls = max_urls  # the URL comes from the Host header: bounded
        self._pages: dict[str, tuple[tuple, bytes]] = {}

    def body(self, ctx: AppContext, url: str) -> bytes:
        """The page for `url` (needs ctx.stats.stats and record.rows): the kept bytes, or rendered now if out
        of date."""
        voters = voter_words(ctx)
        key = home_key(ctx, self.record, voters)
        page = self._pages.get(url)
        if page is not None and page[0] == key:
            return page[1]
        data = base_context(ctx)
        data.update(voters=voters, url=url, fee=go_float(ctx.vspfee), fee_warning=ctx.stats.fee_warning,
                    record=self.record.home.get(30))
        body = self.env.get_template("home.html").render(data).encode()  # as aiohttp_jinja2 renders
        self._pages.pop(url, None)
        if len(self._pages) >= self.max_urls:
            del self._pages[next(iter(self._pages))]
        self._pages[url] = (key, body)
        return body


# One HomePages per app, made by the app factory (web/http/app.py): aiohttp's handler and the fast lane
# (web/http/fastlane.py) serve the same kept bytes.
HOME_PAGES_KEY = web.AppKey("vspd_home_pages", HomePages)


async def home(request: web.Request) -> web.Response:
    ctx, pages = ctx_of(request), request.app[HOME_PAGES_KEY]
    if ctx.stats.stats is None:
        await ctx.stats.refresh()
    if pages.record.rows is None:
        await pages.record.refresh()
    return web.Response(body=pages.body(ctx, request_site_url(ctx, request)), content_type="text/html",
                        charset="utf-8")


async def api_page(request: web.Request) -> web.Response:
    """The endpoints and error codes as the OpenAPI document has them (web/api/openapi.py): the page cannot drift."""
    data = base_context(ctx_of(request))
    doc = openapi.served()
    data.update(openapi=openapi.PATH, endpoints=openapi.endpoints(doc), errors=openapi.error_codes(doc))
    return aiohttp_jinja2.render_template("api.html", request, data)


async def record_page(request: web.Request) -> web.Response:
    """The record over 90 days: the home page's charts, longer (the link under them).

    Drawn with the home page's (the frontend refreshes both after each block), so a request reads nothing.
    """
    ctx, record = ctx_of(request), request.app[RECORD_KEY]
    if record.rows is None:
        await record.refresh()
    return aiohttp_jinja2.render_template("record.html", request, {**base_context(ctx),
                                                                   "record": record.home[90], "days": 90})


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
    app.router.add_get("/record", record_page)
    app.router.add_get(openapi.PATH, openapi.serve)
    app.router.add_static("/public/", STATIC, append_version=False)



