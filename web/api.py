"""Route table of API v3 and the wrapper that turns errors into signed replies."""

import functools
import logging
from typing import Awaitable, Callable

from aiohttp import web

from . import (api_feeaddress, api_payfee, api_setaltsignaddr, api_setvotechoices,
               api_ticketstatus, api_vspinfo)
from .context import AppContext, ctx_of
from .wire import APIError, ErrorCode, error_response

log = logging.getLogger("web.api")
Handler = Callable[[AppContext, web.Request], Awaitable[web.Response]]


def signed_errors(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Any APIError becomes a signed {code,message}; anything else a signed code 1."""
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        try:
            return await handler(ctx, request)
        except APIError as e:
            if log.isEnabledFor(logging.DEBUG):  # client_ip is worth computing only for the log
                log.debug("%s %s from %s: %d %s", request.method, request.path, ctx.client_ip(request),
                          e.code, e.message)
            return error_response(ctx.signer, e)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unexpected error in %s", request.path)
            return error_response(ctx.signer, APIError(ErrorCode.INTERNAL_ERROR))
    return wrapper


ROUTES = (
    ("GET", "/api/v3/vspinfo", api_vspinfo.handle),
    ("POST", "/api/v3/feeaddress", api_feeaddress.handle),
    ("POST", "/api/v3/payfee", api_payfee.handle),
    ("POST", "/api/v3/ticketstatus", api_ticketstatus.handle),
    ("POST", "/api/v3/setvotechoices", api_setvotechoices.handle),
    ("POST", "/api/v3/setaltsignaddr", api_setaltsignaddr.handle),
)


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, signed_errors(handler))
