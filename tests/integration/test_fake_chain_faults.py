"""Every fault switch of the stand-in, and its request counter, over real HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from balances.testing import FakeChain, FaultConfig, fake_address
from balances.testing.fake_chain import DEPRECATION_WARNING

ALICE = fake_address("alice")
BOB = fake_address("bob")
DEPLOYER = fake_address("deployer")
TOKEN = f"{DEPLOYER}.charisma-token"
V3_STX = f"/extended/v3/principals/{ALICE}/balances/stx"
V3_FT = f"/extended/v3/principals/{ALICE}/balances/ft"
V3_FT_ONE = f"/extended/v3/principals/{ALICE}/balances/ft/{TOKEN}::charisma"
DEPRECATED = (
    f"/extended/v2/addresses/{ALICE}/balances/stx",
    f"/extended/v2/addresses/{ALICE}/balances/ft",
    f"/extended/v2/addresses/{ALICE}/balances/ft/{TOKEN}::charisma",
    f"/extended/v1/address/{ALICE}/stx",
    f"/extended/v1/address/{ALICE}/balances",
)
STX_KEY = "GET /extended/v3/principals/{principal}/balances/stx"


class FakeClock:
    """A clock tests move by hand, so the rate window needs no sleeping."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain()
    chain.add_native_token(TOKEN, "charisma")
    chain.mint("stx", ALICE, 1_000)
    chain.mint(TOKEN, ALICE, 10)
    return chain


# --- deprecation and missing v3 -------------------------------------------------


async def test_deprecated_routes_warn_by_default(fake_chain_client: httpx.AsyncClient) -> None:
    for path in DEPRECATED:
        response = await fake_chain_client.get(path)
        assert response.status_code == 200
        assert response.headers["warning"] == DEPRECATION_WARNING
    assert "warning" not in (await fake_chain_client.get(V3_STX)).headers


async def test_deprecated_routes_can_be_gone(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.deprecated = "gone"
    for path in DEPRECATED:
        response = await fake_chain_client.get(path)
        assert response.status_code == 410
        assert response.json()["error"] == "Gone"
        assert response.json()["message"].startswith("This endpoint has been disabled.")
    assert (await fake_chain_client.get(V3_STX)).status_code == 200
    fake_chain.faults.deprecated = "off"
    response = await fake_chain_client.get(DEPRECATED[0])
    assert response.status_code == 200
    assert "warning" not in response.headers


async def test_v3_missing_answers_404_on_v3_balance_routes_only(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.v3_missing = True
    for path in (V3_STX, V3_FT, V3_FT_ONE):
        response = await fake_chain_client.get(path)
        assert response.status_code == 404
        assert "error" in response.json()
    assert (await fake_chain_client.get(DEPRECATED[1])).status_code == 200
    assert (
        await fake_chain_client.get(f"/extended/v3/principals/{ALICE}/transactions")
    ).status_code == 200


# --- rate limiting ------------------------------------------------------------------


async def test_rate_limit_window_answers_429_with_retry_after(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    fake_chain.faults.clock = clock
    fake_chain.faults.rate_limit_per_minute = 3
    remaining = []
    for _ in range(3):
        response = await fake_chain_client.get(V3_STX)
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        remaining.append(response.headers["ratelimit-remaining"])
        clock.now += 10
    assert remaining == ["2", "1", "0"]
    refused = await fake_chain_client.get(V3_STX)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"  # the oldest request leaves the window at +60 s
    assert refused.headers["ratelimit-remaining"] == "0"
    assert "error" in refused.json()
    clock.now += 30
    assert (await fake_chain_client.get(V3_STX)).status_code == 200
    assert fake_chain.requests[STX_KEY] == 5  # the refused request is counted too


async def test_force_429_answers_the_next_n_requests(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.force_429 = 2
    fake_chain.faults.retry_after = 7
    statuses = [(await fake_chain_client.get(V3_STX)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["retry-after"] == "7"
    assert "ratelimit-limit" not in statuses[2].headers  # no limit configured: no headers


# --- 5xx and malformed bodies ----------------------------------------------------------


async def test_force_5xx_then_recovers(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.force_5xx = 2
    statuses = [(await fake_chain_client.get(V3_STX)).status_code for _ in range(3)]
    assert all(500 <= status < 600 for status in statuses[:2])
    assert statuses[2] == 200


async def test_503_has_the_api_error_body(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.force_5xx = 1
    fake_chain.faults.error_statuses = (503,)
    response = await fake_chain_client.get(V3_FT)
    assert response.status_code == 503
    assert response.json() == {"error": "The database service is unavailable"}


async def test_error_rate_is_reproducible_with_a_seed(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    async def run() -> list[int]:
        fake_chain.faults = FaultConfig(error_rate=0.5, seed=42)
        return [(await fake_chain_client.get(V3_STX)).status_code for _ in range(20)]

    first, second = await run(), await run()
    assert first == second
    assert 200 in first
    assert any(status >= 500 for status in first)


@pytest.mark.parametrize("kind", ["truncated", "html"])
async def test_malformed_bodies_that_are_not_json(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient, kind: str
) -> None:
    fake_chain.faults.force_malformed = 1
    fake_chain.faults.malformed_kind = kind  # type: ignore[assignment]
    response = await fake_chain_client.get(V3_FT)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert (await fake_chain_client.get(V3_FT)).json()["total"] == 1


async def test_malformed_body_missing_a_required_field(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.force_malformed = 2
    fake_chain.faults.malformed_kind = "missing_field"
    assert set((await fake_chain_client.get(V3_STX)).json()) == {"available", "locked", "mempool"}
    assert "results" not in (await fake_chain_client.get(V3_FT)).json()


async def test_malformed_spares_error_answers(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.force_malformed = 1
    fake_chain.faults.malformed_kind = "missing_field"
    bad = await fake_chain_client.get("/extended/v3/principals/nope/balances/stx")
    assert bad.status_code == 400
    assert "error" in bad.json()
    assert "balance" not in (await fake_chain_client.get(V3_STX)).json()


async def test_malformed_rate_spoils_every_answer_at_one(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.malformed_rate = 1.0
    for _ in range(6):
        response = await fake_chain_client.get(V3_STX)
        try:
            body = response.json()
        except json.JSONDecodeError:
            continue
        assert "balance" not in body


async def test_latency_still_answers(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.latency = 0.02
    response = await fake_chain_client.get(V3_STX)
    assert response.status_code == 200
    assert response.json()["balance"] == "1000"


# --- ETags -------------------------------------------------------------------------------


async def test_etag_and_if_none_match(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    first = await fake_chain_client.get(V3_STX)
    tag = first.headers["etag"]
    assert (await fake_chain_client.get(V3_FT)).headers["etag"] == tag  # the principal's state
    cached = await fake_chain_client.get(V3_STX, headers={"if-none-match": tag})
    assert cached.status_code == 304
    assert cached.content == b""
    weak_list = await fake_chain_client.get(V3_STX, headers={"if-none-match": f'"other", W/{tag}'})
    assert weak_list.status_code == 304
    fake_chain.mint("stx", BOB, 5)  # someone else's change keeps ALICE's tag
    assert (await fake_chain_client.get(V3_STX, headers={"if-none-match": tag})).status_code == 304
    fake_chain.transfer("stx", ALICE, BOB, 1)
    changed = await fake_chain_client.get(V3_STX, headers={"if-none-match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert fake_chain.requests[STX_KEY] == 5  # 304s are counted


async def test_etags_can_be_switched_off(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    tag = (await fake_chain_client.get(V3_STX)).headers["etag"]
    fake_chain.faults.etags = False
    response = await fake_chain_client.get(V3_STX, headers={"if-none-match": tag})
    assert response.status_code == 200
    assert "etag" not in response.headers


# --- the request counter -----------------------------------------------------------------


async def test_request_counter_by_route_template(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    await fake_chain_client.get(V3_STX)
    await fake_chain_client.get(f"/extended/v3/principals/{BOB}/balances/stx")
    await fake_chain_client.get(V3_FT_ONE)
    await fake_chain_client.get("/extended/v9/nothing")
    address, name = TOKEN.split(".")
    await fake_chain_client.post(
        f"/v2/contracts/call-read/{address}/{name}/get-decimals",
        json={"sender": ALICE, "arguments": []},
        headers={"x-api-key": "secret"},
    )
    assert fake_chain.requests == {
        STX_KEY: 2,
        "GET /extended/v3/principals/{principal}/balances/ft/{asset_identifier}": 1,
        "GET <unmatched>": 1,
        "POST /v2/contracts/call-read/{deployer_address}/{contract_name}/{function_name}": 1,
    }
    assert fake_chain.api_keys["secret"] == 1
    fake_chain.reset_requests()
    assert not fake_chain.requests


async def test_request_counter_counts_faulted_requests(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.faults.force_5xx = 1
    fake_chain.faults.force_429 = 1
    fake_chain.faults.deprecated = "gone"
    await fake_chain_client.get(V3_STX)
    await fake_chain_client.get(V3_STX)
    await fake_chain_client.get(DEPRECATED[0])
    assert fake_chain.requests[STX_KEY] == 2
    assert fake_chain.requests["GET /extended/v2/addresses/{principal}/balances/stx"] == 1
