"""Price sources: PricePoint rules, HttpPriceSource on scripted answers, StaticPriceSource."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from balances.errors import BalancesError, ConfigError, InvalidPeriodError, ValidationError
from balances.prices import (
    HttpPriceSource,
    PricePoint,
    PriceSource,
    PriceSourceError,
    StaticPriceSource,
)

CHA = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
AT = int(T0.timestamp())
Handler = Callable[[httpx.Request], httpx.Response]


def answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


class Script:
    """Answers requests in order (the last answer repeats) and records them."""

    def __init__(self, *answers: httpx.Response | Handler) -> None:
        self.answers = list(answers)
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        reply = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return reply(request) if callable(reply) else reply


def source(script: Script, **options: Any) -> tuple[HttpPriceSource, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url="http://prices")
    options.setdefault("history_url_template", "/prices/{token_id}/history")
    made = HttpPriceSource(http, "/prices/{token_id}", sleep=sleep, rng=lambda: 0.5, **options)
    return made, slept


def test_price_points_are_decimal_utc_and_not_negative() -> None:
    point = PricePoint(datetime(2024, 3, 1), Decimal("1.5"))  # naive means UTC
    assert point.at.tzinfo is UTC
    with pytest.raises(ValidationError, match="Decimal"):
        PricePoint(T0, 1.5)  # type: ignore[arg-type]
    for bad in ("-0.01", "NaN", "Infinity"):
        with pytest.raises(ValidationError, match="finite and >= 0"):
            PricePoint(T0, Decimal(bad))
    assert isinstance(PriceSourceError("x"), BalancesError)


async def test_reads_current_prices_and_encodes_token_ids() -> None:
    def price(request: httpx.Request) -> httpx.Response:
        token = request.url.path.removeprefix("/prices/")
        return answer({"token_id": token.replace("%3A", ":"), "usd": "0.0123", "at": AT})

    script = Script(price)
    prices, _ = source(script)
    found = await prices.get_prices(["stx", CHA, f"{CHA}::charisma", "stx"])
    assert found["stx"] == PricePoint(T0, Decimal("0.0123"))
    assert set(found) == {"stx", CHA, f"{CHA}::charisma"}
    assert isinstance(found[CHA].usd, Decimal)
    raw_paths = sorted(call.url.raw_path.decode() for call in script.calls)
    assert f"/prices/{CHA}%3A%3Acharisma" in raw_paths
    assert len(raw_paths) == 3  # duplicates are asked once
    assert isinstance(prices, PriceSource)


async def test_404_means_no_price_not_zero() -> None:
    prices, slept = source(Script(answer({"error": "Not Found"}, 404)))
    assert await prices.get_prices(["stx", CHA]) == {}
    assert await prices.get_price_history("stx", T0, T0 + timedelta(days=1)) == []
    assert slept == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token_id": "stx", "at": AT}, "no 'usd'"),
        ({"token_id": "stx", "usd": "1.0"}, "no 'at'"),
        ({"usd": "-1.5", "at": AT}, "negative"),
        ({"usd": "abc", "at": AT}, "not a plain decimal"),
        ({"usd": "1e400", "at": AT}, "not a plain decimal"),
        ({"usd": "NaN", "at": AT}, "not a plain decimal"),
        ({"usd": "Infinity", "at": AT}, "not a plain decimal"),
        ({"usd": 1.25, "at": AT}, "decimal string"),
        ({"usd": None, "at": AT}, "decimal string"),
        ({"usd": "1.0", "at": "yesterday"}, "unix seconds"),
        ({"usd": "1.0", "at": True}, "unix seconds"),
        ({"usd": "1.0", "at": -5}, "not a valid time"),
        ({"usd": "1.0", "at": 10**15}, "out of range"),
        ({"token_id": "SP1.other", "usd": "1.0", "at": AT}, "answered for token"),
        (["1.0"], "JSON object"),
    ],
)
async def test_malformed_bodies_are_refused_clearly(body: Any, message: str) -> None:
    prices, slept = source(Script(answer(body)))
    with pytest.raises(PriceSourceError, match=message):
        await prices.get_prices(["stx"])
    assert slept == []  # a broken answer is not a busy server


async def test_a_body_that_is_not_json_is_refused() -> None:
    prices, _ = source(Script(httpx.Response(200, content=b"<html>502</html>")))
    with pytest.raises(PriceSourceError, match="not JSON"):
        await prices.get_prices(["stx"])


async def test_5xx_and_429_are_retried_then_succeed() -> None:
    script = Script(
        answer({"error": "busy"}, 503),
        answer({"error": "slow down"}, 429, **{"retry-after": "2"}),
        answer({"usd": "2.5", "at": AT}),
    )
    prices, slept = source(script)
    assert (await prices.get_prices(["stx"]))["stx"].usd == Decimal("2.5")
    assert len(script.calls) == 3
    assert slept[0] == pytest.approx(0.1)  # full jitter: 0.2 * 0.5
    assert slept[1] == 2.0  # retry-after is a floor


async def test_retries_are_bounded_then_raise() -> None:
    script = Script(answer({"error": "The database service is unavailable"}, 503))
    prices, slept = source(script, retries=2)
    with pytest.raises(PriceSourceError, match=r"503.*database.*after 3 attempt"):
        await prices.get_prices(["stx"])
    assert len(script.calls) == 3
    assert len(slept) == 2


async def test_a_long_retry_after_fails_at_once() -> None:
    script = Script(answer({"error": "Too Many Requests"}, 429, **{"retry-after": "600"}))
    prices, slept = source(script)
    with pytest.raises(PriceSourceError, match="429"):
        await prices.get_prices(["stx"])
    assert (len(script.calls), slept) == (1, [])


async def test_connection_failures_are_retried() -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return answer({"usd": "1", "at": AT})

    prices, slept = source(Script(flaky))
    assert (await prices.get_prices(["stx"]))["stx"].usd == Decimal(1)
    assert len(slept) == 2


async def test_other_client_errors_are_not_retried() -> None:
    script = Script(answer({"error": "Bad Request", "message": "no such thing"}, 400))
    prices, slept = source(script)
    with pytest.raises(PriceSourceError, match=r"refused \(400\): Bad Request: no such thing"):
        await prices.get_prices(["stx"])
    assert (len(script.calls), slept) == (1, [])


async def test_one_failing_token_fails_the_batch_with_a_count() -> None:
    def mixed(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("stx"):
            return answer({"usd": "1", "at": AT})
        return answer({"error": "bad"}, 400)

    prices, _ = source(Script(mixed))
    with pytest.raises(PriceSourceError, match="1 of 2 price reads failed"):
        await prices.get_prices(["stx", CHA])


async def test_concurrency_is_bounded() -> None:
    active = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        active -= 1
        return answer({"usd": "1", "at": AT})

    class SlowTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await slow(request)

    http = httpx.AsyncClient(transport=SlowTransport(), base_url="http://prices")
    prices = HttpPriceSource(http, "/prices/{token_id}", concurrency=3)
    found = await prices.get_prices([f"{CHA}{i}" for i in range(10)])
    assert len(found) == 10
    assert peak == 3


async def test_history_sends_the_window_and_keeps_points_inside_it() -> None:
    rows = [
        {"at": AT + 7200, "usd": "1.2"},
        {"at": AT, "usd": "1.0"},
        {"at": AT + 3600, "usd": "1.1"},
        {"at": AT + 99999, "usd": "9"},  # outside the window: dropped
    ]
    script = Script(answer({"token_id": "stx", "prices": rows}))
    prices, _ = source(script)
    end = T0 + timedelta(hours=2, minutes=30)
    points = await prices.get_price_history("stx", T0, end)
    assert [p.usd for p in points] == [Decimal("1.0"), Decimal("1.1"), Decimal("1.2")]
    query = dict(script.calls[0].url.params)
    assert query == {"from": str(AT), "to": str(int(end.timestamp()))}
    with pytest.raises(InvalidPeriodError):
        await prices.get_price_history("stx", end, T0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token_id": "stx"}, "'prices' must be a list"),
        ({"prices": ["1.0"]}, r"prices\[0\] must be an object"),
        ({"prices": [{"at": AT, "usd": "1e5"}]}, r"prices\[0\].*not a plain decimal"),
    ],
)
async def test_malformed_history_is_refused(body: Any, message: str) -> None:
    prices, _ = source(Script(answer(body)))
    with pytest.raises(PriceSourceError, match=message):
        await prices.get_price_history("stx", T0, T0 + timedelta(days=1))


async def test_no_history_template_means_no_history() -> None:
    script = Script(answer({"usd": "1", "at": AT}))
    prices, _ = source(script, history_url_template=None)
    assert await prices.get_price_history("stx", T0, T0 + timedelta(days=1)) == []
    assert script.calls == []


def test_templates_and_options_are_checked() -> None:
    http = httpx.AsyncClient()
    with pytest.raises(ConfigError, match="token_id"):
        HttpPriceSource(http, "/prices")
    with pytest.raises(ConfigError, match="token_id"):
        HttpPriceSource(http, "/prices/{token_id}", history_url_template="/history")
    with pytest.raises(ConfigError):
        HttpPriceSource(http, "/prices/{token_id}", retries=-1)


async def test_static_source_serves_constants_and_series() -> None:
    series = [
        PricePoint(T0 + timedelta(days=2), Decimal("3")),
        PricePoint(T0, Decimal("1")),
        PricePoint(T0 + timedelta(days=1), Decimal("2")),
    ]
    now = T0 + timedelta(days=1, hours=5)
    prices = StaticPriceSource({"stx": Decimal("1.5"), CHA: series}, now=lambda: now)
    assert isinstance(prices, PriceSource)
    found = await prices.get_prices(["stx", CHA, "SP1.unknown"])
    assert found == {"stx": PricePoint(now, Decimal("1.5")), CHA: series[2]}
    history = await prices.get_price_history(CHA, T0, T0 + timedelta(days=1))
    assert [p.usd for p in history] == [Decimal("1"), Decimal("2")]
    assert await prices.get_price_history("stx", T0, now) == [PricePoint(T0, Decimal("1.5"))]
    assert await prices.get_price_history("SP1.unknown", T0, now) == []
    early = StaticPriceSource({CHA: series}, now=lambda: T0 - timedelta(days=1))
    assert await early.get_prices([CHA]) == {}
    with pytest.raises(ValidationError):
        StaticPriceSource({"stx": Decimal("-1")})
