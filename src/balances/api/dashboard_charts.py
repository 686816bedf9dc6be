"""Pure SVG charts for the dashboard: points in, SVG text out (no I/O, no service).

The charts are drawn on the server because the page must be complete without
JavaScript and work offline, and because tests (and people reading the HTML) can
then count what was drawn: every chart carries ``data-points`` (points drawn) and
``data-buckets`` (points given), and draws one ``class="point"`` circle per point
with a value.

Amounts can be u128 (39 digits), beyond what a float holds exactly, so positions
are computed with exact fractions and only the final pixel coordinate is a float.
A point without a value (an amount before its history begins, a bucket without a
price) is a gap in the line, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from html import escape
from typing import Literal

Number = Decimal | int
Kind = Literal["line", "step"]

#: Axis label sizes: a thousand (K) up to a trillion (T); beyond, scientific notation.
_UNITS = ((Fraction(10**12), "T"), (Fraction(10**9), "B"), (Fraction(10**6), "M"))
_SCIENTIFIC_FROM = Fraction(10**15)
_TARGET_TICKS = 4
_X_TICKS = 6
#: Room for one date label ("03 Nov 14:00" is about 70 units wide).
_X_TICK_WIDTH = 110


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """A bucket: from ``at`` on, ``value`` (None: unknown, drawn as a gap)."""

    at: datetime
    value: Number | None


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """What to draw: ``kind`` (``line`` joins points, ``step`` holds each value until
    the next point, or until ``end``), a name for ``data-chart``, an accessible title,
    the prefix and unit of values, and extra ``data-*`` attributes."""

    kind: Kind
    name: str
    title: str
    prefix: str = ""
    unit: str = ""
    end: datetime | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    width: int = 720
    height: int = 240


@dataclass(frozen=True, slots=True)
class Frame:
    """The plot area inside the SVG: room on the left for amounts, below for dates."""

    width: int
    height: int
    left: int = 76
    right: int = 40  # half the widest date label ("03 Nov 14:00") under the last bucket
    top: int = 14
    bottom: int = 30

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:
        """The bottom of the plot (SVG y grows downwards)."""
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:
        return float(self.top)


@dataclass(frozen=True, slots=True)
class Plot:
    """The geometry of a chart, before it becomes SVG text (what the unit tests check)."""

    spec: ChartSpec
    frame: Frame
    coords: list[tuple[float, float] | None]
    segments: list[list[tuple[float, float]]]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    tooltips: list[str]

    @property
    def points(self) -> int:
        """How many points are drawn (those with a value)."""
        return sum(coord is not None for coord in self.coords)


def render_chart(points: Sequence[ChartPoint], spec: ChartSpec) -> str:
    """The SVG element of ``points`` drawn as ``spec`` says."""
    return to_svg(plot(points, spec))


def plot(points: Sequence[ChartPoint], spec: ChartSpec) -> Plot:
    """Scale ``points`` into the chart's frame."""
    frame = Frame(spec.width, spec.height)
    values = [Fraction(p.value) for p in points if p.value is not None]
    if not values:
        return Plot(spec, frame, [None] * len(points), [], [], [], [])
    lo, hi, step = value_domain(values)
    t0, t1 = time_domain(points, spec.end)
    xs = [_x(p.at, t0, t1, frame) for p in points]
    ys = [None if p.value is None else _y(Fraction(p.value), lo, hi, frame) for p in points]
    coords: list[tuple[float, float] | None] = [
        None if y is None else (x, y) for x, y in zip(xs, ys, strict=True)
    ]
    x_end = _x(t1, t0, t1, frame)
    ticks = tick_values(lo, hi, step)
    labels = format_ticks(ticks, step, spec.prefix)
    return Plot(
        spec,
        frame,
        coords,
        segments(xs, ys, spec.kind, x_end),
        _time_ticks(points, t0, t1, frame),
        [(_y(tick, lo, hi, frame), label) for tick, label in zip(ticks, labels, strict=True)],
        [_tooltip(p, spec) for p in points if p.value is not None],
    )


# --- scales ------------------------------------------------------------------------------


def value_domain(values: Sequence[Fraction]) -> tuple[Fraction, Fraction, Fraction]:
    """``(low, high, tick step)``: the values' range widened to whole tick steps.

    All-equal values get room around them (a flat line mid-chart, not on an edge),
    and a range of non-negative values never reaches below zero.
    """
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) / 10 if lo else Fraction(1)
        lo, hi = lo - pad, hi + pad
        if min(values) >= 0:
            lo = max(lo, Fraction(0))
    step = nice_step((hi - lo) / _TARGET_TICKS)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def nice_step(raw: Fraction) -> Fraction:
    """The smallest of 1, 2 or 5 times a power of ten that is at least ``raw`` (> 0)."""
    exponent = math.floor(math.log10(raw.numerator) - math.log10(raw.denominator))
    base = Fraction(10) ** exponent
    while base > raw:  # log10 of huge numbers is a float: correct its rounding
        base /= 10
    while base * 10 <= raw:
        base *= 10
    return next(base * m for m in (1, 2, 5, 10) if base * m >= raw)


def tick_values(lo: Fraction, hi: Fraction, step: Fraction) -> list[Fraction]:
    count = round((hi - lo) / step)
    return [lo + step * i for i in range(count + 1)]


def time_domain(points: Sequence[ChartPoint], end: datetime | None) -> tuple[datetime, datetime]:
    """From the first point to ``end`` (or the last point, if later)."""
    first, last = points[0].at, points[-1].at
    return first, last if end is None or end < last else end


def _x(at: datetime, t0: datetime, t1: datetime, frame: Frame) -> float:
    if t1 == t0:
        return round((frame.x0 + frame.x1) / 2, 2)
    share = (at - t0) / (t1 - t0)
    return round(frame.x0 + share * (frame.x1 - frame.x0), 2)


def _y(value: Fraction, lo: Fraction, hi: Fraction, frame: Frame) -> float:
    share = float((value - lo) / (hi - lo))
    return round(frame.y0 - share * (frame.y0 - frame.y1), 2)


# --- shapes ------------------------------------------------------------------------------


def segments(
    xs: Sequence[float], ys: Sequence[float | None], kind: Kind, x_end: float
) -> list[list[tuple[float, float]]]:
    """The polylines to draw, split at points without a value.

    A step holds its value until the next bucket's x (or ``x_end`` after the last
    one), then moves vertically to the next value; a bucket without a value ends it.
    """
    found: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for index, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if y is None:
            if current:
                found.append(current)
            current = []
            continue
        current.append((x, y))
        next_x = xs[index + 1] if index + 1 < len(xs) else x_end
        if kind == "step" and next_x != x:
            current.append((next_x, y))
    if current:
        found.append(current)
    return found


def path_data(segment: Sequence[tuple[float, float]]) -> str:
    head, *rest = segment
    return " ".join([f"M{_n(head[0])},{_n(head[1])}", *(f"L{_n(x)},{_n(y)}" for x, y in rest)])


def area_data(segment: Sequence[tuple[float, float]], baseline: float) -> str:
    """The line closed down to ``baseline``: the shaded area under it."""
    first, last = segment[0], segment[-1]
    return f"{path_data(segment)} L{_n(last[0])},{_n(baseline)} L{_n(first[0])},{_n(baseline)} Z"


def _n(number: float) -> str:
    """A coordinate as short text: ``12``, ``12.5``."""
    return f"{number:.2f}".rstrip("0").rstrip(".")


# --- labels ------------------------------------------------------------------------------


def format_ticks(ticks: Sequence[Fraction], step: Fraction, prefix: str = "") -> list[str]:
    """Axis labels with one unit for the whole axis and just enough places to tell
    neighbours apart: ``$1.5K``, ``250M``, ``3.4028e+38``."""
    magnitude = max(abs(tick) for tick in ticks)
    if magnitude >= _SCIENTIFIC_FROM:
        digits = min(40, max(1, math.ceil(math.log10(float(magnitude / step))) + 1))
        return [prefix + _scientific(tick, digits) for tick in ticks]
    unit, suffix = next(((u, s) for u, s in _UNITS if magnitude >= u), (Fraction(1), ""))
    if not suffix and magnitude >= 1000:
        unit, suffix = Fraction(1000), "K"
    places = max(0, -math.floor(math.log10(float(step / unit)) + 1e-9))
    return [prefix + ("0" if t == 0 else _fixed(t / unit, places) + suffix) for t in ticks]


def _fixed(value: Fraction, places: int) -> str:
    with localcontext(prec=60):
        text = f"{Decimal(value.numerator) / Decimal(value.denominator):,.{places}f}"
    return text


def _scientific(value: Fraction, digits: int) -> str:
    if value == 0:
        return "0"
    with localcontext(prec=60):
        return f"{Decimal(value.numerator) / Decimal(value.denominator):.{digits}e}"


def format_exact(value: Number, prefix: str = "", unit: str = "") -> str:
    """A value in full (a tooltip): every digit of an amount, thousands separated."""
    text = f"{Decimal(value):,f}"
    return f"{prefix}{text}{' ' + unit if unit else ''}"


def format_moment(at: datetime, span: timedelta) -> str:
    """A date label as precise as the chart's span needs."""
    if span <= timedelta(days=2):
        return at.strftime("%d %b %H:%M")
    if span <= timedelta(days=400):
        return at.strftime("%d %b")
    return at.strftime("%b %Y")


def _time_ticks(
    points: Sequence[ChartPoint], t0: datetime, t1: datetime, frame: Frame
) -> list[tuple[float, str]]:
    """Dates of every k-th bucket (evenly spaced, each labelling a real bucket), as
    many as fit the chart's width."""
    most = max(2, min(_X_TICKS, frame.width // _X_TICK_WIDTH))
    stride = max(1, math.ceil((len(points) - 1) / (most - 1)))
    span = t1 - t0
    return [
        (_x(points[i].at, t0, t1, frame), format_moment(points[i].at, span))
        for i in range(0, len(points), stride)
    ]


def _tooltip(point: ChartPoint, spec: ChartSpec) -> str:
    assert point.value is not None
    moment = point.at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{moment}: {format_exact(point.value, spec.prefix, spec.unit)}"


# --- SVG ---------------------------------------------------------------------------------


def to_svg(chart: Plot) -> str:
    """The chart as an inline ``<svg>`` element; every text in it is escaped."""
    spec, frame = chart.spec, chart.frame
    extra = "".join(f' data-{escape(k)}="{escape(v)}"' for k, v in spec.data.items())
    head = (
        f'<svg class="chart chart-{spec.kind}" data-chart="{escape(spec.name)}"'
        f' data-points="{chart.points}" data-buckets="{len(chart.coords)}"{extra}'
        f' viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}"'
        f' height="{frame.height}" role="img" aria-label="{escape(spec.title)}">'
    )
    body = [f"<title>{escape(spec.title)}</title>", *_axes(chart)]
    if chart.points == 0:
        body.append(_empty(frame))
    body += _lines(chart)
    body.append(_circles(chart))
    return "".join([head, *body, "</svg>"])


def _axes(chart: Plot) -> list[str]:
    frame = chart.frame
    parts = ['<g class="grid">']
    for y, label in chart.y_ticks:
        parts.append(
            f'<line x1="{_n(frame.x0)}" y1="{_n(y)}" x2="{_n(frame.x1)}" y2="{_n(y)}"/>'
            f'<text class="tick y" x="{_n(frame.x0 - 8)}" y="{_n(y + 4)}">{escape(label)}</text>'
        )
    parts.append("</g>")
    parts.append(f'<g class="axis"><line x1="{_n(frame.x0)}" y1="{_n(frame.y0)}"')
    parts.append(f' x2="{_n(frame.x1)}" y2="{_n(frame.y0)}"/>')
    for x, label in chart.x_ticks:
        parts.append(
            f'<text class="tick x" x="{_n(x)}" y="{_n(frame.y0 + 19)}">{escape(label)}</text>'
        )
    parts.append("</g>")
    return parts


def _lines(chart: Plot) -> list[str]:
    baseline = chart.frame.y0
    areas = "".join(f'<path class="area" d="{area_data(s, baseline)}"/>' for s in chart.segments)
    lines = "".join(f'<path class="line" d="{path_data(s)}"/>' for s in chart.segments)
    return [areas, lines]


def _circles(chart: Plot) -> str:
    drawn = [coord for coord in chart.coords if coord is not None]
    radius = 3 if len(drawn) <= 60 else 2 if len(drawn) <= 200 else 1.2
    circles = (
        f'<circle class="point" cx="{_n(x)}" cy="{_n(y)}" r="{radius}">'
        f"<title>{escape(tip)}</title></circle>"
        for (x, y), tip in zip(drawn, chart.tooltips, strict=True)
    )
    return '<g class="points">' + "".join(circles) + "</g>"


def _empty(frame: Frame) -> str:
    x, y = (frame.x0 + frame.x1) / 2, (frame.y0 + frame.y1) / 2
    return f'<text class="empty" x="{_n(x)}" y="{_n(y)}">no data for this period</text>'


__all__ = [
    "ChartPoint",
    "ChartSpec",
    "Frame",
    "Plot",
    "format_exact",
    "format_moment",
    "format_ticks",
    "nice_step",
    "plot",
    "render_chart",
    "segments",
    "to_svg",
    "value_domain",
]
