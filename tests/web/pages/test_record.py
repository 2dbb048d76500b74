"""The record as pictures: the SVG charts, the daily roll-ups behind them, a year of 100 000 tickets."""

import re
import sqlite3
import time

from conftest import SIMNET_XPUB, make_store
from vspd.store import Store
from vspd.store.db import migrations
from vspd.store.models import Ticket
from vspd.base.sealing import Sealer
from web.pages import charts
from web.pages.record import DAY
from yearbuilder import fill_year


def test_charts_with_data_and_none():
    days = list(range(20000, 20030))
    empty = charts.bars("c", "Votes", days, [charts.Series("voted", "#0a0", [0] * 30)], empty_note="Nothing yet.")
    assert empty.startswith('<svg id="c" class="chart" role="img" aria-label="Votes"') and "Nothing yet." in empty
    assert "<rect" in empty and "<g>" not in empty  # the frame, no bars
    full = charts.bars("c", "Votes", days, [charts.Series("voted", "#0a0", list(range(30))),
                                            charts.Series("missed <b>", "#a00", [1] * 30)])
    assert full.count("<g><title>") == 30 and full.count('fill="#a00"') == 31  # 30 bars and the legend
    assert "missed &lt;b&gt;" in full and "<b>" not in full  # every label escaped
    assert ">50<" in full  # the axis top: 29 + 1 rounded up to a readable 50
    line = charts.lines("l", "Lag", days[:4], [charts.Series("v1", "#00f", [1, None, 2, 3])])
    assert line.count("<polyline") == 1 and line.count("<circle") == 1  # a day without a sample breaks the line
    assert "No data yet." in charts.lines("l", "Lag", days, [charts.Series("v1", "#00f", [None] * 30)])
    strip = charts.strips("s", "Uptime", days[:3], [("v1", [1.0, 0.5, None])])
    assert "v1, " in strip and "up at 100.0%" in strip and "up at 50.0%" in strip and "not checked" in strip
    assert "No data yet." in charts.strips("s", "Uptime", days, [])
    assert "<script" not in full + line + strip and "http://" not in full.replace("http://www.w3.org/2000/svg", "")


async def test_outcomes_fees_and_samples_roll_up_by_day(tmp_path):
    store = await make_store(tmp_path / "v.db")
    t = Ticket(hash="ab" * 32, commitment_address="Ssx", fee_xpub_id=0, fee_address_index=0, fee_address="",
               fee_amount=5_000_000, fee_expiration=0, fee_tx_status="broadcast", fee_tx_hash="cd" * 32)
    await store.insert_new_ticket(t, lambda xpub, last: (last + 1, f"addr{last + 1}"))
    now = 1_800_000_000
    assert not await store.confirm_fee(t.hash, "ee" * 32, 5_000_000, now)  # not its fee: nothing changes
    assert await store.confirm_fee(t.hash, "cd" * 32, 5_000_000, now)
    assert not await store.confirm_fee(t.hash, "cd" * 32, 5_000_000, now)  # once only
    await store.set_outcome(t.hash, "voted", "ef" * 32, 321, now)
    await store.set_outcome(t.hash, "missed", "ff" * 32, 400, now)  # already decided: ignored
    assert await store.ticket_spend(t.hash) == ("ef" * 32, 321)
    assert (await store.get_ticket(t.hash)).outcome == "voted"
    counts = await store.state_counts()
    assert counts["voted"] == 1 and sum(counts.values()) == 1
    await store.sample_day(counts, [("v1", True, 0), ("v2", False, 7)], now)
    await store.sample_day(counts, [("v1", True, 2), ("v2", True, 1)], now + 300)
    rows = await store.record_since(now // DAY - 1)
    assert rows["daily"] == [(now // DAY, 1, 0, 0, 0, 5_000_000)]
    assert rows["tickets"] == [(now // DAY, 0, 0, 1, 0, 0, 0)]
    assert rows["voters"] == [(now // DAY, "v1", 2, 2, 2), (now // DAY, "v2", 2, 1, 7)]
    await store.close()


async def test_migration_fills_the_record_from_older_databases(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    for version, _, sql in migrations()[:4]:
        con.executescript(f"{sql}\nPRAGMA user_version = {version};")
    con.execute("INSERT INTO fee_xpubs (id, xpub) VALUES (0, 'x')")
    for i, (status, outcome, updated) in enumerate((("confirmed", "voted", 3 * DAY + 5), ("confirmed", "missed", 3 * DAY),
                                                    ("confirmed", "", 4 * DAY), ("none", "", 4 * DAY))):
        con.execute("INSERT INTO tickets (hash, commitment_address, fee_xpub_id, fee_address_index, fee_address, "
                    "fee_amount, fee_expiration, fee_tx_status, outcome, created, updated) VALUES "
                    "(?, 'Ss', 0, ?, 'a', 100, 0, ?, ?, 0, ?)", (f"{i:064x}", i, status, outcome, updated))
    con.commit()
    con.close()
    store = await Store.open(path, Sealer(b"k" * 32))
    assert (await store.record_since(0))["daily"] == [(3, 1, 1, 0, 0, 200), (4, 0, 0, 0, 0, 100)]
    await store.close()


async def test_a_year_of_100000_tickets_home_page_from_prepared_bytes(vsp):
    ctx = vsp.ctx
    year = fill_year(vsp.store.path, 100_000, now=ctx.clock())
    t0 = time.perf_counter()
    async with vsp.client.http.get(vsp.url + "/") as r:
        first = await r.read()
    first_s = time.perf_counter() - t0
    text = first.decode()
    assert 'id="chart-votes-30"' in text and 'id="chart-uptime-30"' in text
    m = re.search(r'id="record-summary">Last 30 days: ([\d,]+) voted, ([\d,]+)\s+missed, ([\d,]+) expired', text)
    assert m and [int(g.replace(",", "")) for g in m.groups()] == [year.voted_30, year.missed_30, year.expired_30]
    assert text.count("<g><title>") == 30 and ">v3<" in text  # a bar per day; a strip per voting wallet
    pages = vsp.site.lane.home_pages  # the app's, shared with aiohttp's handler
    record = pages.record
    kept = pages._pages[next(iter(pages._pages))]
    for _ in range(3):  # served from the kept bytes: the very same object, nothing re-read or drawn
        async with vsp.client.http.get(vsp.url + "/") as r:
            assert await r.read() == first
    assert pages._pages[next(iter(pages._pages))] is kept
    version = record.version
    assert not await record.refresh() and record.version == version  # nothing written: no read
    async with vsp.client.http.get(vsp.url + "/record") as r:
        ninety = await r.text()
    assert r.status == 200 and ninety.count("<g><title>") == 90 and 'id="chart-uptime-90"' in ninety
    states, fees, lag = record.admin(365)
    assert states.count("<g><title>") == 365 and fees.count("<g><title>") == 365 and lag.count("<polyline") == 3
    print(f"\nhome page {len(first):,} bytes (first request {first_s * 1000:.0f} ms, charts drawn in "
          f"{record.build_seconds * 1000:.1f} ms); /record {len(ninety):,} bytes")


async def test_imported_tickets_fill_the_record(tmp_path):
    store = await Store.open(tmp_path / "i.db", Sealer(b"k" * 32), create=True)
    tickets = [Ticket(hash=f"{i:064x}", commitment_address="Ss", fee_xpub_id=0, fee_address_index=i, fee_address="a",
                      fee_amount=100, fee_expiration=0, fee_tx_status="confirmed", outcome=outcome,
                      created=0, updated=day * DAY + 7)
               for i, (outcome, day) in enumerate((("voted", 5), ("voted", 5), ("expired", 6), ("", 6)))]
    await store.import_records(SIMNET_XPUB, 4, {}, tickets, {}, [], "test", "")
    assert (await store.record_since(0))["daily"] == [(5, 2, 0, 0, 0, 200), (6, 0, 0, 1, 0, 200)]
    await store.close()
