"""The dashboard's SVG chart builder: scaling, shapes, gaps, labels and escaping.

The SVG is parsed as XML (it is well-formed, without a namespace), so the tests
read coordinates the way a browser would draw them.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from balances.api.dashboard_charts import (
    ChartPoint,
    ChartSpec,
    Frame,
    format_exact,
    format_moment,
    format_ticks,
    nice_step,
    plot,
    render_chart,
    value_domain,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
MAX_U128 = 2**128 - 1
LINE = ChartSpec("line", "portfolio", "Portfolio", prefix="$")
STEP = ChartSpec("step", "token", "STX balance", unit="STX")


def _days(*values: int | Decimal | None) -> list[ChartPoint]:
    return [ChartPoint(START + timedelta(days=i), v) for i, v in enumerate(values)]


def _svg(points: list[ChartPoint], spec: ChartSpec) -> ET.Element:
    return ET.fromstring(render_chart(points, spec))


def _circles(svg: ET.Element) -> list[tuple[float, float]]:
    return [
        (float(c.attrib["cx"]), float(c.attrib["cy"]))
        for c in svg.iter("circle")
        if c.attrib.get("class") == "point"
    ]


def _vertices(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]


def _lines(svg: ET.Element) -> list[str]:
    return [p.attrib["d"] for p in svg.iter("path") if p.attrib.get("class") == "line"]


# --- scaling -------------------------------------------------------------------------------


def test_the_lowest_value_is_lowest_and_the_highest_highest() -> None:
    frame = Frame(LINE.width, LINE.height)
    svg = _svg(_days(10, 40, 20, 30), LINE)
    circles = _circles(svg)
    ys = [y for _, y in circles]
    assert ys.index(max(ys)) == 0, "SVG y grows downwards: the smallest value is lowest"
    assert ys.index(min(ys)) == 1
    assert all(frame.y1 <= y <= frame.y0 for y in ys)
    xs = [x for x, _ in circles]
    assert xs == sorted(xs)
    assert xs[0] == frame.x0
    assert xs[-1] == frame.x1, "without an end, the last point is the right edge"


def test_values_map_linearly_onto_the_axis() -> None:
    chart = plot(_days(0, 50, 100), LINE)
    ys = [coord[1] for coord in chart.coords if coord is not None]
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])
    ticks = {label: y for y, label in chart.y_ticks}
    assert ticks["$0"] == ys[0]
    assert ticks["$100"] == ys[2]


def test_time_is_spread_to_the_end_of_the_window() -> None:
    end = START + timedelta(days=4)
    chart = plot(_days(1, 2), ChartSpec("step", "token", "t", end=end))
    frame = chart.frame
    xs = [coord[0] for coord in chart.coords if coord is not None]
    assert xs[0] == frame.x0
    assert xs[1] == pytest.approx(frame.x0 + (frame.x1 - frame.x0) / 4, abs=0.01)
    assert chart.segments[0][-1][0] == frame.x1, "the last step lasts until the end"


def test_nice_steps_are_one_two_or_five_times_a_power_of_ten() -> None:
    assert nice_step(Fraction(7)) == 10
    assert nice_step(Fraction(3)) == 5
    assert nice_step(Fraction(1)) == 1
    assert nice_step(Fraction(11, 10)) == 2
    assert nice_step(Fraction(3, 1000)) == Fraction(5, 1000)
    assert nice_step(Fraction(MAX_U128, 4)) == 10**38


def test_the_domain_covers_the_values_in_whole_steps() -> None:
    lo, hi, step = value_domain([Fraction(13), Fraction(87)])
    assert (lo, hi, step) == (0, 100, 20)
    assert value_domain([Fraction(1003), Fraction(1007)]) == (1003, 1007, 1)


# --- shapes ------------------------------------------------------------------------------


def test_a_step_holds_each_value_until_the_next_bucket() -> None:
    svg = _svg(_days(10, 20, 20, 5), STEP)
    [d] = _lines(svg)
    vertices = _vertices(d)
    circles = _circles(svg)
    for (_, y0), (x1, y1) in itertools.pairwise(circles):
        assert (x1, y0) in vertices, "horizontal to the next bucket at the old value"
        assert (x1, y1) in vertices, "then vertical to the new value"
    for (xa, ya), (xb, yb) in itertools.pairwise(vertices):
        assert xa == xb or ya == yb, "a step chart has no diagonal segments"


def test_a_line_joins_the_points_directly() -> None:
    svg = _svg(_days(10, 20, 5), LINE)
    [d] = _lines(svg)
    assert _vertices(d) == _circles(svg)


def test_every_point_with_a_value_is_one_circle_and_counted() -> None:
    points = _days(*range(31))
    svg = _svg(points, LINE)
    assert svg.attrib["data-points"] == "31"
    assert svg.attrib["data-buckets"] == "31"
    assert len(_circles(svg)) == 31
    assert svg.attrib["data-chart"] == "portfolio"


# --- missing values, edge cases ---------------------------------------------------------------


def test_no_points_draws_an_empty_chart_that_says_so() -> None:
    svg = _svg([], LINE)
    assert (svg.attrib["data-points"], svg.attrib["data-buckets"]) == ("0", "0")
    assert _circles(svg) == []
    assert _lines(svg) == []
    assert "no data" in "".join(svg.itertext())


def test_points_without_values_are_gaps_not_zeros() -> None:
    svg = _svg(_days(None, 10, 20, None, 30, None), STEP)
    assert svg.attrib["data-points"] == "3"
    assert svg.attrib["data-buckets"] == "6"
    lines = _lines(svg)
    assert len(lines) == 2, "the line breaks at the missing bucket"
    chart = plot(_days(None, 10, 20, None, 30, None), STEP)
    assert [coord is None for coord in chart.coords] == [True, False, False, True, False, True]
    zero = {label: y for y, label in chart.y_ticks}.get("0")
    assert zero is None, "the axis does not reach down to a zero nobody holds"
    assert [len(_vertices(d)) for d in lines] == [4, 2]


def test_only_missing_values_is_an_empty_chart() -> None:
    svg = _svg(_days(None, None), LINE)
    assert (svg.attrib["data-points"], svg.attrib["data-buckets"]) == ("0", "2")
    assert "no data" in "".join(svg.itertext())


def test_one_point_is_drawn_mid_chart() -> None:
    frame = Frame(LINE.width, LINE.height)
    svg = _svg(_days(Decimal("5")), LINE)
    [(x, y)] = _circles(svg)
    assert x == (frame.x0 + frame.x1) / 2
    assert y == (frame.y0 + frame.y1) / 2
    assert svg.attrib["data-points"] == "1"


def test_all_equal_values_are_a_flat_line_inside_the_chart() -> None:
    frame = Frame(STEP.width, STEP.height)
    svg = _svg(_days(7, 7, 7, 7), STEP)
    ys = {y for _, y in _circles(svg)}
    assert len(ys) == 1
    [y] = ys
    assert frame.y1 < y < frame.y0
    labels = [t.text for t in svg.iter("text") if "y" in t.attrib.get("class", "").split()]
    assert len(set(labels)) == len(labels) >= 2


def test_all_zero_values_sit_on_the_axis() -> None:
    frame = Frame(STEP.width, STEP.height)
    ys = {y for _, y in _circles(_svg(_days(0, 0, 0), STEP))}
    assert ys == {frame.y0}


@pytest.mark.parametrize(
    "values",
    [
        (MAX_U128, MAX_U128 - 1, 0),
        (MAX_U128, MAX_U128, MAX_U128),
        (MAX_U128 - 10, MAX_U128 - 1, MAX_U128 - 5),
    ],
    ids=["full-range", "all-max", "tiny-range-at-max"],
)
def test_huge_u128_values_scale_exactly(values: tuple[int, ...]) -> None:
    frame = Frame(STEP.width, STEP.height)
    svg = _svg(_days(*values), STEP)
    circles = _circles(svg)
    assert len(circles) == 3
    assert all(frame.y1 <= y <= frame.y0 for _, y in circles)
    ordered = sorted(range(3), key=lambda i: values[i])
    ys = [circles[i][1] for i in ordered]
    assert ys == sorted(ys, reverse=True), "larger values are higher, even 1 apart at 2**128"
    if max(values) - min(values) < 100:  # the range is what the chart spreads out
        assert len({y for _, y in circles}) == len(set(values))
    tips = [t.text or "" for c in svg.iter("circle") for t in c.iter("title")]
    assert f"{MAX_U128 - 1:,}" in " ".join(tips) or f"{MAX_U128:,}" in " ".join(tips)


# --- labels ------------------------------------------------------------------------------


def test_axis_labels_use_one_unit_and_enough_places() -> None:
    ticks = [Fraction(i * 500_000) for i in range(4)]
    assert format_ticks(ticks, Fraction(500_000), "$") == ["$0", "$0.5M", "$1.0M", "$1.5M"]
    small = [Fraction(i, 100) for i in range(3)]
    assert format_ticks(small, Fraction(1, 100)) == ["0", "0.01", "0.02"]
    assert format_ticks([Fraction(0), Fraction(2500)], Fraction(500)) == ["0", "2.5K"]
    huge = format_ticks([Fraction(0), Fraction(2 * 10**38)], Fraction(10**38))
    assert huge[0] == "0"
    assert "e+38" in huge[1]


def test_date_labels_fit_the_span() -> None:
    at = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    assert format_moment(at, timedelta(hours=24)) == "03 Nov 14:00"
    assert format_moment(at, timedelta(days=30)) == "03 Nov"
    assert format_moment(at, timedelta(days=900)) == "Nov 2026"


def test_the_x_axis_labels_dates_of_real_buckets() -> None:
    chart = plot(_days(*range(31)), LINE)
    labels = [label for _, label in chart.x_ticks]
    assert len(labels) == 6
    assert labels[0] == "01 Nov"
    assert labels[-1] == "01 Dec"


@pytest.mark.parametrize(("hours", "width"), [(25, 720), (25, 480), (169, 720), (2, 480)])
def test_date_labels_are_evenly_spaced_and_fit_the_width(hours: int, width: int) -> None:
    points = [ChartPoint(START + timedelta(hours=i), i) for i in range(hours)]
    chart = plot(points, ChartSpec("step", "token", "t", width=width))
    xs = [x for x, _ in chart.x_ticks]
    assert 2 <= len(xs) <= width // 110
    gaps = {round(b - a, 1) for a, b in itertools.pairwise(xs)}
    assert len(gaps) == 1, "one stride between labels"
    assert xs[0] == chart.frame.x0


def test_tooltips_carry_every_digit() -> None:
    assert format_exact(Decimal("1234567.000001"), "$") == "$1,234,567.000001"
    assert format_exact(10**30, unit="WHL") == f"{10**30:,} WHL"
    svg = _svg(_days(Decimal("53187.499831")), STEP)
    [title] = [t.text for c in svg.iter("circle") for t in c.iter("title")]
    assert title == "2026-11-01 00:00 UTC: 53,187.499831 STX"


def test_every_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    spec = ChartSpec("step", "token", hostile, unit=hostile, data={"token": hostile})
    text = render_chart(_days(1, 2), spec)
    assert "<script>" not in text
    svg = ET.fromstring(text)  # still well-formed
    assert svg.attrib["data-token"] == hostile
    assert svg.attrib["aria-label"] == hostile
