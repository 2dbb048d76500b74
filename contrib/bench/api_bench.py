#!/usr/bin/env python3
"""Requests/s and p50/p99 latency of /vspinfo and /ticketstatus on loopback.

Starts a real `vspd --role=frontend` process and one real `vspd --role=voter`
process in a throw-away home folder, with the test suite's protocol-level
fakes standing in for exccd and exccwallet, registers one ticket, then
drives a bounded number of requests at a fixed concurrency. Prints figures;
asserts nothing about speed.

    python contrib/bench/api_bench.py [--short] [--requests N] [--concurrency C]
"""

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "helpers"), str(ROOT / "tests"), str(ROOT)]

import aiohttp  # noqa: E402

from procs import Network  # noqa: E402
from vspclient import VSPClient, quote_new_ticket  # noqa: E402
from vspd.chain.message import sign_message  # noqa: E402
from web.api.wire import go_json  # noqa: E402


async def drive(name: str, make_request, total: int, concurrency: int, limit_s: float) -> None:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(total))
    deadline = time.monotonic() + limit_s

    async def worker():
        nonlocal errors
        for _ in queue:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            ok = await make_request()
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"{name:14s} {len(lat):6d} requests  {len(lat) / elapsed:8.0f} req/s  "
          f"p50 {statistics.median(lat) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms  errors {errors}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=20)
    args = ap.parse_args()
    total = 500 if args.short else args.requests
    limit_s = 30.0 if args.short else 120.0

    net = await Network.create(Path(tempfile.mkdtemp(prefix="vspd-bench-")), nvoters=1,
                               extra_args=["--loglevel=warn"])
    try:
        await net.start_frontend(wait_healthy=1)
        url = net.url
        conn = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=conn) as http:
            client = VSPClient(http, url)
            await client.vspinfo()
            nt = await quote_new_ticket(client, net.chain)
            assert nt.reply.status == 200, nt.reply.json
            status_body = go_json({"tickethash": nt.hash})
            status_sig = base64.b64encode(sign_message(nt.commitment.secret, status_body)).decode()

            async def vspinfo():
                async with http.get(url + "/api/v3/vspinfo") as resp:
                    await resp.read()
                    return resp.status == 200

            async def ticketstatus():
                async with http.post(url + "/api/v3/ticketstatus", data=status_body,
                                     headers={"VSP-Client-Signature": status_sig}) as resp:
                    await resp.read()
                    return resp.status == 200

            print(f"api_bench: {total} requests per endpoint, concurrency {args.concurrency}, "
                  f"loopback, 1 frontend process")
            await drive("vspinfo", vspinfo, total, args.concurrency, limit_s)
            await drive("ticketstatus", ticketstatus, total, args.concurrency, limit_s)
    finally:
        await net.close()
    if net.frontend.proc.returncode not in (0, -15):
        raise SystemExit(f"frontend exited with {net.frontend.proc.returncode}")


if __name__ == "__main__":
    asyncio.run(main())
