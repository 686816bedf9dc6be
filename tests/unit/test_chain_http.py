"""StacksClient's HTTP behaviour on scripted answers: retries, limits, errors, ETags."""

from __future__ import annotations

import logging
import math

import httpx
import pytest
from test_chain_support import (
    BASE,
    HOLDER,
    FakeClock,
    ScriptedApi,
    json_answer,
    make_client,
    stx_body,
)

from balances.chain.client import HEADROOM
from balances.errors import (
    ChainError,
    ChainRejectedError,
    ChainUnavailableError,
    InvalidAddressError,
    MalformedResponseError,
    RateLimitedError,
)

STX_V3 = f"/extended/v3/principals/{HOLDER}/balances/stx"


async def test_sends_api_key_and_reads_the_balance() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, json_answer(stx_body("123456789012345678901234567890")))
    client = make_client(api, api_key="secret-key")
    assert await client.get_stx_balance(HOLDER) == 123456789012345678901234567890
    [call] = api.calls
    assert call.headers["x-api-key"] == "secret-key"
    assert str(call.url) == BASE + STX_V3


async def test_no_api_key_header_without_a_key() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, json_answer(stx_body()))
    await make_client(api).get_stx_balance(HOLDER)
    assert "x-api-key" not in api.calls[0].headers


@pytest.mark.parametrize(
    "bad", ["", "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ8", "not an address", "XP12"]
)
async def test_invalid_principals_fail_before_any_request(bad: str) -> None:
    api = ScriptedApi()
    client = make_client(api)
    with pytest.raises(InvalidAddressError):
        await client.get_stx_balance(bad)
    with pytest.raises(InvalidAddressError):
        await client.get_ft_balances(bad)
    assert api.calls == []


async def test_lenient_input_is_normalised_before_the_request() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, json_answer(stx_body("5")))
    assert await make_client(api).get_stx_balance(" " + HOLDER.lower().replace("s", "S", 1)) == 5


async def test_429_honours_retry_after_by_pausing_the_limiter() -> None:
    clock = FakeClock()
    api = ScriptedApi()
    limited = httpx.Response(429, headers={"retry-after": "7"}, json={"error": "Too Many Requests"})
    api.on("GET", STX_V3, limited, json_answer(stx_body("9")))
    client = make_client(api, clock)
    assert await client.get_stx_balance(HOLDER) == 9
    assert len(api.calls) == 2
    assert clock.now >= 7.0  # never sooner than the server asked
    assert client.limiter.reserve() == 0.0  # the pause is over for later requests


async def test_a_429_storm_fails_at_the_bound_with_the_hint() -> None:
    clock = FakeClock()
    api = ScriptedApi()
    api.on("GET", STX_V3, httpx.Response(429, headers={"retry-after": "2"}))
    client = make_client(api, clock, attempts=4)
    with pytest.raises(RateLimitedError) as caught:
        await client.get_stx_balance(HOLDER)
    assert caught.value.retry_after == 2.0
    assert len(api.calls) == 4
    assert clock.now >= 6.0  # three waits of at least 2 s


async def test_a_retry_after_too_long_to_wait_fails_at_once() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, httpx.Response(429, headers={"retry-after": "3600"}))
    with pytest.raises(RateLimitedError, match="3600") as caught:
        await make_client(api).get_stx_balance(HOLDER)
    assert caught.value.retry_after == 3600.0
    assert len(api.calls) == 1


async def test_5xx_is_retried_with_backoff_then_reported_unavailable() -> None:
    clock = FakeClock()
    api = ScriptedApi()
    api.on("GET", STX_V3, json_answer({"error": "The database service is unavailable"}, 503))
    with pytest.raises(ChainUnavailableError, match="database service is unavailable"):
        await make_client(api, clock, attempts=3).get_stx_balance(HOLDER)
    assert len(api.calls) == 3
    assert clock.sleeps == [0.1, 0.2]  # exponential (rng pinned to the top of the range)


async def test_5xx_then_success() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, httpx.Response(502, text="bad gateway"), json_answer(stx_body("4")))
    assert await make_client(api).get_stx_balance(HOLDER) == 4


async def test_503_retry_after_is_honoured() -> None:
    clock = FakeClock()
    api = ScriptedApi()
    busy = httpx.Response(503, headers={"retry-after": "3"}, text="busy")
    api.on("GET", STX_V3, busy, json_answer(stx_body("4")))
    assert await make_client(api, clock).get_stx_balance(HOLDER) == 4
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_transport_failures_become_unavailable_after_retries(failure: Exception) -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, failure)
    with pytest.raises(ChainUnavailableError) as caught:
        await make_client(api, attempts=2).get_stx_balance(HOLDER)
    assert len(api.calls) == 2
    assert "timed out" in str(caught.value) or "could not be reached" in str(caught.value)


async def test_a_timeout_then_success() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, httpx.ReadTimeout("slow"), json_answer(stx_body("8")))
    assert await make_client(api).get_stx_balance(HOLDER) == 8


async def test_other_4xx_is_a_rejected_request_with_the_api_message() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, json_answer({"error": "Bad Request", "message": "nope"}, 400))
    with pytest.raises(ChainRejectedError, match=r"400.*Bad Request: nope") as raised:
        await make_client(api).get_stx_balance(HOLDER)
    assert isinstance(raised.value, ChainError)  # still a chain failure to the service
    assert len(api.calls) == 1  # a client error is not retried


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(200, text="<html>oops</html>"), "not JSON"),
        (httpx.Response(200, content=b'{"balance": "1'), "not JSON"),
        (json_answer({"available": "1"}), "balance: Field required"),
        (json_answer({"balance": 100}), "decimal string"),
        (json_answer({"balance": "-100"}), "balance"),
        (json_answer({"balance": "12.5"}), "balance"),
        (json_answer({"balance": "lots"}), "balance"),
        (json_answer({"balance": str(2**128)}), "balance"),
        (json_answer(["balance", "1"]), "body"),
    ],
)
async def test_malformed_answers_raise_never_zero(answer: httpx.Response, problem: str) -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, answer)
    with pytest.raises(MalformedResponseError, match=problem):
        await make_client(api).get_stx_balance(HOLDER)
    assert len(api.calls) == 1


async def test_deprecation_warnings_are_logged_once_per_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = ScriptedApi()
    warning = '299 - "Deprecated: See https://docs.hiro.so/stacks/api for more information"'
    api.on("GET", STX_V3, json_answer(stx_body(), warning=warning))
    client = make_client(api)
    with caplog.at_level(logging.WARNING, logger="balances.chain"):
        for _ in range(3):
            await client.get_stx_balance(HOLDER)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "Deprecated" in messages[0]
    assert "balances/stx" in messages[0]


async def test_etag_reuses_the_cached_answer_on_304() -> None:
    api = ScriptedApi()
    api.on(
        "GET",
        STX_V3,
        json_answer(stx_body("77"), etag='"v1"'),
        httpx.Response(304),
    )
    client = make_client(api)
    assert await client.get_stx_balance(HOLDER) == 77
    assert await client.get_stx_balance(HOLDER) == 77
    assert "if-none-match" not in api.calls[0].headers
    assert api.calls[1].headers["if-none-match"] == '"v1"'


async def test_etag_cache_is_bounded() -> None:
    api = ScriptedApi()
    other = "SP3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZW9P3P0G"
    api.on("GET", STX_V3, json_answer(stx_body("1"), etag='"a"'))
    api.on(
        "GET", f"/extended/v3/principals/{other}/balances/stx", json_answer(stx_body(), etag='"b"')
    )
    client = make_client(api, etag_cache_size=1)
    await client.get_stx_balance(HOLDER)
    await client.get_stx_balance(other)  # evicts HOLDER's entry
    await client.get_stx_balance(HOLDER)
    assert "if-none-match" not in api.calls[2].headers


async def test_a_304_without_a_cached_answer_is_malformed() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, httpx.Response(304))
    with pytest.raises(MalformedResponseError, match="304"):
        await make_client(api).get_stx_balance(HOLDER)


async def test_the_limiter_paces_real_requests() -> None:
    clock = FakeClock()
    api = ScriptedApi()
    api.on("GET", STX_V3, json_answer(stx_body()))
    client = make_client(api, clock, requests_per_minute=30)  # one every 2 s, less headroom
    for _ in range(4):
        await client.get_stx_balance(HOLDER)
    assert clock.now == pytest.approx(6.0 / (1 - HEADROOM))
    assert client.limiter.acquired == 4


async def test_default_rate_limit_is_unlimited_off_hiros_hosts() -> None:
    """BASE is not a Hiro host: no pacing unless configured (Hiro's own limits are
    tested in test_rate_limit_defaults)."""
    api = ScriptedApi()
    assert make_client(api, requests_per_minute=None).limiter.requests_per_minute == math.inf
    keyed = make_client(api, requests_per_minute=None, api_key="k")
    assert keyed.limiter.requests_per_minute == math.inf
