"""Fault switches of the Stacks API stand-in, mutable while it serves.

Randomised faults (``error_rate``, ``malformed_rate``) draw from a seeded RNG so a
test run is reproducible; the ``force_*`` counters fault exactly the next N
requests. Rate limiting is a sliding one-minute window over ``clock`` (a
monotonic clock by default; tests may swap in a fake one instead of sleeping).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

DeprecationMode = Literal["off", "warn", "gone"]
MalformedKind = Literal["any", "truncated", "html", "missing_field"]

DEPRECATION_WARNING = '299 - "Deprecated: See https://docs.hiro.so/stacks/api for more information"'
RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the fault layer decided before a request reaches its route."""

    status: int | None  # None: let the request through
    headers: dict[str, str]


@dataclass
class FaultConfig:
    """Switches; change them at any time, they apply from the next request on.

    - ``deprecated``: v1/v2 balance routes send the ``Warning: 299`` header
      (``"warn"``, the Hiro API since 9.0), answer ``410 Gone`` (``"gone"``, with
      deprecated endpoints disabled), or neither (``"off"``, an older API).
    - ``v3_missing``: v3 balance routes answer 404, as an API before v9 would.
    - ``rate_limit_per_minute``: a sliding-window limit; over it, 429 with
      ``retry-after``. Every response then carries ``ratelimit-*`` headers.
    - ``force_429``: answer the next N requests 429 with ``retry-after: retry_after``.
    - ``latency``: seconds added to every response.
    - ``error_rate`` / ``force_5xx``: a fraction of (or the next N) answers are 5xx,
      with a status drawn from ``error_statuses``.
    - ``malformed_rate`` / ``force_malformed``: a 200 whose body is not JSON or
      lacks a required field (``malformed_kind`` picks one, ``"any"`` draws).
    - ``etags``: principal routes send ``ETag`` and answer ``If-None-Match`` with 304.
    - ``routes``: the faults above (latency, 429s, 5xx, malformed bodies) hit only
      routes whose template starts with one of these (empty: every route).
    """

    deprecated: DeprecationMode = "warn"
    v3_missing: bool = False
    rate_limit_per_minute: int | None = None
    force_429: int = 0
    retry_after: int = 1
    latency: float = 0.0
    error_rate: float = 0.0
    force_5xx: int = 0
    error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    malformed_rate: float = 0.0
    force_malformed: int = 0
    malformed_kind: MalformedKind = "any"
    etags: bool = True
    routes: tuple[str, ...] = ()
    seed: int = 0
    clock: Callable[[], float] = time.monotonic
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _window: deque[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._window = deque()

    def applies_to(self, template: str) -> bool:
        return not self.routes or template.startswith(self.routes)

    def reseed(self, seed: int) -> None:
        """Restart the random faults from ``seed``."""
        self.seed = seed
        self._rng = random.Random(seed)

    def reset_rate_window(self) -> None:
        self._window.clear()

    def admit(self) -> Verdict:
        """Decide, for one incoming request, whether a fault answers it instead."""
        headers = self._rate_headers_and_admit()
        if headers.get("retry-after") is not None:
            return Verdict(429, headers)
        if self.force_429 > 0:
            self.force_429 -= 1
            return Verdict(429, {**headers, "retry-after": str(self.retry_after)})
        if self.force_5xx > 0:
            self.force_5xx -= 1
            return Verdict(self._error_status(), headers)
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            return Verdict(self._error_status(), headers)
        return Verdict(None, headers)

    def _error_status(self) -> int:
        return self._rng.choice(self.error_statuses) if self.error_statuses else 503

    def draw_malformed(self) -> MalformedKind | None:
        """For a 200 JSON answer: whether (and how) to spoil its body."""
        if self.force_malformed > 0:
            self.force_malformed -= 1
        elif not (self.malformed_rate > 0 and self._rng.random() < self.malformed_rate):
            return None
        if self.malformed_kind != "any":
            return self.malformed_kind
        kinds: tuple[MalformedKind, ...] = ("truncated", "html", "missing_field")
        return self._rng.choice(kinds)

    def _rate_headers_and_admit(self) -> dict[str, str]:
        """Sliding-window accounting; ``retry-after`` is set when the request is refused."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return {}
        now = self.clock()
        while self._window and self._window[0] <= now - RATE_WINDOW_SECONDS:
            self._window.popleft()
        refused = len(self._window) >= limit
        if not refused:
            self._window.append(now)
        reset = (
            math.ceil(self._window[0] + RATE_WINDOW_SECONDS - now)
            if self._window
            else int(RATE_WINDOW_SECONDS)
        )
        headers = {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(max(0, limit - len(self._window))),
            "ratelimit-reset": str(max(1, reset)),
            "x-ratelimit-limit-stacks-minute": str(limit),
            "x-ratelimit-remaining-stacks-minute": str(max(0, limit - len(self._window))),
        }
        if refused:
            headers["retry-after"] = str(max(1, reset))
        return headers
