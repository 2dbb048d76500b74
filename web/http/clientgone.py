"""A client that goes away mid-request is not our error: one DEBUG line, no traceback.

aiohttp fails the read of a body whose client has left with a
ConnectionResetError; raised through a handler, aiohttp would log it as
"Error handling request" with its traceback, once per client who leaves.
"""

import logging
from typing import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("web.clientgone")
CLIENT_CLOSED = 499  # nginx's "client closed request": counted, never sent (there is no one to send it to)


@web.middleware
async def quietly(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConnectionResetError as e:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            raise  # the connection is still there: not a client leaving
        log.debug("%s %s: the client left before its request was read (%s)", request.method, request.path, e)
        return web.Response(status=CLIENT_CLOSED)
