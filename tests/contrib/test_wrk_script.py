"""The benchmarks' wrk scripts send exactly the body and headers they are given (contrib/bench/wrk.py).

A Lua decimal escape takes up to three digits: an escaped quote before a
digit ("\\34" then "7") once became another byte, and every such request was
refused, which the benchmark counted as throughput. Checked against the real
wrk, whose requests an aiohttp server records.
"""

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "contrib" / "bench"))
import wrk  # noqa: E402

BODY = b'{"tickethash":"7ade","n":1,"q":"\\"0\\\\1","x":"\x01\x7f\xc3\xa9"}'


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (Debian: apt-get install wrk)")
async def test_post_script_sends_the_body_and_headers_as_given(tmp_path):
    seen: list[tuple[bytes, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("VSP-Client-Signature", "")))
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_post("/api", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        script = wrk.post_script(tmp_path / "post.lua", BODY, {"VSP-Client-Signature": 'a"9\\b'})
        result = await asyncio.to_thread(wrk.run, f"http://127.0.0.1:{port}/api", 1, 1, script)
    finally:
        await runner.cleanup()
    assert seen and result.requests > 0 and result.non2xx == 0
    assert set(seen) == {(BODY, 'a"9\\b')}
