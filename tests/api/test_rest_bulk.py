"""The spec's bulk routes and the cache and scheduler admin routes, on the Stacks API
stand-in: ``POST /balances/bulk/current|series|portfolio``, ``GET /cache/stats``,
``POST /cache/clear``, ``GET /scheduler``.

Amounts are compared with the stand-in's ledger and with the single-item routes;
bodies take the spec's camelCase names and snake_case alike; a bad item gets its own
error while the others answer; sizes are bounded (413 over ``api.max_bulk_items``,
422 over the schema's list bound of 1000).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from service_helpers import (
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    OTHER,
    SPENT,
    WALL_START,
    KeyLog,
    Kit,
    SharedServer,
    config,
    open_kit,
)

from balances import BalanceSeriesAPI
from balances.api import create_app
from balances.api.schemas import BalanceOut
from balances.config import BalanceServiceConfig
from balances.domain import Granularity
from balances.service.balances import BalanceService
from balances.stores.sharded.store import ShardedStore
from balances.testing import FakeChain

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
ASSET = f"{NATIVE}::charisma"
BAD = "not-an-address"
BALANCE_FIELDS = set(BalanceOut.model_fields)
ERROR_FIELDS = {"address", "token_id", "error", "message"}
CURRENT = "/balances/bulk/current"
SERIES = "/balances/bulk/series"
PORTFOLIO = "/balances/bulk/portfolio"

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: As in conftest.py (the ``api`` fixture's key and base URL).
API_KEY = "test-api-key"
BASE_URL = "http://balances.test"


def api_config(**fields: Any) -> BalanceServiceConfig:
    """The tests' mainnet config: memory store, the seeded map token read for all."""
    return config(map_tokens=[MAP_TOKEN], **fields)


def _amounts(balances: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    return {(b["address"], b["token_id"]): int(b["balance"]) for b in balances}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _assert_item_error(item: dict[str, Any], address: str, token: str | None, code: str) -> None:
    assert set(item) == ERROR_FIELDS, item
    assert (item["address"], item["token_id"], item["error"]) == (address, token, code)
    assert isinstance(item["message"], str)
    assert item["message"]


# --- POST /balances/bulk/current -----------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        {"tokens": "tokenIds", "zero": "includeZero", "minimum": "minBalance"},
        {"tokens": "token_ids", "zero": "include_zero", "minimum": "min_balance"},
    ],
    ids=["camelCase", "snake_case"],
)
async def test_bulk_current_shape_and_values_in_either_spelling(
    api: httpx.AsyncClient, kit: Kit, names: dict[str, str]
) -> None:
    body = {"addresses": [HOLDER, OTHER], names["tokens"]: ["stx", NATIVE, MAP_TOKEN]}
    response = await api.post(CURRENT, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"block_height", "balances", "errors"}
    assert answer["errors"] == []
    assert all(set(item) == BALANCE_FIELDS for item in answer["balances"])
    expected = {
        (address, token): kit.chain.balance(token, address)
        for address in (HOLDER, OTHER)
        for token in ("stx", NATIVE, MAP_TOKEN)
        if kit.chain.balance(token, address) > 0
    }
    assert (OTHER, "stx") not in expected  # a zero, left out by default
    assert _amounts(answer["balances"]) == expected
    # each address's tokens come in the order asked (addresses in no promised order)
    for address in (HOLDER, OTHER):
        order = [b["token_id"] for b in answer["balances"] if b["address"] == address]
        assert order == [token for held, token in expected if held == address]

    with_zeros = await api.post(CURRENT, json={**body, names["zero"]: True})
    amounts = _amounts(with_zeros.json()["balances"])
    assert amounts[(OTHER, "stx")] == 0
    assert {pair: n for pair, n in amounts.items() if n} == expected

    floor = await api.post(CURRENT, json={**body, names["zero"]: True, names["minimum"]: "251"})
    assert _amounts(floor.json()["balances"]) == {
        pair: n for pair, n in expected.items() if n >= 251
    }
    assert (OTHER, NATIVE) not in _amounts(floor.json()["balances"])  # 250 < 251


async def _read_at_two_tips(kit: Kit, client: httpx.AsyncClient) -> tuple[int, int]:
    """HOLDER read at one tip; then the chain moves (HOLDER's STX too) and OTHER is
    read at the new tip, while HOLDER's read is still fresh in the cache."""
    await client.get(f"/balances/{HOLDER}")
    first = kit.chain.tip_height
    with kit.chain.block():
        kit.chain.mint("stx", HOLDER, 1_234)
    await client.get(f"/balances/{OTHER}")
    return first, kit.chain.tip_height


async def test_bulk_current_never_mixes_blocks(kit: Kit, make_client: ClientFactory) -> None:
    client = await make_client()
    first, second = await _read_at_two_tips(kit, client)
    assert first < second
    held = (await client.get(f"/balances/{HOLDER}/stx")).json()
    assert held["block_height"] == first, "the cached read: the answer below re-reads it"
    body = {"addresses": [HOLDER, OTHER], "tokenIds": ["stx", NATIVE], "includeZero": True}
    answer = (await client.post(CURRENT, json=body)).json()
    assert answer["errors"] == []
    assert answer["block_height"] == second
    assert {b["block_height"] for b in answer["balances"]} == {second}
    assert _amounts(answer["balances"]) == {
        (address, token): kit.chain.balance(token, address)
        for address in (HOLDER, OTHER)
        for token in ("stx", NATIVE)
    }
    assert _amounts(answer["balances"])[(HOLDER, "stx")] == int(held["balance"]) + 1_234


async def test_bulk_current_leaves_out_what_it_cannot_reread(
    kit: Kit, make_client: ClientFactory
) -> None:
    client = await make_client(api={"key": API_KEY, "max_consistency_reads": 1})
    first, second = await _read_at_two_tips(kit, client)
    body = {"addresses": [HOLDER, OTHER], "tokenIds": ["stx", NATIVE], "includeZero": True}
    answer = (await client.post(CURRENT, json=body)).json()
    assert answer["block_height"] == second
    assert {b["block_height"] for b in answer["balances"]} == {second}
    shown = _amounts(answer["balances"])
    assert (HOLDER, "stx") in shown, "one re-read allowed: the first lagging balance"
    assert (HOLDER, NATIVE) not in shown, "beyond the bound: left out, never mixed in"
    assert len(answer["errors"]) == 1
    _assert_item_error(answer["errors"][0], HOLDER, NATIVE, "behind_block")
    assert f"read at block {first}" in answer["errors"][0]["message"]


async def test_a_failed_reread_is_an_item_error_not_an_old_amount(
    kit: Kit, make_client: ClientFactory
) -> None:
    client = await make_client()
    _, second = await _read_at_two_tips(kit, client)
    body = {"addresses": [HOLDER, OTHER], "tokenIds": ["stx", NATIVE], "includeZero": True}
    kit.chain.faults.error_rate = 1.0  # the chain fails now; both reads are still cached
    try:
        answer = (await client.post(CURRENT, json=body)).json()
    finally:
        kit.chain.faults.error_rate = 0.0
    assert answer["block_height"] == second
    assert {b["address"] for b in answer["balances"]} == {OTHER}
    assert {b["block_height"] for b in answer["balances"]} == {second}
    assert {(e["address"], e["token_id"]) for e in answer["errors"]} == {
        (HOLDER, "stx"),
        (HOLDER, NATIVE),
    }
    assert all(e["error"].startswith("chain_") for e in answer["errors"]), answer["errors"]


async def test_bulk_series_end_at_one_block(kit: Kit, make_client: ClientFactory) -> None:
    """HOLDER's STX did not move between the two reads: its series is restamped at the
    newer block. Its token did move: that series lacks the change, so it is an error."""
    client = await make_client()
    await client.get(f"/balances/{HOLDER}")
    first = kit.chain.tip_height
    with kit.chain.block():
        kit.chain.mint(NATIVE, HOLDER, 7)
    await client.get(f"/balances/{OTHER}")
    second = kit.chain.tip_height
    body = {"addresses": [HOLDER, OTHER], "tokenIds": ["stx", NATIVE], "period": "7d"}
    answer = (await client.post(SERIES, json=body)).json()
    assert answer["block_height"] == second
    heights = {
        (address, token): history["block_height"]
        for address, by_token in answer["series"].items()
        for token, history in by_token.items()
    }
    assert heights == {(HOLDER, "stx"): second, (OTHER, "stx"): second, (OTHER, NATIVE): second}
    assert len(answer["errors"]) == 1
    _assert_item_error(answer["errors"][0], HOLDER, NATIVE, "behind_block")
    assert f"(read at block {first})" in answer["errors"][0]["message"]


async def test_bulk_portfolio_ends_at_one_block(kit: Kit, make_client: ClientFactory) -> None:
    client = await make_client()
    first, second = await _read_at_two_tips(kit, client)  # HOLDER's STX moved after its read
    body = {"addresses": [HOLDER, OTHER], "period": "7d"}
    answer = (await client.post(PORTFOLIO, json=body)).json()
    assert answer["block_height"] == second
    assert set(answer["performance"]) == {OTHER}
    [error] = answer["errors"]
    _assert_item_error(error, HOLDER, None, "behind_block")
    assert f"cannot end at block {second}" in error["message"]

    kit.clocks.advance(mono=10_000, wall=10_000)  # past every TTL: both are read again
    again = (await client.post(PORTFOLIO, json=body)).json()
    assert again["errors"] == []
    assert set(again["performance"]) == {HOLDER, OTHER}
    assert again["block_height"] == kit.chain.tip_height
    assert first < second


_METADATA = ("decimals", "symbol", "display_balance", "metadata")


async def test_bulk_current_answers_equal_the_single_route(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    answer = (await api.post(CURRENT, json={"addresses": [HOLDER], "tokenIds": [ASSET]})).json()
    [first] = answer["balances"]
    assert first["source"] == "chain"  # its metadata may still be pending
    await kit.metadata_settled()  # then both routes answer with the same metadata
    answer = (await api.post(CURRENT, json={"addresses": [HOLDER], "tokenIds": [ASSET]})).json()
    [item] = answer["balances"]
    single = (await api.get(f"/balances/{HOLDER}/{ASSET}")).json()
    assert (item["source"], single["source"]) == ("cache", "cache")
    assert item == single
    assert {**first, "source": "cache"} == {**single, **{k: first[k] for k in _METADATA}}
    assert item["token_id"] == NATIVE  # the asset identifier names the contract


async def test_bulk_current_without_tokens_lists_every_token_held(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    response = await api.post(CURRENT, json={"addresses": [HOLDER, OTHER]})
    assert response.status_code == 200, response.text
    answer = response.json()
    held = {
        (address, token): kit.chain.balance(token, address)
        for address in (HOLDER, OTHER)
        for token in ("stx", NATIVE, MAP_TOKEN, SPENT)
        if kit.chain.balance(token, address) > 0
    }
    assert _amounts(answer["balances"]) == held
    assert answer["errors"] == []


async def test_min_balance_filters_and_include_zero_includes_zeros(
    api: httpx.AsyncClient, kit: Kit, key: dict[str, str]
) -> None:
    every = {"addresses": [HOLDER]}
    held = _amounts((await api.post(CURRENT, json=every)).json()["balances"])
    assert held[(HOLDER, SPENT)] == 10  # known to be held ...
    kit.chain.transfer(SPENT, HOLDER, OTHER, kit.chain.balance(SPENT, HOLDER))
    assert (await api.post(f"/balances/{HOLDER}/refresh", headers=key)).status_code == 200
    # ... and now all sent away
    plain = _amounts((await api.post(CURRENT, json=every)).json()["balances"])
    assert (HOLDER, SPENT) not in plain
    zeros = _amounts(
        (await api.post(CURRENT, json={**every, "includeZero": True})).json()["balances"]
    )
    assert zeros[(HOLDER, SPENT)] == 0
    assert {pair: n for pair, n in zeros.items() if n} == plain

    floor = kit.chain.balance(NATIVE, HOLDER)  # 750: stx (5 STX) and 750 CHA pass, 77 does not
    rich = _amounts(
        (await api.post(CURRENT, json={**every, "minBalance": str(floor)})).json()["balances"]
    )
    assert rich == {pair: n for pair, n in plain.items() if n >= floor}
    assert (HOLDER, NATIVE) in rich
    assert (HOLDER, MAP_TOKEN) not in rich
    # a floor above zero drops zeros even when they are asked for
    both = {**every, "includeZero": True, "minBalance": "1"}
    assert _amounts((await api.post(CURRENT, json=both)).json()["balances"]) == plain


async def test_a_bad_address_among_good_ones_gets_its_own_error(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    body = {"addresses": [HOLDER, BAD, OTHER], "tokenIds": ["stx", NATIVE]}
    response = await api.post(CURRENT, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert _amounts(answer["balances"]) == {
        (HOLDER, "stx"): kit.chain.balance("stx", HOLDER),
        (HOLDER, NATIVE): kit.chain.balance(NATIVE, HOLDER),
        (OTHER, NATIVE): kit.chain.balance(NATIVE, OTHER),
    }
    assert len(answer["errors"]) == 2
    for item, token in zip(answer["errors"], ["stx", NATIVE], strict=True):
        _assert_item_error(item, BAD, token, "invalid_address")

    without_tokens = (await api.post(CURRENT, json={"addresses": [BAD, HOLDER]})).json()
    [error] = without_tokens["errors"]
    _assert_item_error(error, BAD, None, "invalid_address")
    assert {b["address"] for b in without_tokens["balances"]} == {HOLDER}


async def test_a_bad_or_unknown_token_gets_its_own_error(api: httpx.AsyncClient, kit: Kit) -> None:
    missing = f"{OTHER}.no-such-token"
    body = {"addresses": [HOLDER], "tokenIds": ["stx", "not a token", missing]}
    answer = (await api.post(CURRENT, json=body)).json()
    assert _amounts(answer["balances"]) == {(HOLDER, "stx"): kit.chain.balance("stx", HOLDER)}
    errors = {item["token_id"]: item for item in answer["errors"]}
    assert set(errors) == {"not a token", missing}
    _assert_item_error(errors["not a token"], HOLDER, "not a token", "invalid_token_id")
    _assert_item_error(errors[missing], HOLDER, missing, "token_not_found")


# --- limits and validation -------------------------------------------------------------


async def test_over_max_bulk_items_is_413_before_any_work(
    make_client: ClientFactory, kit: Kit
) -> None:
    client = await make_client(api={"key": API_KEY, "max_bulk_items": 4})
    kit.reset()
    two_by_two = {"addresses": [HOLDER, OTHER], "tokenIds": ["stx", NATIVE]}
    assert (await client.post(CURRENT, json=two_by_two)).status_code == 200
    kit.reset()
    cases = [
        (CURRENT, {"addresses": [HOLDER, OTHER, BAD], "tokenIds": ["stx", NATIVE]}),
        (CURRENT, {"addresses": [HOLDER], "token_ids": ["stx", NATIVE, MAP_TOKEN, SPENT, ASSET]}),
        (SERIES, {"addresses": [HOLDER, OTHER, BAD], "tokenIds": ["stx", NATIVE]}),
        (PORTFOLIO, {"addresses": [HOLDER, OTHER, BAD, f"{OTHER}.vault", f"{HOLDER}.pool"]}),
    ]
    for path, body in cases:
        response = await client.post(path, json=body)
        assert response.status_code == 413, (path, response.text)
        answer = response.json()
        assert set(answer) == {"error", "message"}
        assert answer["error"] == "request_too_large"
        assert "4" in answer["message"]
        assert "MAX_BULK_ITEMS" in answer["message"]
    assert kit.chain.requests == {}, "a refused request reads nothing"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CURRENT, {"addresses": [HOLDER] * 1001}),
        (CURRENT, {"addresses": [HOLDER], "tokenIds": ["stx"] * 1001}),
        (SERIES, {"addresses": [HOLDER] * 1001, "tokenIds": ["stx"]}),
        (SERIES, {"addresses": [HOLDER], "tokenIds": ["stx"] * 1001}),
        (PORTFOLIO, {"addresses": [HOLDER] * 1001}),
    ],
    ids=["current-addresses", "current-tokens", "series-addresses", "series-tokens", "portfolio"],
)
async def test_over_the_list_bound_is_422(
    api: httpx.AsyncClient, kit: Kit, path: str, body: dict[str, Any]
) -> None:
    kit.reset()
    response = await api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert "1000" in response.json()["message"]
    assert kit.chain.requests == {}


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        (CURRENT, {"addresses": [HOLDER], "bogus": 1}, "bogus"),
        (CURRENT, {"addresses": [HOLDER], "tokens": ["stx"]}, "tokens"),
        (SERIES, {"addresses": [HOLDER], "tokenIds": ["stx"], "step": "hour"}, "step"),
        (PORTFOLIO, {"addresses": [HOLDER], "tokenIds": ["stx"]}, "tokenIds"),
    ],
    ids=["current", "current-near-miss", "series", "portfolio"],
)
async def test_unknown_body_fields_are_422(
    api: httpx.AsyncClient, kit: Kit, path: str, body: dict[str, Any], unknown: str
) -> None:
    kit.reset()
    response = await api.post(path, json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "invalid_request"
    assert unknown in answer["message"]
    assert kit.chain.requests == {}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CURRENT, {}),
        (CURRENT, {"addresses": []}),
        (CURRENT, {"addresses": HOLDER}),
        (CURRENT, {"addresses": [HOLDER], "minBalance": "-1"}),
        (CURRENT, {"addresses": [HOLDER], "minBalance": 5}),
        (SERIES, {"addresses": [HOLDER]}),
        (SERIES, {"addresses": [HOLDER], "tokenIds": []}),
        (PORTFOLIO, {"addresses": []}),
    ],
    ids=[
        "no-addresses",
        "empty-addresses",
        "addresses-not-a-list",
        "negative-floor",
        "numeric-floor",
        "series-without-tokens",
        "series-empty-tokens",
        "portfolio-empty",
    ],
)
async def test_malformed_bodies_are_422(
    api: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


# --- one store read per distinct address ---------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def logged(fake_chain: FakeChain, server: SharedServer) -> AsyncIterator[Kit]:
    """A kit whose store logs every get (no ``kit`` fixture: it would seed twice)."""
    async with open_kit(fake_chain, server.plug(fake_chain), store=KeyLog()) as built:
        yield built


@contextlib.asynccontextmanager
async def _client(service: BalanceService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(service=service))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


def _current_keys(svc: BalanceService, layout: str, addresses: list[str]) -> list[str]:
    if layout == "spec":
        return sorted(f"spec/current/{address}" for address in addresses)
    assert isinstance(svc.layout, ShardedStore)
    return sorted({svc.layout.current_key(svc.layout.shard(address)) for address in addresses})


@pytest.mark.parametrize("layout", ["spec", "sharded"])
async def test_bulk_current_reads_each_distinct_address_once_from_the_store(
    logged: Kit, layout: str
) -> None:
    store = logged.store
    assert isinstance(store, KeyLog)
    warm = logged.service(api_config(layout=layout))
    for address in (HOLDER, OTHER):
        await warm.refresh_address_balances(address)
    for token in (NATIVE, SPENT, MAP_TOKEN):
        await warm.get_token(token)
    await warm.close()
    logged.reset()
    store.gets.clear()

    svc = logged.service(api_config(layout=layout))
    prefix = "spec/current/" if layout == "spec" else "v1/current/"
    async with _client(svc) as client:
        body = {
            "addresses": [HOLDER, OTHER, HOLDER],
            "tokenIds": ["stx", NATIVE, ASSET, MAP_TOKEN, SPENT],
            "includeZero": True,
        }
        response = await client.post(CURRENT, json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["errors"] == []
        assert {b["source"] for b in answer["balances"]} == {"store"}
        assert len(answer["balances"]) == 10  # the repeated address is answered once
        assert sorted(store.gets_under(prefix)) == _current_keys(svc, layout, [HOLDER, OTHER])
        assert logged.balance_requests() == {}

        store.gets.clear()
        again = (await client.post(CURRENT, json=body)).json()
        assert {b["source"] for b in again["balances"]} == {"cache"}
        assert store.gets_under(prefix) == []


# --- POST /balances/bulk/series ---------------------------------------------------------------


async def test_bulk_series_equals_the_history_route(api: httpx.AsyncClient, kit: Kit) -> None:
    body = {
        "addresses": [HOLDER, OTHER],
        "tokenIds": ["stx", ASSET],
        "period": "24h",
        "granularity": "hour",
    }
    await api.post(SERIES, json=body)
    await kit.metadata_settled()  # both routes then answer with the same metadata
    response = await api.post(SERIES, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"block_height", "series", "errors"}
    assert answer["errors"] == []
    assert set(answer["series"]) == {HOLDER, OTHER}
    for address in (HOLDER, OTHER):
        assert set(answer["series"][address]) == {"stx", ASSET}
        for token, ledger_token in (("stx", "stx"), (ASSET, NATIVE)):
            history = answer["series"][address][token]
            assert (history["address"], history["token_id"]) == (address, ledger_token)
            assert (history["period"], history["granularity"]) == ("24h", "hour")
            assert len(history["points"]) in (24, 25)
            assert history["points"][-1]["balance"] == str(kit.chain.balance(ledger_token, address))
            single = await api.get(
                f"/balances/{address}/history/{token}",
                params={"period": "24h", "granularity": "hour"},
            )
            expected = single.json()
            for name in ("start", "end", "points", "start_balance", "decimals", "symbol"):
                assert history[name] == expected[name], (address, token, name)


async def test_bulk_series_takes_an_explicit_range(api: httpx.AsyncClient, kit: Kit) -> None:
    start, end = WALL_START - 6 * 3600, WALL_START
    body = {
        "addresses": [HOLDER],
        "token_ids": ["stx"],
        "period": "1y",
        "granularity": "hour",
        "from": _iso(start),
        "to": _iso(end),
    }
    response = await api.post(SERIES, json=body)
    assert response.status_code == 200, response.text
    history = response.json()["series"][HOLDER]["stx"]
    # the range, not the period; it begins at its first bucket's start
    first_bucket = Granularity.HOUR.floor(datetime.fromtimestamp(start, UTC))
    assert datetime.fromisoformat(history["start"]) == first_bucket
    assert datetime.fromisoformat(history["end"]) == datetime.fromtimestamp(end, UTC)
    assert history["period"] != "1y"
    assert len(history["points"]) == 7
    assert history["granularity"] == "hour"
    single = await api.get(
        f"/balances/{HOLDER}/history/stx",
        params={"granularity": "hour", "from": _iso(start), "to": _iso(end)},
    )
    assert history["points"] == single.json()["points"]
    # start/end are accepted as the snake_case spelling of from/to
    snake = {name: value for name, value in body.items() if name not in ("from", "to")}
    snake.update(start=body["from"], end=body["to"])
    again = (await api.post(SERIES, json=snake)).json()["series"][HOLDER]["stx"]
    assert again["points"] == history["points"]
    assert kit.chain.balance("stx", HOLDER) > 0


async def test_bulk_series_item_errors(api: httpx.AsyncClient) -> None:
    missing = f"{OTHER}.no-such-token"
    body = {"addresses": [BAD, HOLDER], "tokenIds": ["stx", missing], "period": "7d"}
    answer = (await api.post(SERIES, json=body)).json()
    assert set(answer["series"]) == {HOLDER}
    assert set(answer["series"][HOLDER]) == {"stx"}
    errors = {(item["address"], item["token_id"]): item for item in answer["errors"]}
    # a bad address fails as a whole (no token named), a bad token on its own
    assert set(errors) == {(BAD, None), (HOLDER, missing)}
    _assert_item_error(errors[(BAD, None)], BAD, None, "invalid_address")
    _assert_item_error(errors[(HOLDER, missing)], HOLDER, missing, "token_not_found")


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (SERIES, {"addresses": [HOLDER], "tokenIds": ["stx"], "period": "2w"}, "invalid_period"),
        (
            SERIES,
            {"addresses": [HOLDER], "tokenIds": ["stx"], "granularity": "s"},
            "invalid_granularity",
        ),
        (
            SERIES,
            {"addresses": [HOLDER], "tokenIds": ["stx"], "from": "2024-01-01"},
            "invalid_period",
        ),
        (PORTFOLIO, {"addresses": [HOLDER], "period": "2w"}, "invalid_period"),
    ],
    ids=["series-period", "series-granularity", "series-half-range", "portfolio-period"],
)
async def test_a_bad_period_or_granularity_answers_no_data(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], code: str
) -> None:
    """Refused with its code: as a 400, or (today) as an error on every item."""
    response = await api.post(path, json=body)
    answer = response.json()
    if response.status_code == 400:
        assert answer["error"] == code
        return
    assert response.status_code == 200, response.text
    assert answer.get("series", answer.get("performance")) == {}
    assert answer["errors"]
    assert {item["error"] for item in answer["errors"]} == {code}


# --- POST /balances/bulk/portfolio ------------------------------------------------------------

PERFORMANCE_FIELDS = {
    "address",
    "period",
    "start",
    "end",
    "start_usd",
    "end_usd",
    "change_usd",
    "change_pct",
    "tokens",
    "missing_prices",
}
TOKEN_FIELDS = {
    "token_id",
    "start_balance",
    "end_balance",
    "change",
    "change_pct",
    "start_usd",
    "end_usd",
    "change_usd",
    "change_usd_pct",
}


async def test_bulk_portfolio_shape_values_and_item_errors(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    response = await api.post(PORTFOLIO, json={"addresses": [HOLDER, BAD, OTHER], "period": "7d"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"block_height", "performance", "errors"}
    [error] = answer["errors"]
    _assert_item_error(error, BAD, None, "invalid_address")
    assert set(answer["performance"]) == {HOLDER, OTHER}
    for address in (HOLDER, OTHER):
        performance = answer["performance"][address]
        assert set(performance) == PERFORMANCE_FIELDS
        assert (performance["address"], performance["period"]) == (address, "7d")
        end = datetime.fromisoformat(performance["end"])
        assert end == datetime.fromtimestamp(WALL_START, UTC)
        assert end - datetime.fromisoformat(performance["start"]) >= timedelta(days=7)
        tokens = {item["token_id"]: item for item in performance["tokens"]}
        assert all(set(item) == TOKEN_FIELDS for item in tokens.values())
        for token, item in tokens.items():
            assert item["end_balance"] == str(kit.chain.balance(token, address))
            # tracking began now: the week's start is unknown, not zero
            assert item["start_balance"] is None
            assert item["change"] is None
            assert item["change_pct"] is None
            assert item["start_usd"] is item["end_usd"] is item["change_usd"] is None
        # no price source: every token is missing a price, no USD figure is made up
        assert sorted(performance["missing_prices"]) == sorted(tokens)
        assert performance["start_usd"] is performance["end_usd"] is None
        assert performance["change_usd"] is performance["change_pct"] is None
    assert set(answer["performance"][HOLDER]["tokens"][0]) == TOKEN_FIELDS
    assert {"stx", NATIVE, MAP_TOKEN} <= {
        t["token_id"] for t in answer["performance"][HOLDER]["tokens"]
    }


async def test_bulk_portfolio_equals_the_python_api(kit: Kit, make_client: ClientFactory) -> None:
    svc = kit.service(api_config(api={"key": API_KEY}))
    client = await make_client(svc)
    body = {"addresses": [HOLDER, OTHER], "period": "24h"}
    answer = (await client.post(PORTFOLIO, json=body)).json()
    direct = await BalanceSeriesAPI(svc).get_portfolio_performance_bulk([HOLDER, OTHER], "24h")
    assert direct.errors == []
    assert answer["performance"] == {
        address: performance.as_dict() for address, performance in direct.performance.items()
    }


# --- cache and scheduler ----------------------------------------------------------------------

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


async def test_cache_stats_report_the_cache_and_the_blob_meter(
    kit: Kit, make_client: ClientFactory
) -> None:
    svc = kit.service(api_config(api={"key": API_KEY}))
    client = await make_client(svc)
    await client.get(f"/balances/{HOLDER}/stx")
    await client.get(f"/balances/{HOLDER}/stx")
    response = await client.get("/cache/stats")
    assert response.status_code == 200
    stats = response.json()
    assert set(stats) >= CACHE_STATS_FIELDS
    assert stats == svc.cache_report()
    assert (stats["entries"], stats["hits"]) == (1, 1)
    assert stats["misses"] >= 1
    assert stats["memory_bytes"] > 0
    assert stats["blob_operations"]["put"] >= 1
    assert set(stats["blob_classes"]) == {"simple", "advanced", "free"}
    assert stats["bytes_uploaded"] > 0
    assert stats["bytes_stored"] > 0
    cost = stats["estimated_cost"]
    for category in ("storage", "simple_operations", "advanced_operations", "transfer", "total"):
        assert cost[category] >= 0, category
    assert cost["total"] == pytest.approx(
        sum(cost[c] for c in ("storage", "simple_operations", "advanced_operations", "transfer"))
    )


async def test_cache_clear_needs_a_configured_key(make_client: ClientFactory) -> None:
    client = await make_client(api={})
    response = await client.post("/cache/clear", headers={"x-api-key": API_KEY})
    assert response.status_code == 403
    assert response.json()["error"] == "disabled"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}], ids=["missing", "wrong"])
async def test_cache_clear_needs_the_right_key(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await api.get(f"/balances/{HOLDER}/stx")
    response = await api.post("/cache/clear", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == "ApiKey"
    assert (await api.get("/cache/stats")).json()["entries"] == 1, "a refused clear clears nothing"


async def test_cache_clear_with_the_key_empties_the_cache(
    api: httpx.AsyncClient, kit: Kit, key: dict[str, str]
) -> None:
    first = (await api.get(f"/balances/{HOLDER}/stx")).json()
    assert (await api.get(f"/balances/{HOLDER}/stx")).json()["source"] == "cache"
    assert (await api.get("/cache/stats")).json()["entries"] == 1
    kit.reset()
    response = await api.post("/cache/clear", headers=key)
    assert response.status_code == 204
    assert response.content == b""
    assert (await api.get("/cache/stats")).json()["entries"] == 0
    after = (await api.get(f"/balances/{HOLDER}/stx")).json()
    assert after["source"] == "store"  # the store is untouched, only the cache went
    assert after["balance"] == first["balance"]
    assert kit.balance_requests() == {}


class FakeScheduler:
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def get_status(self) -> dict[str, Any]:
        return self.status


async def test_scheduler_status_without_and_with_a_scheduler(kit: Kit) -> None:
    svc = kit.service(api_config(api={"key": API_KEY}))
    app = create_app(service=svc)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        idle = await client.get("/scheduler")
        assert idle.status_code == 200
        assert idle.json() == {"running": False, "tasks": {}}

        status = {
            "owner_id": "replica-1",
            "leader": True,
            "lease": None,
            "now": WALL_START,
            "tasks": {"sync": {"enabled": True, "interval": 300, "runs": 3, "failures": 1}},
        }
        app.state.scheduler = FakeScheduler(status)
        running = await client.get("/scheduler")
        assert running.status_code == 200
        assert running.json() == {"running": True, **status}
