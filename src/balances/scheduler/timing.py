"""When a task runs next: one pure function, so the whole schedule is table-tested.

:func:`next_run` answers "when is this task due?" from what is recorded of its
last run and nothing else; the scheduler runs a task when the answer is ``<= now``.
The rules, in order:

1. **Times from the future count as now.** A ``last_started``/``last_finished``
   later than ``now`` (another replica's clock runs ahead) is read as ``now``, so a
   skewed clock can delay a task by at most one interval, never block it.
2. **First run.** A task that never started is due at ``origin + initial_delay +
   phase`` (``origin``: when this scheduler started; default ``now``, i.e. at
   once). Alignment does not apply: maintenance runs at start-up, then on the grid.
3. **After a failure** (``failures`` consecutive ones, ``>= 1``): ``backoff *
   2**(failures - 1)`` seconds after the failed run finished, capped at
   ``max_backoff`` (default: the interval). Retries are neither aligned nor jittered.
4. **After a success:** ``interval`` after the last *start*, so a task's duration
   does not push its schedule back (no drift). With ``align``, the run moves to the
   grid point ``k * align + phase`` (UTC epoch seconds) *nearest* to that moment,
   ties going to the later one: an hourly task aligned to 3600 runs at whole hours
   even if one run started late, and a start-up run at 10:37 is followed by one at
   12:00 (the nearest hour to 11:37), not by one 23 minutes later at 11:00.
5. **Never in the past.** An overdue task is due ``now``: after a long pause the
   missed runs are not made up (no pile-up); one run happens, and rule 4 continues
   from its start.

``phase`` is a fixed offset in ``[0, jitter)`` derived from the task's name (a
hash, so every replica computes the same one): with ``jitter`` several deployments
aligned to the same grid do not all start at the same second. It shifts the first
run and the alignment grid, never the interval, so it adds no drift either.
"""

from __future__ import annotations

import hashlib
import math

#: 2**62 seconds is beyond any cap: larger exponents only risk float overflow.
_MAX_EXPONENT = 62


def phase(task: str, jitter: float) -> float:
    """The task's fixed offset in ``[0, jitter)``, the same on every replica."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.blake2b(task.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * jitter


def backoff_delay(failures: int, backoff: float, cap: float) -> float:
    """Seconds before retry number ``failures`` (1 = the first): doubling, at most ``cap``."""
    if failures < 1:
        return 0.0
    return min(backoff * 2.0 ** min(failures - 1, _MAX_EXPONENT), cap)


def nearest_grid_point(moment: float, spacing: float, offset: float = 0.0) -> float:
    """The point ``k * spacing + offset`` nearest to ``moment`` (ties: the later one)."""
    return math.floor((moment - offset) / spacing + 0.5) * spacing + offset


def next_run(
    task: str,
    last_started: float | None,
    last_finished: float | None,
    now: float,
    interval: float,
    failures: int = 0,
    *,
    origin: float | None = None,
    initial_delay: float = 0.0,
    backoff: float = 30.0,
    max_backoff: float | None = None,
    align: float | None = None,
    jitter: float = 0.0,
) -> float:
    """When ``task`` is due (unix seconds, ``>= now``); see the module docstring."""
    _check(interval, failures, backoff, align)
    shift = phase(task, jitter)
    if last_started is None:
        start = now if origin is None else origin
        return max(start + initial_delay + shift, now)
    started = min(last_started, now)
    if failures > 0:
        finished = started if last_finished is None else min(max(last_finished, started), now)
        cap = interval if max_backoff is None else max_backoff
        return max(finished + backoff_delay(failures, backoff, cap), now)
    due = started + interval
    if align is not None:
        due = nearest_grid_point(due, align, shift)
        while due <= started:  # an alignment coarser than twice the interval
            due += align
    return max(due, now)


def _check(interval: float, failures: int, backoff: float, align: float | None) -> None:
    if not interval > 0:
        raise ValueError(f"interval must be > 0 seconds, got {interval}")
    if failures < 0:
        raise ValueError(f"failures must be >= 0, got {failures}")
    if not backoff > 0:
        raise ValueError(f"backoff must be > 0 seconds, got {backoff}")
    if align is not None and not align > 0:
        raise ValueError(f"align must be > 0 seconds, got {align}")
