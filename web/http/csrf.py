"""Cross-origin protection on every state-changing request (as upstream vspd 1.5).

Browsers say where a request comes from (Sec-Fetch-Site, Origin); wallets
send neither, so the API is unaffected.
"""

from urllib.parse import urlsplit

from aiohttp import web

SAFE = ("GET", "HEAD", "OPTIONS")


def allowed(method: str, headers, host: str) -> bool:
    if method in SAFE:
        return True
    site = headers.get("Sec-Fetch-Site", "")
    if site:
        return site in ("same-origin", "none")
    origin = headers.get("Origin", "")
    if not origin:
        return True
    return urlsplit(origin).netloc == host


@web.middleware
async def protect(request: web.Request, handler):
    if not allowed(request.method, request.headers, request.host):
        return web.Response(status=400, text="CSRF failure")
    return await handler(request)
