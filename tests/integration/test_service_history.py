"""BalanceService history, portfolio, point-in-time balances and backfill, against the
Stacks API stand-in over loopback HTTP, checked against the stand-in's ledger.

Ground truth is ``chain.balance(token, address, at_height=...)`` at each bucket's end,
with times mapped to heights through ``chain.blocks``. Simulated days advance the
chain and the fake wall clock together ("lockstep": a refresh happens at the time
of the block it reads), so a live history can be exact at every bucket end. Both
storage layouts run where the behaviour is the layout's (``layout=``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
import pytest_asyncio
from service_helpers import (
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    OTHER,
    Kit,
    SharedServer,
    config,
    open_kit,
    shared_server,
)

from balances.blobs import MemoryBlobStore
from balances.domain import BalancePoint, Granularity, Principal
from balances.domain.series import normalize, value_at
from balances.errors import (
    BalanceNotFoundError,
    ChainUnavailableError,
    InvalidGranularityError,
    InvalidPeriodError,
    ValidationError,
)
from balances.prices import PricePoint, StaticPriceSource
from balances.service.balances import BalanceService
from balances.service.history import BalanceHistory
from balances.testing import FakeChain, FakeChainServer

pytestmark = pytest.mark.asyncio(loop_scope="module")
LAYOUTS = pytest.mark.parametrize("layout", ["sharded", "spec"])
HOUR = 3_600
DAY = 86_400
USD = Decimal("0.000001")
#: Offsets (hours after midnight UTC) of each simulated day's transfers: never on a
#: bucket boundary, so "the last change before a bucket's end" is unambiguous.
DAY_PLAN = (2.6, 9.45, 15.1, 20.75)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[SharedServer]:
    async with shared_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def fake_chain_server(fake_chain: FakeChain, server: SharedServer) -> FakeChainServer:
    return server.plug(fake_chain)


@pytest_asyncio.fixture(loop_scope="module")
async def kit(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, fake_chain_server) as built:
        yield built


# --- the simulation ----------------------------------------------------------------------


@dataclass
class Sim:
    """The chain and the service clocks moving together (see the module docstring)."""

    kit: Kit
    services: Sequence[BalanceService]

    @property
    def chain(self) -> FakeChain:
        return self.kit.chain

    @property
    def now(self) -> float:
        return self.kit.clocks.wall.now

    def align(self) -> None:
        """Bring the chain's tip up to the wall clock (the kit starts it behind)."""
        gap = int(self.now) - self.chain.tip_time
        if gap > 0:
            self.chain.advance_time(gap)
        self.kit.clocks.wall.now = float(self.chain.tip_time)

    def move_to(self, moment: float) -> None:
        """Mine an empty block at ``moment`` (if later) and set the wall clock there."""
        target = int(moment)
        if target > self.chain.tip_time:
            self.chain.advance_time(target - self.chain.tip_time)
        self.kit.clocks.mono.advance(max(0.0, target - self.now) + 1)
        self.kit.clocks.wall.now = float(self.chain.tip_time)

    def settle(self) -> None:
        """After a transaction: the wall clock at its block (a refresh reads it now)."""
        self.kit.clocks.mono.advance(1)
        self.kit.clocks.wall.now = float(self.chain.tip_time)

    async def refresh(self, *addresses: str) -> None:
        for service in self.services:
            for address in addresses:
                await service.refresh_address_balances(address)

    async def live_days(self, days: int, *, maintain: bool = True) -> None:
        """``days`` calendar days of transfers, each refreshed at once; maintenance
        (compaction, snapshots) at 23:50 of each day (the current one first), as a
        daily scheduler would."""
        if maintain:
            await self.end_of_day()
        for _ in range(days):
            midnight = Granularity.DAY.floor(_dt(self.now)).timestamp() + DAY
            for n, hours in enumerate(DAY_PLAN):
                self.move_to(midnight + hours * HOUR - 10)
                if n % 2 == 0:
                    self.chain.transfer("stx", HOLDER, OTHER, 1_000 + 7 * n)
                else:
                    self.chain.transfer(NATIVE, HOLDER, OTHER, 3 + n)
                    self.chain.transfer("stx", OTHER, HOLDER, 400)
                self.settle()
                await self.refresh(HOLDER)
            self.move_to(midnight + 23 * HOUR + 50 * 60)
            if maintain:
                await self.end_of_day()

    async def end_of_day(self) -> None:
        """Move to 23:50 of the current day (if not past it) and run maintenance."""
        self.move_to(Granularity.DAY.floor(_dt(self.now)).timestamp() + 23 * HOUR + 50 * 60)
        for service in self.services:
            await service.layout.maintain()

    def truth(self, token: str, moment: float, address: str = HOLDER) -> int:
        """The ledger's balance after the last block at or before ``moment``."""
        block = self.chain.blocks.at_time(math.floor(moment))
        assert block is not None
        return self.chain.balance(token, address, at_height=block.height)


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def bucket_ends(history: BalanceHistory) -> list[datetime]:
    return [p.at for p in history.points[1:]] + [history.end]


def expected_values(
    sim: Sim, token: str, history: BalanceHistory, since: float
) -> list[int | None]:
    """Ground truth per bucket: the amount just before each bucket's end (the last
    bucket includes its end, ``now``); None for buckets ending before ``since``."""
    ends = bucket_ends(history)
    found: list[int | None] = []
    for index, end in enumerate(ends):
        last = index == len(ends) - 1
        moment = end.timestamp() - (0 if last else 1e-3)
        found.append(None if moment < since else sim.truth(token, moment))
    return found


def assert_aligned(history: BalanceHistory) -> None:
    """UTC-aligned, contiguous buckets of the reported granularity."""
    granularity = history.granularity
    starts = [p.at for p in history.points]
    assert starts[0] == history.start == granularity.floor(starts[0])
    for start, following in pairwise(starts):
        assert start == granularity.floor(start)
        assert following == granularity.next_start(start)
        assert start.tzinfo is not None
        assert start.utcoffset() == timedelta(0)
    if granularity is Granularity.WEEK:
        assert all(s.weekday() == 0 and s.hour == 0 for s in starts)
    assert granularity.next_start(starts[-1]) >= history.end


async def started(kit: Kit, *, layout: str = "sharded", **fields: Any) -> Sim:
    """A service on the kit, the chain aligned, and HOLDER read once (tracking begins)."""
    service = kit.service(layout=layout, **fields)
    sim = Sim(kit, [service])
    sim.align()
    await sim.refresh(HOLDER)
    return sim


# --- get_balance_history: semantics --------------------------------------------------------


@LAYOUTS
async def test_live_history_matches_the_ledger_at_every_bucket_end(kit: Kit, layout: str) -> None:
    sim = await started(kit, layout=layout)
    since = sim.now
    await sim.live_days(4)
    svc = sim.services[0]
    wrong = []  # (period, granularity, token, bucket start, answered, ledger)
    for period, granularity, token in [
        ("30d", "auto", "stx"),
        ("7d", "auto", "stx"),
        ("24h", "auto", NATIVE),
        ("7d", "day", NATIVE),
        ("30d", "week", "stx"),
        ("90d", "month", "stx"),
    ]:
        history = await svc.get_balance_history(HOLDER, token, period, granularity)
        assert_aligned(history)
        assert history.current.amount == sim.chain.balance(token, HOLDER)
        expected = expected_values(sim, token, history, since)
        assert expected[-1] == history.current.amount
        wrong += [
            (period, granularity, token, point.at.isoformat(), point.amount, truth)
            for point, truth in zip(history.points, expected, strict=True)
            if point.amount != truth
        ]
    assert not wrong, "\n".join(map(str, wrong))


@LAYOUTS
async def test_the_newest_bucket_is_the_current_balance_before_the_days_maintenance(
    kit: Kit, layout: str
) -> None:
    """Charts end now: the last bucket shows what the address holds, also when the
    day's maintenance (compaction, the spec layout's snapshot) has not run yet."""
    sim = await started(kit, layout=layout)
    await sim.live_days(2)
    sim.move_to(sim.now + 3 * HOUR)  # the next morning
    kit.chain.transfer("stx", HOLDER, OTHER, 123_456)
    sim.settle()
    await sim.refresh(HOLDER)
    svc = sim.services[0]
    current = kit.chain.balance("stx", HOLDER)
    for period, granularity in [("30d", "auto"), ("7d", "day"), ("90d", "week"), ("7d", "hour")]:
        history = await svc.get_balance_history(HOLDER, "stx", period, granularity)
        assert history.current.amount == current
        assert history.points[-1].amount == current, (period, granularity)
        assert history.points[-2].amount != current  # it moved today


async def test_start_balance_is_the_amount_in_force_at_the_aligned_window_start(
    kit: Kit,
) -> None:
    sim = await started(kit)
    await sim.live_days(3)
    svc = sim.services[0]
    history = await svc.get_balance_history(HOLDER, "stx", "24h")
    assert history.granularity is Granularity.FIVE_MINUTES
    assert history.start == Granularity.FIVE_MINUTES.floor(_dt(sim.now) - timedelta(hours=24))
    assert history.start_balance == sim.truth("stx", history.start.timestamp())
    # The window starts before tracking began: nothing was known then.
    month = await svc.get_balance_history(HOLDER, "stx", "30d")
    assert month.start_balance is None
    assert month.points[0].amount is None


@LAYOUTS
async def test_empty_buckets_carry_the_last_value_forward(kit: Kit, layout: str) -> None:
    sim = await started(kit, layout=layout)
    await sim.live_days(1)
    sim.move_to(sim.now + 2 * DAY + 5 * HOUR)  # two quiet days
    svc = sim.services[0]
    history = await svc.get_balance_history(HOLDER, "stx", "7d", "hour")
    values = [p.amount for p in history.points]
    known = [v for v in values if v is not None]
    quiet = known[-48:]
    assert len(set(quiet)) == 1
    assert quiet[0] == sim.chain.balance("stx", HOLDER)
    assert values.index(known[0]) + len(known) == len(values)  # no gap once known


@pytest.mark.parametrize(
    ("period", "granularity"),
    [("30d", Granularity.DAY), ("7d", Granularity.HOUR), ("24h", Granularity.FIVE_MINUTES)],
)
async def test_auto_granularity_is_resolved_and_reported(
    kit: Kit, period: str, granularity: Granularity
) -> None:
    sim = await started(kit)
    history = await sim.services[0].get_balance_history(HOLDER, "stx", period)
    assert history.granularity is granularity
    assert history.as_dict()["granularity"] == granularity.value
    assert history.period == period
    assert_aligned(history)
    assert history.points[-1].amount == sim.chain.balance("stx", HOLDER)


@LAYOUTS
async def test_an_explicit_range_is_honoured(kit: Kit, layout: str) -> None:
    sim = await started(kit, layout=layout)
    await sim.live_days(3)
    svc = sim.services[0]
    first_day = Granularity.DAY.floor(_dt(sim.now)) - timedelta(days=2)
    start = first_day + timedelta(hours=1, minutes=30)
    end = first_day + timedelta(days=1, hours=12, minutes=2)
    history = await svc.get_balance_history(
        HOLDER, "stx", granularity="hour", start=start.isoformat(), end=int(end.timestamp())
    )
    assert history.granularity is Granularity.HOUR
    assert (history.start, history.end) == (first_day + timedelta(hours=1), end)
    assert history.period == f"{start.isoformat()}/{end.isoformat()}"
    assert len(history.points) == 36
    assert [p.amount for p in history.points] == expected_values(sim, "stx", history, 0)
    assert history.start_balance == sim.truth("stx", history.start.timestamp())


@LAYOUTS
async def test_an_explicit_day_range_in_the_past_ends_with_the_value_at_its_end(
    kit: Kit, layout: str
) -> None:
    """A day chart over days that are over, ending mid-day: every bucket, the first's
    opening and the last (clipped) bucket hold the ledger's amounts."""
    sim = await started(kit, layout=layout)
    await sim.live_days(4)
    svc = sim.services[0]
    first_day = Granularity.DAY.floor(_dt(sim.now)) - timedelta(days=3)
    start, end = first_day, first_day + timedelta(days=2, hours=12)
    history = await svc.get_balance_history(HOLDER, "stx", granularity="day", start=start, end=end)
    assert [p.at for p in history.points] == [first_day + timedelta(days=n) for n in range(3)]
    answered = (history.start_balance, [p.amount for p in history.points])
    expected = (sim.truth("stx", start.timestamp()), expected_values(sim, "stx", history, 0))
    assert answered == expected


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"period": "2d"}, InvalidPeriodError),
        ({"period": "forever"}, InvalidPeriodError),
        ({"granularity": "minute"}, InvalidGranularityError),
        ({"granularity": ""}, InvalidGranularityError),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, InvalidPeriodError),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-02T00:00:00Z"}, InvalidPeriodError),
        ({"start": "2024-01-01T00:00:00Z"}, InvalidPeriodError),
        ({"end": "2024-01-01T00:00:00Z"}, InvalidPeriodError),
        ({"start": "yesterday", "end": "2024-01-01T00:00:00Z"}, InvalidPeriodError),
        ({"period": "1y", "granularity": "5m"}, InvalidPeriodError),
        ({"period": "all", "granularity": "5m", "start": 0, "end": 1e9}, InvalidPeriodError),
    ],
    ids=[
        "unknown-period",
        "word-period",
        "unknown-granularity",
        "empty-granularity",
        "end-before-start",
        "empty-range",
        "only-from",
        "only-to",
        "unreadable-time",
        "5m-over-1y",
        "5m-over-30y",
    ],
)
async def test_bad_history_requests_are_validation_errors(
    kit: Kit, arguments: dict[str, Any], error: type[ValidationError]
) -> None:
    svc = kit.service()
    with pytest.raises(error) as caught:
        await svc.get_balance_history(HOLDER, "stx", **arguments)
    assert isinstance(caught.value, ValidationError)
    assert str(caught.value)
    with pytest.raises(error):
        await svc.get_portfolio_history(HOLDER, **arguments)


# --- backfill -------------------------------------------------------------------------------


def prehistory(chain: FakeChain, rounds: int = 14) -> None:
    """Activity before tracking begins: more than one page (50) of HOLDER's
    transactions over several days, every kind of token moving."""
    for n in range(rounds):
        chain.advance_time(7 * HOUR + 13 * n)
        chain.transfer("stx", HOLDER, OTHER, 2_000 + n)
        chain.transfer(NATIVE, HOLDER, OTHER, 5 + n)
        chain.deposit(MAP_TOKEN, HOLDER, 11 + n)
        chain.transfer("stx", OTHER, HOLDER, 700)
        if n % 3 == 0:
            chain.withdraw(MAP_TOKEN, HOLDER, 4)


def first_move(chain: FakeChain, token: str) -> float:
    """When ``token`` first moved for HOLDER (the oldest point a backfill can find)."""
    height = chain.accounts(HOLDER)[token].heights[0]
    block = chain.blocks.at_height(height)
    assert block is not None
    return float(block.time)


async def full_series(svc: BalanceService, token: str, now: float) -> list[BalancePoint]:
    slices = await svc.layout.series(
        Principal.parse(HOLDER), _dt(0), _dt(now), keys=[token], resolution="raw"
    )
    found = slices[token]
    assert found.opening is None
    return list(found.points)


class FlakyHistory:
    """A StacksClient whose Nth transaction-page read fails (an outage mid-backfill)."""

    def __init__(self, inner: Any, fail_on: int) -> None:
        self._inner = inner
        self.fail_on = fail_on
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_principal_transactions(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_on:
            raise ChainUnavailableError("injected outage while paging transactions")
        return await self._inner.get_principal_transactions(*args, **kwargs)


@LAYOUTS
async def test_backfill_fills_the_past_without_a_gap_or_duplicate_at_the_seam(
    kit: Kit, layout: str
) -> None:
    prehistory(kit.chain)
    sim = await started(kit, layout=layout, map_tokens=[MAP_TOKEN])
    tracked_from = sim.now
    await sim.live_days(1, maintain=False)
    svc = sim.services[0]
    live_only = await full_series(svc, "stx", sim.now)
    assert live_only[0].at == _dt(tracked_from)

    report = await svc.backfill(HOLDER)
    assert report.done
    assert not report.resumed
    assert report.pages >= 2
    assert report.stopped == {}
    assert report.residuals == {}
    await svc.layout.maintain(sim.now + 3_600)

    for token in ("stx", NATIVE, MAP_TOKEN):
        points = await full_series(svc, token, sim.now)
        assert points == normalize(points)
        assert all(a.amount != b.amount for a, b in pairwise(points))
        assert points[0].at == _dt(first_move(kit.chain, token))
        for point in points:  # every point is the ledger's amount at its moment
            assert point.amount == sim.truth(token, point.at.timestamp()), (token, point)
            if point.block_height is not None:
                assert point.amount == kit.chain.balance(
                    token, HOLDER, at_height=point.block_height
                )
        before, after = _dt(tracked_from - 1), _dt(tracked_from)
        assert value_at(points, before) == sim.truth(token, tracked_from - 1)
        assert value_at(points, after) == sim.truth(token, tracked_from)
        assert value_at(points, before) is not None
    history = await svc.get_balance_history(HOLDER, "stx", "7d", "hour")
    assert [p.amount for p in history.points] == expected_values(
        sim, "stx", history, first_move(kit.chain, "stx")
    )


@LAYOUTS
async def test_an_interrupted_backfill_resumes_and_a_rerun_is_a_no_op(
    kit: Kit, layout: str
) -> None:
    prehistory(kit.chain)
    flaky = FlakyHistory(kit.client, fail_on=2)
    svc = kit.service(layout=layout, map_tokens=[MAP_TOKEN], client=flaky)
    sim = Sim(kit, [svc])
    sim.align()
    await sim.refresh(HOLDER)
    with pytest.raises(ChainUnavailableError):
        await svc.backfill(HOLDER)
    resumed = await svc.backfill(HOLDER)
    assert resumed.resumed
    assert resumed.done
    assert resumed.total_txs == len(kit.chain.transactions_of(HOLDER))
    assert resumed.pages < resumed.total_txs
    await svc.layout.maintain(sim.now + 3_600)

    series = {t: await full_series(svc, t, sim.now) for t in ("stx", NATIVE, MAP_TOKEN)}
    for token, points in series.items():
        moved = {
            (height, amount)
            for height, (amount, *_) in zip(
                kit.chain.accounts(HOLDER)[token].heights,
                kit.chain.accounts(HOLDER)[token].snapshots,
                strict=True,
            )
        }
        found = {(p.block_height, p.amount) for p in points}
        assert found == moved, token  # every move once, nothing else (the first read
        # repeats the amount of the last move: normalised away)

    puts = svc.blobs.snapshot().operations["put"]
    again = await svc.backfill(HOLDER)
    assert again.already_done
    assert again.points_written == 0
    assert svc.blobs.snapshot().operations["put"] == puts
    assert {t: await full_series(svc, t, sim.now) for t in series} == series


async def test_map_token_history_comes_from_print_events(kit: Kit) -> None:
    prehistory(kit.chain, rounds=6)
    sim = await started(kit, map_tokens=[MAP_TOKEN])
    svc = sim.services[0]
    report = await svc.backfill(HOLDER, MAP_TOKEN)
    assert set(report.first_point) == {MAP_TOKEN}
    points = await full_series(svc, MAP_TOKEN, sim.now)
    account = kit.chain.accounts(HOLDER)[MAP_TOKEN]
    assert [p.amount for p in points] == [amount for amount, *_ in account.snapshots]
    assert [p.block_height for p in points] == account.heights
    stx = await full_series(svc, "stx", sim.now)
    assert len(stx) == 1  # only the token asked for was walked


# --- get_balance_at -------------------------------------------------------------------------


@LAYOUTS
async def test_balance_at_a_time_or_height_equals_the_ledger(kit: Kit, layout: str) -> None:
    prehistory(kit.chain, rounds=4)
    sim = await started(kit, layout=layout, map_tokens=[MAP_TOKEN])
    await sim.live_days(1, maintain=False)
    svc = sim.services[0]
    await svc.backfill(HOLDER)
    first = int(min(first_move(kit.chain, t) for t in ("stx", NATIVE)))
    start_height = kit.chain.blocks.at_time(first)
    assert start_height is not None
    for height in range(start_height.height, kit.chain.tip_height + 1, 3):
        block = kit.chain.blocks.at_height(height)
        assert block is not None
        for token in ("stx", NATIVE):
            if block.time < first_move(kit.chain, token):
                continue
            by_height = await svc.get_balance_at(HOLDER, token, block_height=height)
            assert by_height.amount == kit.chain.balance(token, HOLDER, at_height=height)
            assert (by_height.block_height, by_height.at) == (height, _dt(block.time))
            by_time = await svc.get_balance_at(HOLDER, token, _dt(block.time + 5))
            assert by_time.amount == sim.truth(token, block.time + 5)
    answer = (await svc.get_balance_at(HOLDER, NATIVE, sim.now - HOUR)).as_dict()
    assert answer["decimals"] == 8
    assert Decimal(answer["display_balance"]) == Decimal(answer["balance"]).scaleb(-8)


async def test_balance_at_before_history_or_in_the_future(kit: Kit) -> None:
    sim = await started(kit)
    svc = sim.services[0]
    with pytest.raises(BalanceNotFoundError, match="backfill"):
        await svc.get_balance_at(HOLDER, "stx", sim.now - DAY)
    with pytest.raises(InvalidPeriodError, match="future"):
        await svc.get_balance_at(HOLDER, "stx", sim.now + HOUR)
    with pytest.raises(InvalidPeriodError):
        await svc.get_balance_at(HOLDER, "stx")
    with pytest.raises(InvalidPeriodError):
        await svc.get_balance_at(HOLDER, "stx", sim.now, block_height=kit.chain.tip_height)
    now = await svc.get_balance_at(HOLDER, "stx", sim.now)
    assert now.amount == kit.chain.balance("stx", HOLDER)


# --- portfolio --------------------------------------------------------------------------


def usd(amount: int, decimals: int, price: Decimal) -> Decimal:
    return (Decimal(amount) / Decimal(10) ** decimals * price).quantize(USD)


def price_at(points: Sequence[tuple[float, Decimal]], moment: float) -> Decimal | None:
    found = None
    for when, price in points:
        if when < moment:
            found = price
    return found


async def assert_portfolio(
    sim: Sim,
    svc: BalanceService,
    prices: dict[str, list[tuple[float, Decimal]]],
    decimals: dict[str, int],
    since: float,
) -> None:
    portfolio = await svc.get_portfolio_history(HOLDER, "7d", "hour")
    assert portfolio.granularity is Granularity.HOUR
    tokens = {t.token_id: t for t in portfolio.tokens}
    assert set(tokens) == set(decimals)
    for token, info in tokens.items():
        assert info.decimals == decimals[token]
        assert info.priced == (token in prices)
    assert sorted(portfolio.missing_prices) == sorted(set(decimals) - set(prices))
    ends = [b.at for b in portfolio.buckets[1:]] + [portfolio.end]
    priced_once = False
    for bucket, end in zip(portfolio.buckets, ends, strict=True):
        moment = end.timestamp() - (0 if end == portfolio.end else 1e-3)
        total = Decimal(0)
        any_priced = False
        for token in decimals:
            amount = None if moment < since else sim.truth(token, moment)
            assert bucket.amounts[token] == amount, (bucket.at, token)
            price = price_at(prices.get(token, []), end.timestamp())
            if amount is None or price is None:
                assert bucket.usd[token] is None, (bucket.at, token)
                continue
            expected = usd(amount, decimals[token], price)
            assert bucket.usd[token] == expected, (bucket.at, token)
            total += expected
            any_priced = priced_once = True
        assert bucket.total_usd == (total if any_priced else None)
    assert priced_once
    body = portfolio.as_dict()
    assert body["missing_prices"] == portfolio.missing_prices
    last = body["buckets"][-1]
    assert all(last["usd"][t] is None for t in portfolio.missing_prices)
    assert Decimal(last["total_usd"]) == portfolio.buckets[-1].total_usd


async def test_portfolio_values_buckets_at_the_price_in_force_static_source(kit: Kit) -> None:
    sim = Sim(kit, [])
    sim.align()
    t0 = sim.now
    stx_prices = [(t0 - 3 * DAY, Decimal("1.5")), (t0 + 1.3 * DAY + 77, Decimal("2.2500001"))]
    source = StaticPriceSource(
        {
            "stx": [PricePoint(_dt(when), price) for when, price in stx_prices],
            NATIVE: Decimal("0.0123"),
        },
        now=lambda: _dt(kit.clocks.wall.now),
    )
    svc = BalanceService(
        config(),
        blobs=kit.store,
        chain=kit.client,
        price_source=source,
        clock=kit.clocks.mono,
        wall_clock=kit.clocks.wall,
    )
    kit.services.append(svc)
    sim.services = [svc]
    await sim.refresh(HOLDER)
    await sim.live_days(2, maintain=False)
    assert await svc.backfill_prices(days=30) > 0
    await sim.refresh(HOLDER)
    window_start = (_dt(sim.now) - timedelta(days=30)).timestamp()
    prices = {"stx": stx_prices, NATIVE: [(window_start, Decimal("0.0123"))]}
    decimals = {"stx": 6, NATIVE: 8, "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.spent-token": 2}
    await assert_portfolio(sim, svc, prices, decimals, since=t0)


async def test_portfolio_with_the_stand_ins_price_routes(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    sim = Sim(kit, [])
    sim.align()
    t0 = sim.now
    stx_prices = [
        (t0 - 2 * DAY + 11, Decimal("0.75")),
        (t0 + 0.6 * DAY + 13, Decimal("0.8")),
        (t0 + 1.6 * DAY + 29, Decimal("1.05")),
    ]
    for when, price in stx_prices[:1]:
        kit.chain.set_price("stx", price, at=int(when))
    url = fake_chain_server.url
    svc = kit.service(
        map_tokens=[MAP_TOKEN],
        prices={
            "url_template": f"{url}/prices/{{token_id}}",
            "history_url_template": f"{url}/prices/{{token_id}}/history",
        },
    )
    sim.services = [svc]
    await sim.refresh(HOLDER)
    map_prices = [(t0 + 100.0, Decimal("3"))]
    for when, price in map_prices:
        kit.chain.set_price(MAP_TOKEN, price, at=int(when))
    for day in range(2):
        await sim.live_days(1, maintain=False)
        when, price = stx_prices[day + 1]
        kit.chain.set_price("stx", price, at=int(when))
        assert await svc.sync_prices(["stx", NATIVE, MAP_TOKEN]) == [2, 1][day]
    assert await svc.backfill_prices(["stx", MAP_TOKEN, NATIVE], days=10) > 0
    decimals = {
        "stx": 6,
        NATIVE: 8,
        MAP_TOKEN: 3,
        "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.spent-token": 2,
    }
    prices = {"stx": [p for p in stx_prices if p[0] <= sim.now], MAP_TOKEN: map_prices}
    await assert_portfolio(sim, svc, prices, decimals, since=t0)


async def test_a_portfolio_without_any_price_source_says_prices_are_missing(kit: Kit) -> None:
    sim = await started(kit)
    svc = sim.services[0]
    assert await svc.sync_prices() == 0
    assert await svc.backfill_prices() == 0
    portfolio = await svc.get_portfolio_history(HOLDER, "24h")
    assert portfolio.granularity is Granularity.FIVE_MINUTES
    assert sorted(portfolio.missing_prices) == sorted(t.token_id for t in portfolio.tokens)
    assert all(v is None for b in portfolio.buckets for v in b.usd.values())
    assert all(b.total_usd is None for b in portfolio.buckets)
    last = portfolio.buckets[-1]
    assert last.amounts["stx"] == kit.chain.balance("stx", HOLDER)
    assert last.amounts[NATIVE] == kit.chain.balance(NATIVE, HOLDER)


# --- concurrency -----------------------------------------------------------------------


@LAYOUTS
async def test_concurrent_appenders_on_one_store_lose_nothing(kit: Kit, layout: str) -> None:
    prehistory(kit.chain, rounds=8)
    live = kit.service(layout=layout, map_tokens=[MAP_TOKEN])
    filler = kit.service(layout=layout, map_tokens=[MAP_TOKEN])
    sim = Sim(kit, [live])
    sim.align()
    await sim.refresh(HOLDER, OTHER)
    tracked_from = sim.now

    async def live_sync() -> None:
        for n in range(6):
            sim.move_to(sim.now + HOUR + 17 * n)
            if n % 2:
                kit.chain.transfer(NATIVE, OTHER, HOLDER, 2)
            else:
                kit.chain.transfer("stx", HOLDER, OTHER, 300 + n)
            sim.settle()
            await live.refresh_address_balances(HOLDER)
            await live.refresh_address_balances(OTHER)

    async def backfill_and_refresh() -> None:
        await filler.backfill(HOLDER)
        await filler.refresh_address_balances(OTHER)
        await filler.backfill(OTHER, "stx")

    await asyncio.gather(live_sync(), backfill_and_refresh())
    await live.layout.maintain(sim.now + 3_600)
    await filler.layout.maintain(sim.now + 3_600)

    cold = kit.service(layout=layout, map_tokens=[MAP_TOKEN])
    for token in ("stx", NATIVE):
        points = await full_series(cold, token, sim.now)
        assert points[0].at == _dt(first_move(kit.chain, token))
        first = kit.chain.blocks.at_time(int(points[0].at.timestamp()))
        assert first is not None
        for height in range(first.height, kit.chain.tip_height + 1):
            block = kit.chain.blocks.at_height(height)
            assert block is not None
            assert value_at(points, _dt(block.time)) == kit.chain.balance(
                token, HOLDER, at_height=height
            ), (token, height)
    other = await cold.layout.series(Principal.parse(OTHER), _dt(0), _dt(sim.now), keys=["stx"])
    other_points = list(other["stx"].points)
    assert value_at(other_points, _dt(sim.now)) == kit.chain.balance("stx", OTHER)
    assert value_at(other_points, _dt(tracked_from - 1)) == sim.truth(
        "stx", tracked_from - 1, OTHER
    )


async def test_two_replicas_refreshing_one_address_keep_every_point(kit: Kit) -> None:
    store = MemoryBlobStore()
    first = kit.service(store=store)
    second = kit.service(store=store)
    sim = Sim(kit, [first])
    sim.align()
    await sim.refresh(HOLDER)
    since = sim.now
    for n in range(8):
        sim.move_to(sim.now + 600 + n)
        kit.chain.transfer("stx", HOLDER, OTHER, 10 + n)
        sim.settle()
        await asyncio.gather(
            first.refresh_address_balances(HOLDER), second.refresh_address_balances(HOLDER)
        )
    await first.layout.maintain(sim.now + 3_600)
    await second.layout.maintain(sim.now + 3_600)
    cold = kit.service(store=store)
    history = await cold.get_balance_history(HOLDER, "stx", "24h", "5m")
    assert [p.amount for p in history.points] == expected_values(sim, "stx", history, since)
