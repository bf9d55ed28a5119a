"""Server-side SVG charts for the console's dashboard: no JavaScript, no chart library.

Each function returns a complete ``<svg>`` (as :class:`markupsafe.Markup`, every text escaped)
with ``role="img"``, a ``<title>`` and a ``<desc>`` for screen readers; the page also prints the
numbers as a table, so nothing is only visible as a picture.  Colours are presentation
attributes (not ``style``), so the console's Content-Security-Policy can forbid inline styles.
The words a chart draws itself (legend, tooltips, "none") go through the page's ``t``.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 44
PAD_RIGHT = 12
PAD_TOP = 14
PAD_BOTTOM = 34
AXIS = "#4a5563"
GRID = "#d9dee5"

PALETTE: dict[str, str] = {
    "pass": "#1b7f3b",
    "retry": "#b35c00",
    "review": "#2f5fb3",
    "fallback": "#8a2a8a",
    "attack": "#b3261e",
    "lockout": "#6b4e16",
    "rate": "#1b7f3b",
    "reason": "#2f5fb3",
}


Words = Callable[[str], str]
"""A page's translator (``t``): English in, the page's language out."""


def _same(text: str) -> str:
    return text


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: float) -> int:
    """The axis top: the smallest 1, 2 or 5 × 10^k at or above ``value`` (at least 1)."""
    return int(next(m * 10**k for k in range(15) for m in (1, 2, 5) if m * 10**k >= value))


def _frame(title: str, desc: str, body: list[str], height: int = HEIGHT) -> Markup:
    slug = "c" + hashlib.sha1(title.encode()).hexdigest()[:8]
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-labelledby="{slug}t {slug}d" class="chart">'
        f'<title id="{slug}t">{_e(title)}</title><desc id="{slug}d">{_e(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _axes(days: Sequence[str], top: float, unit: str = "") -> list[str]:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    out = []
    # counts get whole-number ticks only (no "0.5 checks"); percentages get a middle line
    fracs = (0, 0.5, 1) if unit or top % 2 == 0 else (0, 1)
    for frac in fracs:
        y = PAD_TOP + plot_h * (1 - frac)
        label = f"{top * frac:g}{unit}"
        out.append(
            f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{AXIS}">{_e(label)}</text>'
        )
    step = max(1, len(days) // 7)
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(1, len(days))
    for i, day in enumerate(days):
        if i % step == 0 or i == len(days) - 1:
            x = PAD_LEFT + slot * (i + 0.5)
            out.append(
                f'<text x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle" '
                f'font-size="11" fill="{AXIS}">{_e(day[5:])}</text>'
            )
    return out


def stacked_bars(
    days: Sequence[str],
    series: Mapping[str, Sequence[int]],
    title: str,
    desc: str,
    t: Words = _same,
) -> Markup:
    """Bars per day, stacked by series (e.g. decisions), with a legend."""
    totals = [sum(s[i] for s in series.values()) for i in range(len(days))]
    top = _nice_max(max(totals, default=0))
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(1, len(days))
    body = _axes(days, top)
    for i, day in enumerate(days):
        base = 0
        for name, values in series.items():
            n = values[i]
            if not n:
                continue
            h = plot_h * n / top
            y = PAD_TOP + plot_h * (1 - (base + n) / top)
            body.append(
                f'<rect x="{PAD_LEFT + slot * i + slot * 0.15:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{PALETTE.get(name, AXIS)}">'
                f"<title>{_e(day)}: {n} {_e(t(name))}</title></rect>"
            )
            base += n
    body += _legend(list(series), t)
    return _frame(title, desc, body, HEIGHT + 22)


def _legend(names: list[str], t: Words) -> list[str]:
    out = []
    x = PAD_LEFT
    for name in names:
        label = t(name)
        out.append(
            f'<rect x="{x}" y="{HEIGHT + 6}" width="12" height="12" '
            f'fill="{PALETTE.get(name, AXIS)}"/>'
            f'<text x="{x + 16}" y="{HEIGHT + 16}" font-size="12" fill="#1f2933">{_e(label)}</text>'
        )
        x += 24 + 8 * max(len(label), 2 * len(label.encode()) // 3)
    return out


def bars(
    days: Sequence[str],
    values: Sequence[int],
    colour: str,
    title: str,
    desc: str,
    t: Words = _same,
) -> Markup:
    """One bar per day."""
    return stacked_bars(days, {colour: values}, title, desc, t)


def rate_line(
    days: Sequence[str],
    rates: Sequence[float | None],
    title: str,
    desc: str,
    t: Words = _same,
) -> Markup:
    """A 0-100 % line per day; days without checks leave a gap (no point)."""
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(1, len(days))
    body = _axes(days, 100, "%")
    points: list[list[tuple[float, float]]] = [[]]
    for i, rate in enumerate(rates):
        if rate is None:
            points.append([])
            continue
        x, y = PAD_LEFT + slot * (i + 0.5), PAD_TOP + plot_h * (1 - rate)
        points[-1].append((x, y))
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{PALETTE["rate"]}">'
            f"<title>{_e(days[i])}: {rate * 100:.1f}% {_e(t('passed'))}</title></circle>"
        )
    for run in points:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{PALETTE["rate"]}" '
                f'stroke-width="2"/>'
            )
    return _frame(title, desc, body)


def hbars(items: Sequence[tuple[str, int]], title: str, desc: str, t: Words = _same) -> Markup:
    """Horizontal bars, one per labelled count (e.g. reason codes), largest first."""
    row = 24
    height = max(1, len(items)) * row + 8
    top = _nice_max(max((n for _, n in items), default=0))
    label_w = 250
    span = WIDTH - label_w - 60
    body = []
    for i, (label, n) in enumerate(items):
        y = 4 + i * row
        w = span * n / top
        body.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12" '
            f'fill="#1f2933">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
            f'fill="{PALETTE["reason"]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12" '
            f'fill="#1f2933">{n}</text>'
        )
    if not items:
        none = _e(t("none in this period"))
        body.append(f'<text x="8" y="20" font-size="12" fill="{AXIS}">{none}</text>')
    return _frame(title, desc, body, height)


__all__ = ["PALETTE", "bars", "hbars", "rate_line", "stacked_bars"]
