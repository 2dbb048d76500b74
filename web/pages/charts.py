"""Small SVG charts drawn on the server, put in the page as markup.

Written here rather than taken from a chart library (pygal): the pages
need three shapes (bars per day, stacked or not; lines per day; a strip of
coloured days per voting wallet), each a few dozen lines of SVG. Our own
code keeps the output small (a 30-day chart is a few KB), deterministic
(the home page is kept as bytes and compared), free of scripts and
third-party styles, and every label goes through one escape. A library
would add a dependency, its own CSS and JavaScript hooks to strip, and
pages several times larger. Pure functions: no I/O, no clock.
"""

import datetime
from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 28, 22
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: Sequence[float]


def day_label(day: int) -> str:
    """A UTC day number (unix time // 86400) as '3 Dec'."""
    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
    return f"{d.day} {d.strftime('%b')}"


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _frame(chart_id: str, title: str, height: int, body: list[str]) -> Markup:
    return Markup(f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}" '
                  f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
                  f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>' + "".join(body) + "</svg>")


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{s.colour}"/>'
                   f'<text x="{x + 14}" y="15" {FONT} fill="#1b2430">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return out


def _axes(days: Sequence[int], top: float, unit: str, plot_h: int) -> list[str]:
    base = TOP + plot_h
    out = [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#98a2b3"/>',
           f'<text x="{LEFT - 4}" y="{TOP + 4}" {FONT} text-anchor="end" fill="#5b6675">{_fmt(top)}{unit}</text>',
           f'<text x="{LEFT - 4}" y="{base}" {FONT} text-anchor="end" fill="#5b6675">0</text>']
    mid = TOP + plot_h / 2
    out.append(f'<line x1="{LEFT}" y1="{mid}" x2="{WIDTH - RIGHT}" y2="{mid}" stroke="#eaecf0" stroke-dasharray="4 3"/>'
               f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}" stroke="#eaecf0" stroke-dasharray="4 3"/>'
               f'<text x="{LEFT - 4}" y="{mid + 4}" {FONT} text-anchor="end" fill="#5b6675">{_fmt(top / 2)}{unit}</text>')
    out.extend(_day_labels(days, LEFT, WIDTH - LEFT - RIGHT, base + 15))
    return out


def _day_labels(days: Sequence[int], left: float, width: float, y: float) -> list[str]:
    """The first, middle and last day under the plot; the end ones aligned to the plot's edges, never cut off."""
    if not days:
        return []
    step = width / len(days)
    out = []
    for i, anchor in sorted({0: "start", len(days) // 2: "middle", len(days) - 1: "end"}.items()):
        x = left if anchor == "start" else left + width if anchor == "end" else left + step * (i + 0.5)
        out.append(f'<text x="{x:.1f}" y="{y}" {FONT} text-anchor="{anchor}" fill="#5b6675">{day_label(days[i])}</text>')
    return out


def _empty(chart_id: str, title: str, note: str, height: int = HEIGHT) -> Markup:
    return _frame(chart_id, title, height, [
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{height - TOP - BOTTOM}" '
        f'fill="#f2f4f7"/>',
        f'<text x="{WIDTH / 2}" y="{height / 2 + 4}" {FONT} text-anchor="middle" fill="#5b6675" '
        f'class="chart-empty">{escape(note)}</text>'])


def _nice_top(peak: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `peak` (an axis people can read)."""
    if peak <= 0:
        return 1
    scale = 1.0
    while scale * 10 <= peak:
        scale *= 10
    while scale > peak:
        scale /= 10
    for m in (1, 2, 5, 10):
        if m * scale >= peak:
            return m * scale
    return 10 * scale


def bars(chart_id: str, title: str, days: Sequence[int], series: Sequence[Series], stacked: bool = True,
         unit: str = "", empty_note: str = "No data yet.") -> Markup:
    """One bar (a stack of the series, or side by side) per day; a hover title gives each day's figures."""
    if not days or not any(v for s in series for v in s.values):
        return _empty(chart_id, title, empty_note)
    plot_h = HEIGHT - TOP - BOTTOM
    totals = [sum(s.values[i] for s in series) if stacked else max(s.values[i] for s in series)
              for i in range(len(days))]
    top = _nice_top(max(totals))
    if all(float(v).is_integer() for s in series for v in s.values):
        top = max(top, 2)  # counts: the middle line at a whole number
    step = (WIDTH - LEFT - RIGHT) / len(days)
    gap = min(2.0, step * 0.2)
    body = _legend(series) + _axes(days, top, unit, plot_h)
    for i, day in enumerate(days):
        tip = f"{day_label(day)}: " + ", ".join(f"{_fmt(s.values[i])}{unit} {s.name}" for s in series)
        body.append(f"<g><title>{escape(tip)}</title>")
        y = TOP + plot_h
        width = (step - gap) / (1 if stacked else len(series))
        for k, s in enumerate(series):
            v = s.values[i]
            if v <= 0:
                continue
            h = v / top * plot_h
            x = LEFT + i * step + gap / 2 + (0 if stacked else k * width)
            if stacked:
                y -= h
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" fill="{s.colour}"/>')
            else:
                body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                            f'fill="{s.colour}"/>')
        body.append("</g>")
    return _frame(chart_id, title, HEIGHT, body)


def lines(chart_id: str, title: str, days: Sequence[int], series: Sequence[Series], unit: str = "",
          empty_note: str = "No data yet.") -> Markup:
    """One line per series over the days (None: no sample that day, the line breaks)."""
    if not days or not any(v is not None for s in series for v in s.values):
        return _empty(chart_id, title, empty_note)
    plot_h = HEIGHT - TOP - BOTTOM
    top = _nice_top(max((v for s in series for v in s.values if v is not None), default=0))
    step = (WIDTH - LEFT - RIGHT) / len(days)
    body = _legend(series) + _axes(days, top, unit, plot_h)
    for s in series:
        runs, run = [], []
        for i, v in enumerate(s.values):
            if v is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{LEFT + step * (i + 0.5):.1f},{TOP + plot_h - v / top * plot_h:.1f}")
        if run:
            runs.append(run)
        for r in runs:
            if len(r) == 1:
                x, y = r[0].split(",")
                body.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{s.colour}"/>')
            else:
                body.append(f'<polyline points="{" ".join(r)}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
    return _frame(chart_id, title, HEIGHT, body)


def _strip_colour(fraction: float | None) -> str:
    if fraction is None:
        return "#eaecf0"
    if fraction >= 0.999:
        return "#067647"
    if fraction >= 0.95:
        return "#75c69b"
    if fraction >= 0.5:
        return "#f79009"
    return "#b42318"


def strips(chart_id: str, title: str, days: Sequence[int], rows: Sequence[tuple[str, Sequence[float | None]]],
           empty_note: str = "No data yet.") -> Markup:
    """A row of coloured days per name: green up at every health check, amber partly, red mostly down."""
    if not days or not rows:
        return _empty(chart_id, title, empty_note, 90)
    row_h, label_w = 18, 90
    height = TOP + row_h * len(rows) + BOTTOM
    step = (WIDTH - label_w - RIGHT) / len(days)
    body = []
    x = label_w
    for colour, name in (("#067647", "up at every check"), ("#75c69b", "up at 95% or more"),
                         ("#f79009", "up at 50-95%"), ("#b42318", "up at less than half"), ("#eaecf0", "no check")):
        body.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}" stroke="#d0d5dd"/>'
                    f'<text x="{x + 14}" y="15" {FONT} fill="#1b2430">{name}</text>')
        x += 24 + 7 * len(name)
    for r, (name, fractions) in enumerate(rows):
        y = TOP + r * row_h
        body.append(f'<text x="{label_w - 6}" y="{y + 12}" {FONT} text-anchor="end" fill="#1b2430">'
                    f'{escape(name)}</text>')
        for i, f in enumerate(fractions):
            words = "not checked" if f is None else f"up at {f * 100:.1f}% of checks"
            body.append(f'<rect x="{label_w + i * step:.1f}" y="{y + 2}" width="{max(step - 1, 0.5):.1f}" '
                        f'height="{row_h - 4}" fill="{_strip_colour(f)}"><title>{escape(name)}, '
                        f'{day_label(days[i])}: {words}</title></rect>')
    body.extend(_day_labels(days, label_w, WIDTH - label_w - RIGHT, TOP + row_h * len(rows) + 15))
    return _frame(chart_id, title, height, body)
