"""API v3: its handlers by path, the one place their errors become signed answers, and aiohttp's routes.

The handlers (web/api_*.py) take an APIRequest and give an APIAnswer, so
the same handler answers whether web/http/fastlane.py or aiohttp read the
request.
"""

import logging
from typing import Awaitable, Callable

from aiohttp import web

from web.api import feeaddress as api_feeaddress
from web.api import payfee as api_payfee
from web.api import setaltsignaddr as api_setaltsignaddr
from web.api import setvotechoices as api_setvotechoices
from web.api import ticketstatus as api_ticketstatus
from web.api import vspinfo as api_vspinfo
from web.api.context import AppContext, ctx_of
from web.api.request import MAX_BODY, APIRequest
from web.api.wire import CLIENT_SIGNATURE_HEADER, APIAnswer, APIError, ErrorCode, error_answer, response_of

log = logging.getLogger("web.api")
Handler = Callable[[AppContext, APIRequest], Awaitable[APIAnswer]]

ROUTES: dict[str, tuple[str, Handler]] = {
    "/api/v3/vspinfo": ("GET", api_vspinfo.handle),
    "/api/v3/feeaddress": ("POST", api_feeaddress.handle),
    "/api/v3/payfee": ("POST", api_payfee.handle),
    "/api/v3/ticketstatus": ("POST", api_ticketstatus.handle),
    "/api/v3/setvotechoices": ("POST", api_setvotechoices.handle),
    "/api/v3/setaltsignaddr": ("POST", api_setaltsignaddr.handle),
}


async def serve(ctx: AppContext, path: str, request: APIRequest) -> APIAnswer:
    """The handler's answer; any APIError a signed {code,message}, anything else a signed code 1."""
    try:
        return await ROUTES[path][1](ctx, request)
    except APIError as e:
        if log.isEnabledFor(logging.DEBUG):  # the client's address is worth computing only for the log
            log.debug("%s from %s: %d %s", path, ctx.client_address(request.peer, request.forwarded_for,
                                                                    request.real_ip), e.code, e.message)
        return error_answer(ctx.signer, e)
    except Exception:
        log.exception("unexpected error in %s", path)
        return error_answer(ctx.signer, APIError(ErrorCode.INTERNAL_ERROR))


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None once it is larger than MAX_BODY (not read further)."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def _aiohttp_handler(path: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        headers = request.headers
        api_request = APIRequest(await _read_body(request), headers.get(CLIENT_SIGNATURE_HEADER, ""),
                                 request.remote, headers.get("X-Forwarded-For", ""), headers.get("X-Real-IP", ""))
        return response_of(await serve(ctx_of(request), path, api_request))
    return handle


def add_routes(app: web.Application) -> None:
    for path, (method, _) in ROUTES.items():
        app.router.add_route(method, path, _aiohttp_handler(path))
