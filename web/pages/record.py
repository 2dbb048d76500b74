"""The VSP's record as pictures: read from the daily roll-ups, drawn once per change, kept as markup.

The home page is served from prepared bytes (web/pages/site.py HomePages): its
charts are part of what it shows, so they are drawn here when the roll-up
rows change (at most a year of them is read, a few hundred rows per
table), not per request, and `version` moves when they do.
"""

import time
from dataclasses import dataclass, field

from aiohttp import web
from markupsafe import Markup

from web.pages import charts

DAY = 86400
KEEP_DAYS = 365
HOME_DAYS = (30, 90)
ADMIN_DAYS = (30, 90, 365)
VOTED, MISSED, EXPIRED, REVOKED = "#067647", "#b42318", "#f79009", "#7a5af8"
AWAITING, VOTING, FEES = "#98a2b3", "#1f6feb", "#1f6feb"
LINE_COLOURS = ("#1f6feb", "#f79009", "#7a5af8", "#067647", "#b42318", "#0e9384", "#c11574", "#475467")


@dataclass(frozen=True)
class Summary:
    voted: int
    missed: int
    expired: int
    fees: int


@dataclass
class Rows:
    daily: dict[int, tuple]  # day -> (voted, missed, expired, revoked, fees)
    tickets: dict[int, tuple]  # day -> (awaiting, voting, voted, missed, expired, revoked)
    voters: dict[str, dict[int, tuple]]  # voter -> day -> (samples, healthy, max_lag)


def rows_of(raw: dict[str, list[tuple]]) -> Rows:
    voters: dict[str, dict[int, tuple]] = {}
    for day, name, samples, healthy, lag in raw["voters"]:
        voters.setdefault(name, {})[day] = (samples, healthy, lag)
    return Rows({r[0]: r[1:] for r in raw["daily"]}, {r[0]: r[1:] for r in raw["tickets"]}, voters)


def days_to(today: int, n: int) -> list[int]:
    return list(range(today - n + 1, today + 1))


def summary(rows: Rows, days: list[int]) -> Summary:
    got = [rows.daily.get(d, (0, 0, 0, 0, 0)) for d in days]
    return Summary(sum(g[0] for g in got), sum(g[1] for g in got), sum(g[2] for g in got), sum(g[4] for g in got))


def votes_chart(rows: Rows, days: list[int]) -> Markup:
    got = [rows.daily.get(d, (0, 0, 0, 0, 0)) for d in days]
    return charts.bars(f"chart-votes-{len(days)}", f"Votes and misses per day, last {len(days)} days", days, [
        charts.Series("voted", VOTED, [g[0] for g in got]),
        charts.Series("missed", MISSED, [g[1] for g in got]),
        charts.Series("expired", EXPIRED, [g[2] for g in got])],
        empty_note=f"No ticket of this VSP was voted, missed or expired in the last {len(days)} days.")


def uptime_chart(rows: Rows, days: list[int]) -> Markup:
    def fraction(cell: tuple | None) -> float | None:
        return None if cell is None or not cell[0] else cell[1] / cell[0]
    strips = [(name, [fraction(per_day.get(d)) for d in days]) for name, per_day in sorted(rows.voters.items())
              if any(d in per_day for d in days)]
    return charts.strips(f"chart-uptime-{len(days)}", f"Voting wallet uptime per day, last {len(days)} days",
                         days, strips, empty_note=f"No health checks recorded in the last {len(days)} days.")


def states_chart(rows: Rows, days: list[int]) -> Markup:
    got = [rows.tickets.get(d, (0,) * 6) for d in days]
    names = (("awaiting fee", AWAITING), ("voting", VOTING), ("voted", VOTED), ("missed", MISSED),
             ("expired", EXPIRED), ("revoked", REVOKED))
    return charts.bars(f"chart-states-{len(days)}", f"Tickets by state, last {len(days)} days", days,
                       [charts.Series(n, c, [g[i] for g in got]) for i, (n, c) in enumerate(names)],
                       empty_note=f"No ticket counts recorded in the last {len(days)} days.")


def fees_chart(rows: Rows, days: list[int]) -> Markup:
    got = [rows.daily.get(d, (0, 0, 0, 0, 0))[4] / 1e8 for d in days]
    return charts.bars(f"chart-fees-{len(days)}", f"Fee revenue per day (EXCC), last {len(days)} days", days,
                       [charts.Series("fees confirmed (EXCC)", FEES, got)],
                       empty_note=f"No fee was confirmed in the last {len(days)} days.")


def lag_chart(rows: Rows, days: list[int]) -> Markup:
    series = [charts.Series(name, LINE_COLOURS[i % len(LINE_COLOURS)],
                            [per_day[d][2] if d in per_day else None for d in days])
              for i, (name, per_day) in enumerate(sorted(rows.voters.items()))]
    return charts.lines(f"chart-lag-{len(days)}", f"Voting wallet lag (most blocks behind the tip) per day, "
                        f"last {len(days)} days", days, series,
                        empty_note=f"No health checks recorded in the last {len(days)} days.")


@dataclass
class Record:
    """The roll-ups as last read, and the charts drawn from them."""
    store: object  # vspd.store.Store
    clock: object = time.time
    version: int = 0  # moves whenever what the home page shows of the record changes
    rows: Rows | None = None
    today: int = 0
    home: dict[int, tuple[Summary, Markup, Markup]] = field(default_factory=dict)
    _admin: dict[int, tuple[Markup, Markup, Markup]] = field(default_factory=dict)
    _read_at_writes: int = -1
    build_seconds: float = 0.0  # the last drawing of the home charts, for the benchmark

    async def refresh(self, force: bool = False) -> bool:
        """Re-read the roll-ups if anything was written since (through the store: `force` for any other
        writer, such as a test's bulk insert); redraw if they changed. True if redrawn."""
        today = int(self.clock()) // DAY
        writes = self.store.writes
        if writes == self._read_at_writes and today == self.today and self.rows is not None and not force:
            return False
        rows = rows_of(await self.store.record_since(today - KEEP_DAYS + 1))
        self._read_at_writes = writes
        if rows == self.rows and today == self.today:
            return False
        t0 = time.perf_counter()
        self.rows, self.today = rows, today
        self.home = {n: (summary(rows, days_to(today, n)), votes_chart(rows, days_to(today, n)),
                         uptime_chart(rows, days_to(today, n))) for n in HOME_DAYS}
        self._admin.clear()
        self.version += 1
        self.build_seconds = time.perf_counter() - t0
        return True

    def admin(self, n: int) -> tuple[Markup, Markup, Markup]:
        """States, fees and lag charts over `n` days (drawn on first use after each change)."""
        if self.rows is None:
            raise RuntimeError("refresh the record first")
        if n not in self._admin:
            days = days_to(self.today, n)
            self._admin[n] = (states_chart(self.rows, days), fees_chart(self.rows, days), lag_chart(self.rows, days))
        return self._admin[n]


# One Record per app, made by the app factory (web/http/app.py): the pages, the home pages and the
# frontend's refresh after each block all read this one, so it is drawn once per change.
RECORD_KEY = web.AppKey("vspd_record", Record)
