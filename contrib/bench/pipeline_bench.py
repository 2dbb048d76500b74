#!/usr/bin/env python3
"""Cost of one block-pipeline pass with 100 000 tickets in the database.

Fills a fresh database with N tickets (most fee-confirmed and voting, some
already voted, a few still waiting), then times a pass for a block that
changes nothing of ours and for a block whose votes spend 50 of our
tickets. Prints the pass time, the number of database queries and of
exccd calls; the node is the test suite's protocol-level fake.

    python contrib/bench/pipeline_bench.py [--short] [--tickets N]
"""

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "helpers"), str(ROOT / "tests"), str(ROOT)]

from conftest import make_store  # noqa: E402
from fakes.exccd import FakeChain, FakeExccd  # noqa: E402
from rpcclient import Exccd  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from vspd.frontend.pipeline import LAST_SCANNED, Pipeline  # noqa: E402
from vspd.store import Store  # noqa: E402
from vspd.base.sealing import Sealer  # noqa: E402


def fill(db: Path, n: int, height: int) -> list[str]:
    """Bulk-insert n tickets; returns the hashes of the voting ones."""
    con = sqlite3.connect(db)
    now = int(time.time())
    rows, voting = [], []
    for i in range(n):
        h = os.urandom(32).hex()
        if i % 10 == 0:
            status, outcome, confirmed = "confirmed", "voted", 1
        elif i % 1000 == 1:
            status, outcome, confirmed = "none", "", 0
        else:
            status, outcome, confirmed = "confirmed", "", 1
            voting.append(h)
        rows.append((h, height - 100 if confirmed else 0, "Ss" + "x" * 33, 0, i + 1, f"addr{i + 1}", 10_000_000,
                     now + 3600, confirmed, status, outcome, now, now))
    con.executemany("INSERT INTO tickets (hash, purchase_height, commitment_address, fee_xpub_id, "
                    "fee_address_index, fee_address, fee_amount, fee_expiration, confirmed, fee_tx_status, "
                    "outcome, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.execute("UPDATE fee_xpubs SET last_index = ?", (n,))
    con.commit()
    con.close()
    return voting


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI (20 000 tickets)")
    ap.add_argument("--tickets", type=int, default=100_000)
    args = ap.parse_args()
    n = 20_000 if args.short else args.tickets

    chain = FakeChain(SIMNET, height=5000)
    node = FakeExccd(chain)
    await node.start()
    exccd = Exccd(SIMNET, "127.0.0.1", node.port, node.user, node.password, node.cert_pem)
    runner = asyncio.create_task(exccd.run())
    try:
        assert await exccd.wait_connected(10)
        db = Path(tempfile.mkdtemp(prefix="vspd-pipebench-")) / "vspd.db"
        store = await make_store(db)
        await store.close()
        t0 = time.perf_counter()
        voting = fill(db, n, chain.height)
        print(f"pipeline_bench: {n} tickets ({len(voting)} voting) inserted in {time.perf_counter() - t0:.1f} s")
        store = await Store.open(db, Sealer(os.urandom(32)))
        await store.set_state(LAST_SCANNED, chain.height)
        pipeline = Pipeline(store, exccd, None, SIMNET)

        async def one_pass(label: str, changes: int) -> None:
            calls0 = len(node.calls)
            await node.mine(1)
            report = await pipeline.run_pass()
            print(f"{label:28s} pass {report.seconds * 1000:8.2f} ms  db queries {report.queries:4d}  "
                  f"exccd calls {len(node.calls) - calls0:4d}  changes {report.changes} (expected {changes})")

        await pipeline.run_pass()  # warm up (caches, first scan)
        for i in range(3):
            await one_pass(f"block with 0 changes #{i + 1}", 0)
        for h in voting[:50]:
            chain.spend(h, vote=True)
        await one_pass("block with 50 changes", 50)
        await one_pass("block with 0 changes again", 0)
        await store.close()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
