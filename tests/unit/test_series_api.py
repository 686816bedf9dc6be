"""BalanceSeriesAPI without a chain: request validation and limits, portfolio
performance arithmetic (None, never 0, where a figure is unknown), aggregates in blob
storage (fresh, stale, corrupt), cache statistics and clearing.

The service runs on a memory store with a chain reader that fails the test if it is
asked anything; the stand-in based tests are in ``tests/api/test_series_performance.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import zstandard

from balances import BalanceSeriesAPI
from balances.blobs import MemoryBlobStore
from balances.config import BalanceServiceConfig
from balances.domain import Granularity
from balances.domain.current import AddressBalances
from balances.errors import ChainUnavailableError, RequestTooLargeError, ValidationError
from balances.service.aggregates import KIND, AggregateStore, performance_of
from balances.service.balances import BalanceService
from balances.service.history import PortfolioBucket, PortfolioHistory, PortfolioToken
from balances.stores.encoding import encode_document

HOLDER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
OTHER = "SP3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZW9P3P0G"
TOKEN = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token"
FRESH = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.fresh-token"
NOW = 1_704_067_200.0  # 2024-01-01T00:00:00Z
CACHE_STATS_FIELDS = {
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
}


class NoChain:
    """A chain reader that must not be used."""

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"the chain was asked {name}{args}")

        return refuse


class DownChain(NoChain):
    """A chain reader that is unreachable."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise ChainUnavailableError(f"{name}: the chain is down")

        return fail


class Wall:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _config(**fields: Any) -> BalanceServiceConfig:
    return BalanceServiceConfig(store_url="memory://", **fields)


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def store() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
async def series(store: MemoryBlobStore, wall: Wall) -> Any:
    service = BalanceService(
        _config(api={"max_bulk_items": 6}, sync_on_read="never"),
        blobs=store,
        chain=NoChain(),  # type: ignore[arg-type]
        wall_clock=wall,
    )
    async with BalanceSeriesAPI(service) as api:
        yield api
    await service.close()


# --- validation and limits -------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        {"addresses": [HOLDER, OTHER, HOLDER + "."], "token_ids": ["stx", TOKEN, FRESH]},
        {"addresses": [HOLDER], "tokenIds": ["stx", TOKEN, FRESH, "a", "b", "c", "d"]},
        SimpleNamespace(addresses=[HOLDER, OTHER, "x", "y", "z", "w", "v"], token_ids=None),
    ],
    ids=["addresses-x-tokens", "camelCase-tokens", "object-request"],
)
async def test_bulk_current_over_the_limit_is_refused_before_any_work(
    series: BalanceSeriesAPI, store: MemoryBlobStore, request_: Any
) -> None:
    with pytest.raises(RequestTooLargeError, match="over the limit of 6"):
        await series.get_current_balances_bulk(request_)
    assert series.service.blobs.snapshot().operations["get"] == 0


async def test_the_limit_counts_distinct_items(store: MemoryBlobStore, wall: Wall) -> None:
    service = BalanceService(
        _config(api={"max_bulk_items": 6}),
        blobs=store,
        chain=DownChain(),  # type: ignore[arg-type]
        wall_clock=wall,
    )
    async with BalanceSeriesAPI(service) as series:
        answer = await series.get_current_balances_bulk(
            {"addresses": [HOLDER, HOLDER, OTHER], "tokenIds": ["stx", "stx", TOKEN, FRESH]}
        )
    await service.close()
    # 2 distinct addresses x 3 distinct tokens = 6, within the limit; nothing is
    # stored and the chain is down: each item is unknown (an error), never zero
    assert answer.balances == []
    assert len(answer.errors) == 6
    assert {type(item.error).__name__ for item in answer.errors} == {"ChainUnavailableError"}
    assert {(item.address, item.token_id) for item in answer.errors} == {
        (address, token) for address in (HOLDER, OTHER) for token in ("stx", TOKEN, FRESH)
    }


async def test_series_and_portfolio_limits(series: BalanceSeriesAPI) -> None:
    with pytest.raises(RequestTooLargeError):
        await series.get_balance_series_bulk(
            {"addresses": [HOLDER, OTHER], "tokenIds": ["stx", TOKEN, FRESH, "x"]}
        )
    addresses = [HOLDER, OTHER, "a", "b", "c", "d", "e"]
    with pytest.raises(RequestTooLargeError):
        await series.get_portfolio_performance_bulk(addresses)
    with pytest.raises(RequestTooLargeError):
        await series.generate_aggregated_data(addresses)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda api: api.get_current_balances_bulk({"addresses": []}), "at least one address"),
        (lambda api: api.get_current_balances_bulk({"addresses": HOLDER}), "list of strings"),
        (lambda api: api.get_current_balances_bulk({"addresses": [HOLDER, 1]}), "list of strings"),
        (lambda api: api.get_balance_series_bulk({"addresses": [HOLDER]}), "at least one token"),
        (
            lambda api: api.get_balance_series_bulk({"addresses": [HOLDER], "tokenIds": []}),
            "at least one token",
        ),
        (lambda api: api.get_portfolio_performance_bulk([]), "at least one address"),
        (lambda api: api.get_portfolio_performance_bulk(HOLDER), "list of strings"),
    ],
    ids=[
        "no-addresses",
        "addresses-a-string",
        "addresses-not-strings",
        "series-no-tokens",
        "series-empty-tokens",
        "portfolio-no-addresses",
        "portfolio-a-string",
    ],
)
async def test_malformed_requests_are_validation_errors(
    series: BalanceSeriesAPI, call: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        await call(series)


async def test_a_bad_address_is_an_item_error(series: BalanceSeriesAPI) -> None:
    answer = await series.get_portfolio_performance_bulk(["nope", HOLDER])
    errors = {item.address: item for item in answer.errors}
    assert type(errors["nope"].error).__name__ == "InvalidAddressError"
    assert errors["nope"].token_id is None
    assert errors["nope"].as_dict()["address"] == "nope"
    assert set(errors["nope"].as_dict()) == {"address", "token_id", "error", "message"}
    assert answer.performance == {} or set(answer.performance) <= {HOLDER}


# --- performance arithmetic ------------------------------------------------------------------


def _at(hours: float) -> datetime:
    return datetime.fromtimestamp(NOW, UTC) + timedelta(hours=hours)


def _history(
    buckets: list[tuple[dict[str, int | None], dict[str, Decimal | None]]],
    tokens: list[tuple[str, bool]],
    address: str = HOLDER,
) -> PortfolioHistory:
    return PortfolioHistory(
        address=address,
        period="24h",
        granularity=Granularity.HOUR,
        start=_at(0),
        end=_at(len(buckets)),
        tokens=[PortfolioToken(t, None, 6, priced) for t, priced in tokens],
        buckets=[
            PortfolioBucket(_at(index), amounts, usd)
            for index, (amounts, usd) in enumerate(buckets)
        ],
        missing_prices=[t for t, priced in tokens if not priced],
    )


def test_performance_compares_the_first_and_last_bucket() -> None:
    history = _history(
        [
            (
                {"stx": 2_000_000, TOKEN: 400, FRESH: 0},
                {"stx": Decimal("3.000000"), TOKEN: None, FRESH: Decimal("0")},
            ),
            (
                {"stx": 9, TOKEN: 1, FRESH: 5},
                {"stx": Decimal("1"), TOKEN: None, FRESH: Decimal("2")},
            ),
            (
                {"stx": 2_500_000, TOKEN: 300, FRESH: 50},
                {"stx": Decimal("3.750000"), TOKEN: None, FRESH: Decimal("0.500000")},
            ),
        ],
        [("stx", True), (TOKEN, False), (FRESH, True)],
    )
    body = performance_of(history).as_dict()
    tokens = {item["token_id"]: item for item in body["tokens"]}
    assert tokens["stx"] == {
        "token_id": "stx",
        "start_balance": "2000000",
        "end_balance": "2500000",
        "change": "500000",
        "change_pct": "25.00",
        "start_usd": "3.000000",
        "end_usd": "3.750000",
        "change_usd": "0.750000",
        "change_usd_pct": "25.00",
    }
    # unpriced: amounts always, no USD figure at all (None, not 0)
    assert tokens[TOKEN] == {
        "token_id": TOKEN,
        "start_balance": "400",
        "end_balance": "300",
        "change": "-100",
        "change_pct": "-25.00",
        "start_usd": None,
        "end_usd": None,
        "change_usd": None,
        "change_usd_pct": None,
    }
    # a start of zero: the change is known, its percentage is not
    assert tokens[FRESH]["start_balance"] == "0"
    assert tokens[FRESH]["change"] == "50"
    assert tokens[FRESH]["change_pct"] is None
    assert tokens[FRESH]["change_usd"] == "0.500000"
    assert tokens[FRESH]["change_usd_pct"] is None
    # totals over the priced tokens only
    assert Decimal(body["start_usd"]) == Decimal("3")
    assert Decimal(body["end_usd"]) == Decimal("4.25")
    assert Decimal(body["change_usd"]) == Decimal("1.25")
    assert body["change_pct"] == "41.67"
    assert body["missing_prices"] == [TOKEN]
    assert (body["address"], body["period"]) == (HOLDER, "24h")


def test_performance_with_an_unknown_start_or_no_price_is_none() -> None:
    history = _history(
        [
            ({"stx": None, TOKEN: None}, {"stx": None, TOKEN: None}),
            ({"stx": 1_000_000, TOKEN: 7}, {"stx": Decimal("2.000000"), TOKEN: None}),
        ],
        [("stx", True), (TOKEN, False)],
    )
    body = performance_of(history).as_dict()
    tokens = {item["token_id"]: item for item in body["tokens"]}
    for token, end in (("stx", "1000000"), (TOKEN, "7")):
        assert tokens[token]["start_balance"] is None
        assert tokens[token]["end_balance"] == end
        assert tokens[token]["change"] is None
        assert tokens[token]["change_pct"] is None
    assert tokens["stx"]["end_usd"] == "2.000000"
    assert tokens["stx"]["change_usd"] is None
    assert body["start_usd"] is None  # nothing priced in the first bucket
    assert body["end_usd"] == "2.000000"
    assert body["change_usd"] is None
    assert body["change_pct"] is None


def test_performance_of_an_empty_history_is_all_none() -> None:
    body = performance_of(_history([], [("stx", False)])).as_dict()
    assert body["tokens"] == [
        {
            "token_id": "stx",
            "start_balance": None,
            "end_balance": None,
            "change": None,
            "change_pct": None,
            "start_usd": None,
            "end_usd": None,
            "change_usd": None,
            "change_usd_pct": None,
        }
    ]
    assert body["start_usd"] is body["end_usd"] is body["change_usd"] is None


# --- aggregates --------------------------------------------------------------------------------


def _sample() -> PortfolioHistory:
    return _history(
        [
            ({"stx": 1_000_000}, {"stx": Decimal("0.500000")}),
            ({"stx": 3_000_000}, {"stx": Decimal("1.500000")}),
        ],
        [("stx", True)],
    )


async def test_an_aggregate_is_stored_under_its_period_and_address(
    store: MemoryBlobStore, wall: Wall
) -> None:
    aggregates = AggregateStore(store, _config(), wall_clock=wall)
    key = aggregates.key(HOLDER, "24h")
    assert key == f"aggregates/24h/{HOLDER}"
    await aggregates.save(HOLDER, "24h", _sample())
    assert (await store.head(key)) is not None
    found = await aggregates.fresh(HOLDER, "24h")
    assert found is not None
    assert found.as_dict() == _sample().as_dict()
    assert await aggregates.fresh(HOLDER, "7d") is None
    assert await aggregates.fresh(OTHER, "24h") is None


async def test_an_aggregate_is_used_until_the_time_series_timeout(
    store: MemoryBlobStore, wall: Wall
) -> None:
    config = _config(cache_timeouts={"time_series": 600})
    aggregates = AggregateStore(store, config, wall_clock=wall)
    await aggregates.save(HOLDER, "24h", _sample())
    wall.now += 600
    assert await aggregates.fresh(HOLDER, "24h") is not None
    wall.now += 1
    assert await aggregates.fresh(HOLDER, "24h") is None


def _document(body: dict[str, Any]) -> bytes:
    return zstandard.ZstdCompressor().compress(orjson.dumps(body))


@pytest.mark.parametrize(
    "data",
    [
        b"not a blob at all",
        _document({"kind": "something-else", "format": 1, "generated_at": NOW}),
        _document({"kind": KIND, "format": 99, "generated_at": NOW, "history": {}}),
        _document({"kind": KIND, "format": 1, "history": {}}),
        _document({"kind": KIND, "format": 1, "generated_at": "yesterday", "history": {}}),
        encode_document(KIND, 1, {"generated_at": NOW, "history": {"address": HOLDER}}),
        encode_document(KIND, 1, {"generated_at": NOW, "history": []}),
        encode_document(KIND, 1, {"generated_at": NOW}),
    ],
    ids=[
        "garbage",
        "wrong-kind",
        "future-format",
        "no-time",
        "bad-time",
        "history-incomplete",
        "history-not-an-object",
        "no-history",
    ],
)
async def test_a_corrupt_aggregate_is_never_served(
    store: MemoryBlobStore, wall: Wall, data: bytes
) -> None:
    aggregates = AggregateStore(store, _config(), wall_clock=wall)
    await store.put(aggregates.key(HOLDER, "24h"), data)
    assert await aggregates.fresh(HOLDER, "24h") is None


# --- cache statistics and clearing -----------------------------------------------------------


async def test_cache_stats_have_the_documented_fields(series: BalanceSeriesAPI) -> None:
    stats = series.get_cache_stats()
    assert set(stats) >= CACHE_STATS_FIELDS
    assert stats == series.service.cache_report()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (0, 0, 0)
    assert set(stats["blob_classes"]) == {"simple", "advanced", "free"}
    assert {"storage", "simple_operations", "advanced_operations", "transfer", "total"} <= set(
        stats["estimated_cost"]
    )


async def test_clear_cache_drops_the_cached_balances(series: BalanceSeriesAPI) -> None:
    """(That the series blobs are read again afterwards is checked on the stand-in,
    in tests/api/test_series_performance.py.)"""
    service = series.service
    service.cache.put(HOLDER, AddressBalances(HOLDER))
    assert service.cache.stats().entries == 1
    await series.clear_cache()
    assert service.cache.stats().entries == 0
    assert service.cache.get(HOLDER) is None
    assert series.get_cache_stats()["entries"] == 0


async def test_an_owned_service_is_closed_and_a_given_one_is_not(
    store: MemoryBlobStore, wall: Wall
) -> None:
    service = BalanceService(_config(), blobs=store, chain=NoChain(), wall_clock=wall)  # type: ignore[arg-type]
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    service.close = close  # type: ignore[method-assign]
    async with BalanceSeriesAPI(service):
        pass
    assert closed == []
    owned = BalanceSeriesAPI(config=_config())
    owned.service.close = close  # type: ignore[method-assign]
    await owned.close()
    assert closed == [True]
