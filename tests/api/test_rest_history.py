"""The REST history routes on the Stacks API stand-in: the spec's
``GET /balances/{address}/history/{tokenId}``, the portfolio, balances at a time or
block, and ``POST /balances/{address}/backfill``; their shapes, values (against the
ledger and the Python API), validation errors and routing.

The chain and the fake wall clock move in lockstep (a refresh happens at the time of
the block it reads), so a live history is exact at every bucket end.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, Kit, SharedServer, config

from balances.domain import Granularity
from balances.service.balances import BalanceService

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
ASSET = f"{NATIVE}::charisma"
HOUR = 3_600

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def fake_chain_server_url(server: SharedServer) -> str:
    """The base URL of the stand-in (its price routes too)."""
    return f"http://{server.host}:{server.port}"


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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

    async def step(self, seconds: int, token: str, amount: int) -> None:
        """``seconds`` later: HOLDER sends ``amount`` of ``token``; the service reads it."""
        self.kit.chain.advance_time(seconds - 10)
        self.kit.chain.transfer(token, HOLDER, OTHER, amount)
        self.kit.clocks.mono.advance(seconds)
        self.kit.clocks.wall.now = float(self.kit.chain.tip_time)
        await self.service.refresh_address_balances(HOLDER)

    def truth(self, token: str, moment: float) -> int:
        block = self.kit.chain.blocks.at_time(math.floor(moment))
        assert block is not None
        return self.kit.chain.balance(token, HOLDER, at_height=block.height)


async def _history_setup(
    kit: Kit, make_client: ClientFactory, api_key: str, **fields: Any
) -> tuple[Lockstep, httpx.AsyncClient, float]:
    service = kit.service(config(map_tokens=[MAP_TOKEN], api={"key": api_key}, **fields))
    sim = Lockstep(kit, service)
    await service.refresh_address_balances(HOLDER)
    since = sim.now
    for n in range(10):
        await sim.step(2 * HOUR + 7 * 60 + n, "stx" if n % 3 else NATIVE, 100 + n)
    return sim, await make_client(service), since


def _expected(sim: Lockstep, token: str, body: dict[str, Any], since: float) -> list[str | None]:
    starts = [_parse(p["at"]) for p in body["points"]]
    ends = [*starts[1:], _parse(body["end"])]
    found: list[str | None] = []
    for index, end in enumerate(ends):
        moment = end.timestamp() - (0 if index == len(ends) - 1 else 1e-3)
        found.append(None if moment < since else str(sim.truth(token, moment)))
    return found


# --- GET /balances/{address}/history/{tokenId} ---------------------------------------------


async def test_history_route_shape_and_values(
    kit: Kit, make_client: ClientFactory, api_key: str
) -> None:
    sim, client, since = await _history_setup(kit, make_client, api_key)
    response = await client.get(f"/balances/{HOLDER}/history/stx", params={"period": "24h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "address",
        "token_id",
        "period",
        "granularity",
        "start",
        "end",
        "decimals",
        "symbol",
        "start_balance",
        "points",
        "updated_at",
        "block_height",
        "stale",
        "source",
    }
    assert (body["address"], body["token_id"], body["period"]) == (HOLDER, "stx", "24h")
    assert (body["granularity"], body["decimals"], body["symbol"]) == ("5m", 6, "STX")
    assert _parse(body["end"]) == _dt(sim.now)
    start = _parse(body["start"])
    assert start == Granularity.FIVE_MINUTES.floor(_dt(sim.now) - timedelta(hours=24))
    assert len(body["points"]) == 289
    assert all(set(p) == {"at", "balance"} for p in body["points"])
    assert [p["balance"] for p in body["points"]] == _expected(sim, "stx", body, since)
    assert body["points"][-1]["balance"] == str(kit.chain.balance("stx", HOLDER))
    assert body["start_balance"] is None  # the day began before tracking did
    assert body["block_height"] == kit.chain.tip_height
    assert body["stale"] is False
    assert _parse(body["updated_at"]) == _dt(sim.now)

    direct = await sim.service.get_balance_history(HOLDER, "stx", "24h")
    assert [p["balance"] for p in body["points"]] == [
        None if p.amount is None else str(p.amount) for p in direct.points
    ]


@pytest.mark.parametrize("token_id", [NATIVE, ASSET], ids=["contract-id", "asset-identifier"])
async def test_history_route_with_an_explicit_range_and_granularity(
    kit: Kit, make_client: ClientFactory, api_key: str, token_id: str
) -> None:
    sim, client, since = await _history_setup(kit, make_client, api_key)
    start = _dt(since + 2 * HOUR + 17)
    end = _dt(sim.now - 30 * 60)
    response = await client.get(
        f"/balances/{HOLDER}/history/{token_id}",
        params={"from": start.isoformat(), "to": str(int(end.timestamp())), "granularity": "hour"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_id"] == NATIVE
    assert (body["granularity"], body["decimals"], body["symbol"]) == ("hour", 8, "CHA")
    assert _parse(body["start"]) == Granularity.HOUR.floor(start)
    assert _parse(body["end"]) == _dt(int(end.timestamp()))
    assert body["start_balance"] == str(sim.truth(NATIVE, _parse(body["start"]).timestamp()))
    assert [p["balance"] for p in body["points"]] == _expected(sim, NATIVE, body, since)
    assert len({p["balance"] for p in body["points"]}) > 1


async def test_history_route_defaults_to_30_days_by_day(
    kit: Kit, make_client: ClientFactory, api_key: str
) -> None:
    _, client, _ = await _history_setup(kit, make_client, api_key)
    body = (await client.get(f"/balances/{HOLDER}/history/{MAP_TOKEN}")).json()
    assert (body["period"], body["granularity"]) == ("30d", "day")
    assert len(body["points"]) == 31
    assert body["points"][-1]["balance"] == str(kit.chain.balance(MAP_TOKEN, HOLDER))
    assert all(_parse(p["at"]).hour == 0 for p in body["points"])
    weekly = (
        await client.get(f"/balances/{HOLDER}/history/stx", params={"granularity": "week"})
    ).json()
    assert weekly["granularity"] == "week"
    assert all(_parse(p["at"]).weekday() == 0 for p in weekly["points"])
    assert weekly["points"][-1]["balance"] == str(kit.chain.balance("stx", HOLDER))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"period": "2d"}, "invalid_period"),
        ({"granularity": "minute"}, "invalid_granularity"),
        ({"from": "2024-01-01T00:00:00Z"}, "invalid_period"),
        ({"to": "2024-01-01T00:00:00Z"}, "invalid_period"),
        ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "invalid_period"),
        ({"from": "not a time", "to": "2024-01-01T00:00:00Z"}, "invalid_period"),
        ({"period": "1y", "granularity": "5m"}, "invalid_period"),
    ],
    ids=[
        "unknown-period",
        "unknown-granularity",
        "only-from",
        "only-to",
        "to-before-from",
        "unreadable-from",
        "5m-over-1y",
    ],
)
@pytest.mark.parametrize("route", ["history/stx", "portfolio"])
async def test_bad_history_inputs_are_400_with_a_code_and_message(
    api: httpx.AsyncClient, route: str, params: dict[str, str], code: str
) -> None:
    response = await api.get(f"/balances/{HOLDER}/{route}", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert body["message"]


async def test_a_bad_address_on_the_history_route_is_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/balances/SPNOTANADDRESS/history/stx")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_address"


# --- routing ---------------------------------------------------------------------------------


async def test_history_routes_are_not_shadowed_by_the_balance_route(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    history = await api.get(f"/balances/{HOLDER}/history/stx")
    assert history.status_code == 200
    assert "points" in history.json()
    assert history.json()["token_id"] == "stx"
    portfolio = await api.get(f"/balances/{HOLDER}/portfolio")
    assert portfolio.status_code == 200
    assert "buckets" in portfolio.json()
    now = datetime.fromtimestamp(kit.clocks.wall.now, UTC).isoformat()
    at = await api.get(f"/balances/{HOLDER}/at/stx", params={"at": now})
    assert at.status_code == 200
    assert at.json()["balance"] == str(kit.chain.balance("stx", HOLDER))
    assert "points" not in at.json()
    balance = await api.get(f"/balances/{HOLDER}/stx")
    assert balance.status_code == 200
    assert "points" not in balance.json()
    assert balance.json()["balance"] == str(kit.chain.balance("stx", HOLDER))
    history_of_asset = await api.get(f"/balances/{HOLDER}/history/{ASSET}")
    assert history_of_asset.json()["token_id"] == NATIVE


# --- portfolio ---------------------------------------------------------------------------------


async def test_portfolio_route_shape_and_values(
    kit: Kit, make_client: ClientFactory, api_key: str
) -> None:
    sim, client, since = await _history_setup(kit, make_client, api_key)
    response = await client.get(f"/balances/{HOLDER}/portfolio", params={"period": "24h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "address",
        "period",
        "granularity",
        "start",
        "end",
        "tokens",
        "buckets",
        "missing_prices",
        "stale",
        "updated_at",
    }
    assert (body["address"], body["period"], body["granularity"]) == (HOLDER, "24h", "5m")
    tokens = {t["token_id"]: t for t in body["tokens"]}
    assert {"stx", NATIVE, MAP_TOKEN} <= set(tokens)
    assert tokens["stx"] == {"token_id": "stx", "symbol": "STX", "decimals": 6, "priced": False}
    assert tokens[MAP_TOKEN]["decimals"] == 3
    assert sorted(body["missing_prices"]) == sorted(tokens)  # no price source configured
    ends = [_parse(b["at"]) for b in body["buckets"][1:]] + [_parse(body["end"])]
    for index, (bucket, end) in enumerate(zip(body["buckets"], ends, strict=True)):
        assert set(bucket) == {"at", "balances", "usd", "total_usd"}
        assert bucket["total_usd"] is None
        assert all(v is None for v in bucket["usd"].values())
        moment = end.timestamp() - (0 if index == len(ends) - 1 else 1e-3)
        for token in ("stx", NATIVE):
            expected = None if moment < since else str(sim.truth(token, moment))
            assert bucket["balances"][token] == expected
    last = body["buckets"][-1]["balances"]
    assert last[MAP_TOKEN] == str(kit.chain.balance(MAP_TOKEN, HOLDER))


async def test_portfolio_route_values_usd_with_the_stand_ins_prices(
    kit: Kit, make_client: ClientFactory, api_key: str, fake_chain_server_url: str
) -> None:
    prices = {
        "url_template": f"{fake_chain_server_url}/prices/{{token_id}}",
        "history_url_template": f"{fake_chain_server_url}/prices/{{token_id}}/history",
    }
    kit.chain.set_price("stx", "0.5", at=kit.chain.tip_time)
    sim, client, since = await _history_setup(kit, make_client, api_key, prices=prices)
    change = int(sim.now) - 5 * HOUR - 77
    kit.chain.set_price("stx", "0.625", at=change)
    assert await sim.service.backfill_prices(["stx"], days=5) >= 2
    body = (await client.get(f"/balances/{HOLDER}/portfolio", params={"period": "24h"})).json()
    tokens = {t["token_id"]: t for t in body["tokens"]}
    assert tokens["stx"]["priced"] is True
    assert "stx" not in body["missing_prices"]
    assert NATIVE in body["missing_prices"]
    ends = [_parse(b["at"]) for b in body["buckets"][1:]] + [_parse(body["end"])]
    for index, (bucket, end) in enumerate(zip(body["buckets"], ends, strict=True)):
        moment = end.timestamp() - (0 if index == len(ends) - 1 else 1e-3)
        amount = bucket["balances"]["stx"]
        assert amount == (None if moment < since else str(sim.truth("stx", moment)))
        if amount is None:
            assert bucket["usd"]["stx"] is None
            continue
        price = Decimal("0.625") if end.timestamp() > change else Decimal("0.5")
        expected = (Decimal(amount) / Decimal(10) ** 6 * price).quantize(Decimal("0.000001"))
        assert Decimal(bucket["usd"]["stx"]) == expected
        assert bucket["usd"][NATIVE] is None
        assert Decimal(bucket["total_usd"]) == expected  # priced tokens only


# --- balances at a time or a block ----------------------------------------------------------


async def test_balance_at_a_height_or_a_time(
    kit: Kit, make_client: ClientFactory, api_key: str
) -> None:
    sim, client, since = await _history_setup(kit, make_client, api_key)
    first = kit.chain.blocks.at_time(int(since))
    assert first is not None
    for height in range(first.height, kit.chain.tip_height + 1, 4):
        block = kit.chain.blocks.at_height(height)
        assert block is not None
        if block.time < since:
            continue
        by_height = await client.get(f"/balances/{HOLDER}/at/stx", params={"height": height})
        assert by_height.status_code == 200, by_height.text
        body = by_height.json()
        assert body["balance"] == str(sim.truth("stx", block.time))
        assert body["block_height"] == height
        assert _parse(body["at"]) == _dt(block.time)
        moment = min(block.time + 3, sim.now)
        by_time = await client.get(
            f"/balances/{HOLDER}/at/{ASSET}", params={"at": _dt(moment).isoformat()}
        )
        assert by_time.status_code == 200, by_time.text
        answer = by_time.json()
        assert answer["token_id"] == NATIVE
        assert answer["balance"] == str(sim.truth(NATIVE, moment))
        assert answer["block_height"] is None
        assert Decimal(answer["display_balance"]) == Decimal(answer["balance"]).scaleb(-8)
    unix = await client.get(f"/balances/{HOLDER}/at/stx", params={"at": str(int(sim.now))})
    assert unix.json()["balance"] == str(kit.chain.balance("stx", HOLDER))


async def test_bulk_current_at_a_block_answers_every_balance_as_of_that_block(
    kit: Kit, make_client: ClientFactory, api_key: str
) -> None:
    sim, client, since = await _history_setup(kit, make_client, api_key)
    first = kit.chain.blocks.at_time(int(since))
    assert first is not None
    tokens = ["stx", NATIVE]
    checked = 0
    for height in range(first.height, kit.chain.tip_height + 1, 3):
        block = kit.chain.blocks.at_height(height)
        assert block is not None
        if block.time < since:
            continue
        body = {"addresses": [HOLDER], "tokenIds": tokens, "includeZero": True, "atBlock": height}
        response = await client.post("/balances/bulk/current", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["errors"] == []
        assert answer["block_height"] == height
        assert [b["block_height"] for b in answer["balances"]] == [height, height]
        assert {b["token_id"]: b["balance"] for b in answer["balances"]} == {
            token: str(sim.truth(token, block.time)) for token in tokens
        }
        checked += 1
    assert checked >= 3

    before = {"addresses": [HOLDER], "tokenIds": tokens, "atBlock": first.height - 50}
    answer = (await client.post("/balances/bulk/current", json=before)).json()
    assert answer["balances"] == [], "an amount before its history is unknown, never zero"
    assert {e["error"] for e in answer["errors"]} == {"balance_not_found"}
    assert answer["block_height"] == first.height - 50


@pytest.mark.parametrize("at_block", [-1, "12", True, 2**32, 12.5])
async def test_bulk_current_refuses_a_bad_at_block(api: httpx.AsyncClient, at_block: Any) -> None:
    body = {"addresses": [HOLDER], "at_block": at_block}
    response = await api.post("/balances/bulk/current", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


async def test_a_balance_read_at_the_tip_answers_for_that_height(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    """Reads carry the chain tip's height. A read made (as always) a little after its
    block was mined is what the address held at that height: asking for the height
    must answer it, not "unknown" (nor an older amount)."""
    kit.chain.advance_time(30)
    kit.chain.transfer("stx", HOLDER, OTHER, 5_000)  # moves the balance in the tip block
    kit.clocks.wall.now = kit.chain.tip_time + 20.0  # the service reads 20 s later
    read = (await api.get(f"/balances/{HOLDER}/stx")).json()
    assert read["block_height"] == kit.chain.tip_height
    response = await api.get(f"/balances/{HOLDER}/at/stx", params={"height": read["block_height"]})
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == read["balance"] == str(kit.chain.balance("stx", HOLDER))


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "invalid_period"),
        ({"at": "2024-01-01T00:00:00Z", "height": "1001"}, 400, "invalid_period"),
        ({"at": "2999-01-01T00:00:00Z"}, 400, "invalid_period"),
        ({"at": "not a time"}, 400, "invalid_period"),
        ({"at": "2023-12-01T00:00:00Z"}, 404, "balance_not_found"),
        ({"height": "-1"}, 422, "invalid_request"),
    ],
    ids=["neither", "both", "future", "unreadable", "before-history", "negative-height"],
)
async def test_bad_balance_at_requests(
    api: httpx.AsyncClient, params: dict[str, str], status: int, code: str
) -> None:
    response = await api.get(f"/balances/{HOLDER}/at/stx", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert body["message"]


# --- POST /balances/{address}/backfill ---------------------------------------------------------


async def test_backfill_needs_the_api_key(
    kit: Kit, make_client: ClientFactory, api_key: str
) -> None:
    disabled = await make_client(api={})
    response = await disabled.post(f"/balances/{HOLDER}/backfill", headers={"x-api-key": "x"})
    assert response.status_code == 403
    assert response.json()["error"] == "disabled"

    client = await make_client()
    for headers in ({}, {"x-api-key": "wrong"}):
        refused = await client.post(f"/balances/{HOLDER}/backfill", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json()["error"] == "unauthorized"
        assert refused.json()["message"]
    assert not [key async for key in kit.store.iter_keys("backfill/")]

    kit.chain.transfer("stx", HOLDER, OTHER, 99)
    done = await client.post(f"/balances/{HOLDER}/backfill", headers={"x-api-key": api_key})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["address"], body["done"], body["resumed"], body["already_done"]) == (
        HOLDER,
        True,
        False,
        False,
    )
    assert body["total_txs"] == len(kit.chain.transactions_of(HOLDER))
    assert body["points_written"] > 0
    assert body["stopped"] == {}
    assert "stx" in body["first_point"]
    again = await client.post(
        f"/balances/{HOLDER}/backfill", params={"token": "stx"}, headers={"x-api-key": api_key}
    )
    assert again.status_code == 200
    assert again.json()["already_done"] is True
    assert again.json()["points_written"] == 0


async def test_backfill_route_validates_its_inputs(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    bad_since = await api.post(
        f"/balances/{HOLDER}/backfill", params={"since": "soon"}, headers=key
    )
    assert bad_since.status_code == 400
    assert bad_since.json()["error"] == "invalid_period"
    bad_token = await api.post(
        f"/balances/{HOLDER}/backfill", params={"token": "not a token"}, headers=key
    )
    assert bad_token.status_code == 400
    assert bad_token.json()["error"] == "invalid_token_id"
