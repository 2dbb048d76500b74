"""A database as a VSP's year leaves it: 100 000 tickets and the daily roll-ups they made.

Used by tests/web/pages/test_record.py and contrib/bench/record_bench.py. Rows go in
with one sqlite3 connection and executemany (a few seconds for 100 000),
beside the Store that the caller has open (WAL: its reader sees them).
"""

import os
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DAY = 86400


@dataclass
class Year:
    today: int
    voted_30: int
    missed_30: int
    expired_30: int
    fees_30: int


def fill_year(db: Path, n: int = 100_000, voters: tuple[str, ...] = ("v1", "v2", "v3"), now: float = 0,
              seed: int = 23) -> Year:
    """n tickets bought evenly over the last 365 days; most voted, a few missed or expired, the newest voting."""
    rng = random.Random(seed)
    today = int(now) // DAY
    first = today - 364
    con = sqlite3.connect(db)
    rows, daily = [], {}
    for i in range(n):
        day = first + i * 365 // n
        created = day * DAY + rng.randrange(DAY)
        if day > today - 30:
            status, outcome = ("confirmed", "") if i % 50 else ("none", "")
        else:
            r = rng.random()
            status, outcome = "confirmed", "voted" if r < 0.985 else "missed" if r < 0.99 else "expired"
        done_day = min(today, day + rng.randrange(1, 40)) if outcome else day
        d = daily.setdefault(done_day, [0, 0, 0, 0, 0])
        if outcome:
            d[("voted", "missed", "expired").index(outcome)] += 1
        fee = 2_000_000 + rng.randrange(1_000_000)
        if status == "confirmed":
            daily.setdefault(day, [0, 0, 0, 0, 0])[4] += fee
        rows.append((os.urandom(32).hex(), 1000 + i // 10, "Ss" + "x" * 33, 0, i + 1, f"addr{i + 1}", fee,
                     created + 3600, 1, status, outcome, created, done_day * DAY))
    con.executemany("INSERT INTO tickets (hash, purchase_height, commitment_address, fee_xpub_id, fee_address_index, "
                    "fee_address, fee_amount, fee_expiration, confirmed, fee_tx_status, outcome, created, updated) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.execute("UPDATE fee_xpubs SET last_index = ?", (n,))
    con.execute("DELETE FROM daily_record")
    con.executemany("INSERT INTO daily_record (day, voted, missed, expired, revoked, fees) VALUES (?,?,?,?,?,?)",
                    [(day, *v) for day, v in daily.items()])
    totals, state_rows = [0] * 6, []
    for day in range(first, today + 1):
        v = daily.get(day, [0] * 5)
        totals[2:5] = [totals[2] + v[0], totals[3] + v[1], totals[4] + v[2]]
        state_rows.append((day, rng.randrange(0, 40), rng.randrange(2000, 2600), *totals[2:5], 0))
    con.executemany("INSERT INTO daily_tickets (day, awaiting, voting, voted, missed, expired, revoked) "
                    "VALUES (?,?,?,?,?,?,?)", state_rows)
    con.executemany("INSERT INTO voter_days (day, voter, samples, healthy, max_lag) VALUES (?,?,?,?,?)",
                    [(day, name, 288, 288 - (rng.randrange(30) if rng.random() < 0.1 else 0), rng.randrange(0, 4))
                     for day in range(first, today + 1) for name in voters])
    con.commit()
    con.close()
    recent = [daily.get(d, [0] * 5) for d in range(today - 29, today + 1)]
    return Year(today, sum(r[0] for r in recent), sum(r[1] for r in recent), sum(r[2] for r in recent),
                sum(r[4] for r in recent))
