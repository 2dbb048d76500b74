"""A request aiohttp's parser refuses is the client's error: a 400, and one DEBUG line, not an ERROR with a
traceback (found by schemathesis, whose probe sends a NUL in a header: tests/web/api/test_openapi.py)."""

import asyncio
import logging

from web.http import serverlog

MALFORMED = (b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n",
             b"POST /api/v3/ticketstatus HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-A: a\rb\r\n\r\n{}")


async def test_malformed_request_is_a_400_and_a_debug_line(vsp, caplog):
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    host, port = vsp.url.rsplit("/", 1)[1].split(":")
    for raw in MALFORMED:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw)
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.split()[1] == b"400", status
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == len(MALFORMED)
    for r in records:
        assert r.levelno == logging.DEBUG and r.exc_info is None and "malformed request (400" in r.getMessage()
        assert "\n" not in r.getMessage()


def test_other_errors_keep_their_error_and_traceback(caplog):
    try:
        raise RuntimeError("a handler's own failure")
    except RuntimeError as e:
        serverlog.LOGGER.exception("Error handling request from %s", "127.0.0.1", exc_info=e)
    (r,) = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert r.levelno == logging.ERROR and r.exc_info is not None
