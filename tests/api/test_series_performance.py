"""BalanceSeriesAPI on the Stacks API stand-in: portfolio performance against the
ledger (amounts always, USD where a price is known, None where it is not or where
the start is zero), aggregates precomputed into blob storage and reused while fresh,
cache statistics and clearing.

The chain and the fake wall clock move in lockstep (each refresh happens at the
time of the block it reads), so a history is exact at every bucket end. Prices come
from a :class:`StaticPriceSource` recorded into the service's price store.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
import pytest_asyncio
import zstandard
from service_helpers import (
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    OTHER,
    SPENT,
    KeyLog,
    Kit,
    SharedServer,
    config,
    open_kit,
)

from balances import BalanceSeriesAPI
from balances.domain import Granularity
from balances.prices import StaticPriceSource
from balances.service.aggregates import KIND
from balances.service.balances import BalanceService
from balances.stores.encoding import encode_document
from balances.testing import FakeChain

HOUR = 3_600
TTL = 600  # cache_timeouts.time_series in these tests
USD = Decimal("0.000001")
PCT = Decimal("0.01")
PRICES = {"stx": Decimal("0.5"), SPENT: Decimal("2")}
DECIMALS = {"stx": 6, NATIVE: 8, MAP_TOKEN: 3, SPENT: 2}

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def logged(fake_chain: FakeChain, server: SharedServer) -> AsyncIterator[Kit]:
    """A kit whose store logs every get."""
    async with open_kit(fake_chain, server.plug(fake_chain), store=KeyLog()) as built:
        yield built


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Lockstep:
    """The stand-in's chain and the service's clocks, moved together."""

    def __init__(self, kit: Kit, service: BalanceService) -> None:
        self.kit, self.service = kit, service
        gap = int(kit.clocks.wall.now) - kit.chain.tip_time
        if gap > 0:
            kit.chain.advance_time(gap)
        kit.clocks.wall.now = float(kit.chain.tip_time)

    @property
    def now(self) -> float:
        return self.kit.clocks.wall.now

    async def step(self, seconds: int, move: Callable[[FakeChain], object] | None = None) -> None:
        """``seconds`` later: ``move`` happens on chain; the service reads HOLDER."""
        self.kit.chain.advance_time(seconds - 10)
        if move is not None:
            move(self.kit.chain)
        self.kit.clocks.mono.advance(seconds)
        self.kit.clocks.wall.now = float(self.kit.chain.tip_time)
        await self.service.refresh_address_balances(HOLDER)

    def truth(self, token: str, moment: float) -> int:
        block = self.kit.chain.blocks.at_time(math.floor(moment))
        assert block is not None
        return self.kit.chain.balance(token, HOLDER, at_height=block.height)


def _service(kit: Kit, **fields: Any) -> BalanceService:
    source = StaticPriceSource(PRICES, now=lambda: _dt(kit.clocks.wall.now))
    service = BalanceService(
        config(map_tokens=[MAP_TOKEN], cache_timeouts={"time_series": TTL}, **fields),
        blobs=kit.store,
        chain=kit.client,
        price_source=source,
        clock=kit.clocks.mono,
        wall_clock=kit.clocks.wall,
    )
    kit.services.append(service)
    return service


async def _two_days(kit: Kit, service: BalanceService) -> Lockstep:
    """30 hours of activity: SPENT all sent away early, 4 of it back within the last
    day; STX spent every two hours; some CHA burnt late; then prices recorded."""
    sim = Lockstep(kit, service)
    await service.refresh_address_balances(HOLDER)
    await sim.step(2 * HOUR, lambda c: c.transfer(SPENT, HOLDER, OTHER, 10))
    for n in range(12):
        await sim.step(2 * HOUR + 3 * n, lambda c, n=n: c.transfer("stx", HOLDER, OTHER, 1_000 + n))
    await sim.step(HOUR, lambda c: c.transfer(SPENT, OTHER, HOLDER, 4))
    await sim.step(HOUR, lambda c: c.burn(NATIVE, HOLDER, 50))
    await sim.step(HOUR, lambda c: c.transfer("stx", HOLDER, OTHER, 250_000))
    assert await service.backfill_prices(["stx", SPENT, NATIVE, MAP_TOKEN], days=30) >= 2
    return sim


def _usd(amount: int, token: str) -> Decimal:
    return (Decimal(amount) / Decimal(10) ** DECIMALS[token] * PRICES[token]).quantize(USD)


def _pct(start: Decimal | int, end: Decimal | int) -> Decimal:
    return (Decimal(end - start) * 100 / Decimal(start)).quantize(PCT)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


async def test_portfolio_performance_against_the_ledger(kit: Kit) -> None:
    service = _service(kit)
    sim = await _two_days(kit, service)
    async with BalanceSeriesAPI(service) as series:
        answer = await series.get_portfolio_performance_bulk([HOLDER, "nope"], "24h")
    [error] = answer.errors
    assert (error.address, error.token_id) == ("nope", None)
    body = answer.performance[HOLDER].as_dict()
    start = Granularity.FIVE_MINUTES.floor(_dt(sim.now) - timedelta(hours=24))
    assert datetime.fromisoformat(body["start"]) == start
    assert datetime.fromisoformat(body["end"]) == _dt(sim.now)
    first_end = (start + timedelta(minutes=5)).timestamp() - 1e-3
    tokens = {item["token_id"]: item for item in body["tokens"]}
    assert set(tokens) == set(DECIMALS)
    assert sorted(body["missing_prices"]) == sorted([NATIVE, MAP_TOKEN])
    starts = {token: sim.truth(token, first_end) for token in DECIMALS}
    ends = {token: kit.chain.balance(token, HOLDER) for token in DECIMALS}
    assert (starts[SPENT], ends[SPENT]) == (0, 4)  # a start of zero
    assert starts[MAP_TOKEN] == ends[MAP_TOKEN]  # unchanged
    for token, item in tokens.items():
        assert item["start_balance"] == str(starts[token]), token
        assert item["end_balance"] == str(ends[token]), token
        assert item["change"] == str(ends[token] - starts[token]), token
        if starts[token]:
            assert _dec(item["change_pct"]) == _pct(starts[token], ends[token]), token
        else:
            assert item["change_pct"] is None, "undefined from zero, not 0 and not inf"
        if token not in PRICES:
            for name in ("start_usd", "end_usd", "change_usd", "change_usd_pct"):
                assert item[name] is None, (token, name)
            continue
        start_usd, end_usd = _usd(starts[token], token), _usd(ends[token], token)
        assert _dec(item["start_usd"]) == start_usd, token
        assert _dec(item["end_usd"]) == end_usd, token
        assert _dec(item["change_usd"]) == end_usd - start_usd, token
        if start_usd:
            assert _dec(item["change_usd_pct"]) == _pct(start_usd, end_usd), token
        else:
            assert item["change_usd_pct"] is None, token
    assert tokens["stx"]["change"].startswith("-")
    total_start = sum((_usd(starts[t], t) for t in PRICES), Decimal(0))
    total_end = sum((_usd(ends[t], t) for t in PRICES), Decimal(0))
    assert _dec(body["start_usd"]) == total_start
    assert _dec(body["end_usd"]) == total_end
    assert _dec(body["change_usd"]) == total_end - total_start
    assert _dec(body["change_pct"]) == _pct(total_start, total_end)


async def test_aggregates_are_stored_and_reused_while_fresh(logged: Kit) -> None:
    kit = logged
    store = kit.store
    assert isinstance(store, KeyLog)
    service = _service(kit)
    sim = await _two_days(kit, service)
    async with BalanceSeriesAPI(service) as series:
        report = await series.generate_aggregated_data([HOLDER, "nope"], "24h")
        assert (report["period"], report["generated"]) == ("24h", [HOLDER])
        assert [item.address for item in report["errors"]] == ["nope"]
        key = f"aggregates/24h/{HOLDER}"
        assert await store.head(key) is not None
        computed = (await series.get_portfolio_performance_bulk([HOLDER], "24h")).performance

        # Nothing moved: the aggregate, still fresh, is what the performance is made
        # of (one blob read, nothing from the chain), and it ends at the answer's block.
        await sim.step(60)
        kit.reset()
        store.gets.clear()
        cached = await series.get_portfolio_performance_bulk([HOLDER], "24h")
        assert store.gets == [key]
        assert kit.chain.requests == {}
        assert (
            cached.performance[HOLDER].as_dict()["tokens"] == computed[HOLDER].as_dict()["tokens"]
        )
        assert cached.block_height == kit.chain.tip_height

        # The chain moves and the service reads it: the fresh aggregate no longer ends
        # on the balances, so the performance is computed again from the series.
        before = kit.chain.balance("stx", HOLDER)
        await sim.step(60, lambda c: c.transfer("stx", HOLDER, OTHER, 7_777))
        moved = await series.get_portfolio_performance_bulk([HOLDER], "24h")
        stx = {t.token_id: t for t in moved.performance[HOLDER].tokens}["stx"]
        assert (
            stx.end_amount == kit.chain.balance("stx", HOLDER) == before - 7_777
        )  # not the aggregate's
        assert moved.block_height == kit.chain.tip_height

        # Past cache_timeouts.time_series it is recomputed from the series too.
        sim.kit.chain.advance_time(TTL - 60 + 1)
        kit.clocks.advance(wall=TTL - 60 + 1, mono=TTL)
        store.gets.clear()
        recomputed = (await series.get_portfolio_performance_bulk([HOLDER], "24h")).performance
        assert any(not read.startswith("aggregates/") for read in store.gets)
        stx = {t.token_id: t for t in recomputed[HOLDER].tokens}["stx"]
        assert stx.end_amount == kit.chain.balance("stx", HOLDER) == before - 7_777


@pytest.mark.parametrize(
    "data",
    [
        b"\x00garbage",
        encode_document(KIND, 1, {"generated_at": 0.0, "history": {"address": HOLDER}}),
        encode_document(KIND, 1, {"generated_at": 0.0, "history": None}),
        encode_document(KIND, 1, {"generated_at": 0.0}),
    ],
    ids=["garbage", "history-incomplete", "history-null", "no-history"],
)
async def test_a_corrupt_aggregate_is_recomputed(logged: Kit, data: bytes) -> None:
    kit = logged
    store = kit.store
    assert isinstance(store, KeyLog)
    service = _service(kit)
    await _two_days(kit, service)
    async with BalanceSeriesAPI(service) as series:
        await series.generate_aggregated_data([HOLDER], "24h")
        expected = (await series.get_portfolio_performance_bulk([HOLDER], "24h")).performance
        # generated now, so only the damage can make it unusable
        await service.blobs.put(f"aggregates/24h/{HOLDER}", _stamped(data, kit.clocks.wall.now))
        await service.clear_cache()  # so that a recompute has to read the series again
        store.gets.clear()
        answer = await series.get_portfolio_performance_bulk([HOLDER], "24h")
        assert answer.errors == []
        assert answer.performance[HOLDER].as_dict() == expected[HOLDER].as_dict()
        assert any(not read.startswith("aggregates/") for read in store.gets), "recomputed"


def _stamped(data: bytes, now: float) -> bytes:
    """``data``, re-encoded with ``generated_at`` now when it is a document (so that
    only the damage can make it unusable, not its age)."""
    try:
        document = orjson.loads(zstandard.ZstdDecompressor().decompress(data))
    except (zstandard.ZstdError, orjson.JSONDecodeError):
        return data
    document["generated_at"] = now
    body = {k: v for k, v in document.items() if k not in ("kind", "format")}
    return encode_document(KIND, 1, body)


async def test_cache_stats_and_clear_cache(logged: Kit) -> None:
    kit = logged
    store = kit.store
    assert isinstance(store, KeyLog)
    service = _service(kit)
    async with BalanceSeriesAPI(service) as series:
        await service.get_balance(HOLDER, "stx")
        await service.get_balance(HOLDER, "stx")
        await service.get_portfolio_history(HOLDER, "24h")
        stats = series.get_cache_stats()
        assert {
            "hits",
            "misses",
            "hit_rate",
            "evictions",
            "entries",
            "memory_bytes",
            "blob_operations",
            "blob_classes",
            "bytes_uploaded",
            "bytes_downloaded",
            "bytes_stored",
            "estimated_cost",
        } <= set(stats)
        assert stats["entries"] == 1
        assert stats["hits"] >= 1
        assert stats["misses"] >= 1
        assert stats["hit_rate"] == pytest.approx(stats["hits"] / (stats["hits"] + stats["misses"]))
        assert stats["memory_bytes"] > 0
        meter = service.blobs.snapshot()
        assert stats["blob_operations"] == dict(meter.operations)
        assert stats["blob_classes"] == {
            "simple": meter.simple,
            "advanced": meter.advanced,
            "free": meter.free,
        }
        assert stats["blob_classes"]["advanced"] > 0  # the puts of the first read
        assert stats["bytes_uploaded"] == meter.bytes_uploaded > 0
        assert stats["bytes_stored"] == meter.bytes_stored > 0
        assert stats["estimated_cost"]["total"] > 0

        # Cached: neither the current balances nor the series blobs are read again
        # (price blobs are not cached in process: each portfolio reads them).
        kit.reset()
        store.gets.clear()
        assert (await service.get_balance(HOLDER, "stx")).source == "cache"
        await service.get_portfolio_history(HOLDER, "24h")
        assert [read for read in store.gets if not read.startswith("prices/")] == []

        await series.clear_cache()
        assert series.get_cache_stats()["entries"] == 0
        again = await service.get_balance(HOLDER, "stx")
        assert again.source == "store"  # the store is untouched, only caches went
        assert any(read.startswith("v1/current/") for read in store.gets)
        store.gets.clear()
        await service.get_portfolio_history(HOLDER, "24h")
        assert any(read.startswith(("v1/daily/", "v1/month/")) for read in store.gets)
        assert kit.balance_requests() == {}
