"""``next_run``: the scheduler's whole timing policy, one table row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from balances.config import BalanceServiceConfig
from balances.errors import ConfigError
from balances.scheduler import DEFAULT_SCHEDULER_CONFIG, SchedulerConfig, TaskConfig, next_run
from balances.scheduler.config import scheduler_config
from balances.scheduler.timing import backoff_delay, nearest_grid_point, phase

#: 2024-01-01T10:00:00Z: whole hours are multiples of 3600 from here.
H10 = 1_704_103_200.0
MIN = 60.0
HOUR = 3600.0

# (id, keyword arguments of next_run, expected)
CASES: list[tuple[str, dict[str, Any], float]] = [
    # --- first run ---
    ("first run is immediate", {"last_started": None, "now": H10}, H10),
    (
        "first run waits the initial delay after the origin",
        {"last_started": None, "now": H10 + 10, "origin": H10, "initial_delay": 30},
        H10 + 30,
    ),
    (
        "an initial delay already over is due now",
        {"last_started": None, "now": H10 + 100, "origin": H10, "initial_delay": 30},
        H10 + 100,
    ),
    (
        "without an origin the delay counts from now",
        {"last_started": None, "now": H10, "initial_delay": 30},
        H10 + 30,
    ),
    (
        "the first run is not aligned",
        {"last_started": None, "now": H10 + 37 * MIN, "align": HOUR},
        H10 + 37 * MIN,
    ),
    # --- the interval, from the last start ---
    (
        "interval after the last start",
        {"last_started": H10, "last_finished": H10 + 5, "now": H10 + 6},
        H10 + 300,
    ),
    (
        "a long run does not push the schedule back (no drift)",
        {"last_started": H10, "last_finished": H10 + 250, "now": H10 + 250},
        H10 + 300,
    ),
    (
        "an unfinished run counts as a run",
        {"last_started": H10, "last_finished": None, "now": H10 + 10},
        H10 + 300,
    ),
    (
        "due exactly at the interval",
        {"last_started": H10, "last_finished": H10 + 1, "now": H10 + 300},
        H10 + 300,
    ),
    # --- never in the past ---
    (
        "after a long pause: due now, once (missed runs are skipped)",
        {"last_started": H10, "last_finished": H10 + 1, "now": H10 + 10 * HOUR},
        H10 + 10 * HOUR,
    ),
    (
        "a last start in the future (clock skew) counts as now",
        {"last_started": H10 + HOUR, "last_finished": H10 + HOUR, "now": H10},
        H10 + 300,
    ),
    # --- backoff after consecutive failures ---
    (
        "first failure: retry after the backoff, from the finish",
        {"last_started": H10, "last_finished": H10 + 20, "now": H10 + 20, "failures": 1},
        H10 + 50,
    ),
    (
        "second failure doubles the backoff",
        {"last_started": H10, "last_finished": H10 + 20, "now": H10 + 20, "failures": 2},
        H10 + 80,
    ),
    (
        "the backoff is capped at the interval",
        {"last_started": H10, "last_finished": H10 + 20, "now": H10 + 20, "failures": 9},
        H10 + 320,
    ),
    (
        "or at max_backoff",
        {
            "last_started": H10,
            "last_finished": H10,
            "now": H10,
            "failures": 9,
            "max_backoff": 100,
        },
        H10 + 100,
    ),
    (
        "a huge failure count does not overflow",
        {"last_started": H10, "last_finished": H10, "now": H10, "failures": 10_000},
        H10 + 300,
    ),
    (
        "a failed run without a finish backs off from its start",
        {"last_started": H10, "last_finished": None, "now": H10 + 5, "failures": 1},
        H10 + 30,
    ),
    (
        "a retry already overdue is due now",
        {"last_started": H10, "last_finished": H10, "now": H10 + HOUR, "failures": 3},
        H10 + HOUR,
    ),
    (
        "retries are not aligned",
        {
            "last_started": H10 + 7,
            "last_finished": H10 + 8,
            "now": H10 + 8,
            "failures": 1,
            "interval": HOUR,
            "align": HOUR,
        },
        H10 + 38,
    ),
    # --- alignment ---
    (
        "aligned: whole hours",
        {
            "last_started": H10,
            "last_finished": H10 + 9,
            "now": H10 + 9,
            "interval": HOUR,
            "align": HOUR,
        },
        H10 + HOUR,
    ),
    (
        "aligned: a late start still leads to the whole hour",
        {
            "last_started": H10 + 5 * MIN,
            "last_finished": H10 + 6 * MIN,
            "now": H10 + 6 * MIN,
            "interval": HOUR,
            "align": HOUR,
        },
        H10 + HOUR,
    ),
    (
        "aligned: a start-up run at 10:37 is followed by 12:00, the hour nearest 11:37",
        {
            "last_started": H10 + 37 * MIN,
            "last_finished": H10 + 38 * MIN,
            "now": H10 + 38 * MIN,
            "interval": HOUR,
            "align": HOUR,
        },
        H10 + 2 * HOUR,
    ),
    (
        "aligned: quarter hours under an hourly interval",
        {
            "last_started": H10 + 2 * MIN,
            "last_finished": H10 + 3 * MIN,
            "now": H10 + 3 * MIN,
            "interval": HOUR,
            "align": 15 * MIN,
        },
        H10 + HOUR,
    ),
    (
        "aligned: a grid coarser than the interval still moves forward",
        {
            "last_started": H10,
            "last_finished": H10,
            "now": H10,
            "interval": MIN,
            "align": HOUR,
        },
        H10 + HOUR,
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_next_run(kwargs: dict[str, Any], expected: float) -> None:
    arguments = {"task": "sync", "last_finished": None, "interval": 300.0, **kwargs}
    assert next_run(**arguments) == pytest.approx(expected)


def test_jitter_is_a_fixed_phase_per_task() -> None:
    sync, prices = phase("sync", 60.0), phase("prices", 60.0)
    assert 0 <= sync < 60
    assert 0 <= prices < 60
    assert sync != prices
    assert phase("sync", 60.0) == sync  # the same on every replica
    assert phase("sync", 0.0) == 0.0


def test_jitter_shifts_the_first_run_and_the_grid_but_not_the_interval() -> None:
    shift = phase("maintain", 120.0)
    first = next_run("maintain", None, None, H10, HOUR, origin=H10, jitter=120.0)
    assert first == pytest.approx(H10 + shift)
    aligned = next_run("maintain", first, first + 1, first + 1, HOUR, align=HOUR, jitter=120.0)
    assert aligned == pytest.approx(H10 + HOUR + shift)
    plain = next_run("sync", H10 + 7, H10 + 8, H10 + 8, 300.0, jitter=120.0)
    assert plain == H10 + 307  # measured from the (already shifted) start: no drift


def test_helpers() -> None:
    assert [backoff_delay(n, 30.0, 300.0) for n in range(6)] == [0, 30, 60, 120, 240, 300]
    assert nearest_grid_point(H10 + 29 * MIN, HOUR) == H10
    assert nearest_grid_point(H10 + 30 * MIN, HOUR) == H10 + HOUR  # ties: the later one
    assert nearest_grid_point(H10 + 31 * MIN, HOUR, offset=10.0) == H10 + HOUR + 10


@pytest.mark.parametrize(
    "kwargs",
    [{"interval": 0.0}, {"failures": -1}, {"backoff": 0.0}, {"align": -5.0}],
)
def test_nonsense_is_refused(kwargs: dict[str, Any]) -> None:
    arguments = {"task": "sync", "last_started": H10, "last_finished": H10, "now": H10}
    with pytest.raises(ValueError, match="must be"):
        next_run(**{"interval": 300.0, **arguments, **kwargs})


def test_the_default_configuration() -> None:
    config = DEFAULT_SCHEDULER_CONFIG
    assert (config.sync.interval, config.sync.enabled) == (300.0, True)
    assert (config.maintain.interval, config.maintain.align) == (24 * HOUR, 24 * HOUR)
    assert config.prices.interval == config.aggregates.interval == HOUR
    # Aggregates are opt-in (a billed write per address and run): off until named.
    assert config.aggregate_periods == ()
    assert not config.runs("aggregates")
    assert config.runs("sync")
    assert SchedulerConfig(aggregate_periods=("30d",)).runs("aggregates")
    assert (config.lease_seconds, config.renew_fraction) == (600.0, 0.5)
    assert config.sync_concurrency is None  # the service's
    assert config.segment_addresses == 5000  # a pass is one journal segment
    assert config.as_dict()["sync"]["interval"] == 300.0


def test_settings_name_the_aggregate_periods() -> None:
    settings = BalanceServiceConfig.from_env(
        {"BALANCES_SCHEDULER__AGGREGATE_PERIODS": "30d, 1y"}
    ).scheduler
    config = scheduler_config(settings)
    assert config.aggregate_periods == ("30d", "1y")
    assert config.runs("aggregates")
    assert scheduler_config(BalanceServiceConfig().scheduler).aggregate_periods == ()
    with pytest.raises(ConfigError, match="aggregate_periods"):
        scheduler_config(
            BalanceServiceConfig.from_env(
                {"BALANCES_SCHEDULER__AGGREGATE_PERIODS": "fortnight"}
            ).scheduler
        )


@pytest.mark.parametrize(
    "build",
    [
        lambda: TaskConfig(0.0),
        lambda: TaskConfig(60.0, align=0.0),
        lambda: TaskConfig(60.0, initial_delay=-1.0),
        lambda: SchedulerConfig(sync_concurrency=0),
        lambda: SchedulerConfig(rate_limit_share=1.5),
        lambda: SchedulerConfig(renew_fraction=1.0),
        lambda: SchedulerConfig(aggregate_periods=("fortnight",)),
    ],
)
def test_bad_configuration_is_refused(build: Any) -> None:
    with pytest.raises(ConfigError):
        build()
