"""What every benchmark module uses: timing helpers and the ``Result`` row.

A benchmark module is ``benchmarks/bench_*.py`` with ``def run(quick: bool) ->
list[Result]`` (sync) or ``async def run(quick: bool)``. Figures are compared with a
baseline measured in the same run, as a ratio, never with an absolute time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Result:
    """One row of the table.

    ``figure`` and ``baseline`` share ``unit``; ``ratio`` is ``figure / baseline``
    unless the module sets it. ``target`` is the ratio bound (``ratio <= target``
    when ``lower_is_better``), or None when the row is informational.
    """

    name: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    lower_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.figure / self.baseline

    @property
    def met(self) -> bool | None:
        ratio = self.ratio if self.baseline is not None else self.figure
        if self.target is None or ratio is None:
            return None
        return ratio <= self.target if self.lower_is_better else ratio >= self.target

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def best_seconds_per_call(func: Callable[[], object], *, number: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``number`` calls, in seconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best


async def best_seconds_per_call_async(
    func: Callable[[], Awaitable[object]], *, number: int, repeat: int = 5
) -> float:
    """Async twin of :func:`best_seconds_per_call`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            await func()
        best = min(best, (time.perf_counter() - start) / number)
    return best
