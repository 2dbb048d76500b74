#!/usr/bin/env python3
"""The record's charts with a year of 100 000 tickets: drawing time, page bytes, the home page's rate.

Fills a fresh database with N tickets bought over 365 days and the daily
roll-ups they leave (tests/helpers/yearbuilder.py), then times reading the
roll-ups and drawing the home page's charts (web/pages/record.py), drawing the
admin's 365-day charts, and serving the home page from its prepared bytes
through the fast lane on loopback (the node is the test suite's fake).
Prints figures; asserts nothing about speed.

    python contrib/bench/record_bench.py [--short] [--tickets N] [--requests N]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "helpers"), str(ROOT / "tests"), str(ROOT)]

import aiohttp  # noqa: E402

from conftest import make_store  # noqa: E402
from fakes.exccd import FakeChain, FakeExccd  # noqa: E402
from rpcclient import Exccd  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from web.http.app import start_runner  # noqa: E402
from web.api.context import AppContext  # noqa: E402
from web.http.fastlane import FastLaneSite  # noqa: E402
from web.api.wire import Signer  # noqa: E402
from web.pages.record import RECORD_KEY  # noqa: E402
from yearbuilder import fill_year  # noqa: E402


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI (fewer requests)")
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=0, help="home page requests (default 2000, short 300)")
    args = ap.parse_args()
    requests = args.requests or (300 if args.short else 2000)

    node = FakeExccd(FakeChain(SIMNET))
    await node.start()
    exccd = Exccd(SIMNET, "127.0.0.1", node.port, node.user, node.password, node.cert_pem)
    rpc = asyncio.create_task(exccd.run())
    store = runner = site = None
    try:
        assert await exccd.wait_connected(10)
        store = await make_store(Path(tempfile.mkdtemp(prefix="vspd-recordbench-")) / "vspd.db")
        t0 = time.perf_counter()
        fill_year(store.path, args.tickets, now=time.time())
        print(f"record_bench: {args.tickets:,} tickets over 365 days inserted in {time.perf_counter() - t0:.1f} s")
        ctx = AppContext(net=SIMNET, store=store, exccd=exccd, signer=Signer(await store.get_key("signingseed")),
                         vspfee=2.0, supportemail="ops@example.org", ticketpage=True)
        runner = await start_runner(ctx)
        record = runner.app[RECORD_KEY]
        t0 = time.perf_counter()
        await record.refresh(force=True)
        print(f"read the roll-ups and draw the home charts (30 + 90 days): {(time.perf_counter() - t0) * 1000:.1f} ms "
              f"(drawing alone {record.build_seconds * 1000:.1f} ms)")
        t0 = time.perf_counter()
        admin = record.admin(365)
        print(f"draw the admin's 365-day charts: {(time.perf_counter() - t0) * 1000:.1f} ms, "
              f"{sum(len(c) for c in admin):,} bytes of SVG")
        t0 = time.perf_counter()
        await store.state_counts()
        print(f"count tickets by state (the 5-minute sample): {(time.perf_counter() - t0) * 1000:.1f} ms")

        site = FastLaneSite(ctx, runner, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{await site.start()}"
        async with aiohttp.ClientSession() as http:
            sizes = {}
            for path in ("/", "/record"):
                async with http.get(url + path) as r:
                    sizes[path] = len(await r.read())
            print(f"page bytes: home {sizes['/']:,}, /record {sizes['/record']:,}")
            lat = []
            t0 = time.perf_counter()
            for _ in range(requests):  # one connection, one after another: the cost of a request, not the pool's
                s = time.perf_counter()
                async with http.get(url + "/") as r:
                    await r.read()
                lat.append(time.perf_counter() - s)
            took = time.perf_counter() - t0
        lat.sort()
        print(f"home page from prepared bytes: {requests / took:,.0f} req/s, p50 {statistics.median(lat) * 1000:.2f} ms, "
              f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.2f} ms over {requests} requests; charts redrawn "
              f"{record.version - 1} times meanwhile")
    finally:
        if site is not None:
            await site.stop()
        if runner is not None:
            await runner.cleanup()
        if store is not None:
            await store.close()
        rpc.cancel()
        await asyncio.gather(rpc, return_exceptions=True)
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
