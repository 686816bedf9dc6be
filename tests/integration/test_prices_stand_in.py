"""HttpPriceSource against the stand-in's price routes, served on loopback.

The price routes are our own extension of the stand-in, not part of the Hiro API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from balances.prices import HttpPriceSource, PricePoint, PriceSourceError
from balances.testing import FakeChain, FakeChainError, FakeChainServer, demo_chain
from balances.testing.fake_chain import DEFAULT_START_TIME
from balances.testing.fake_chain.demo import AEUSDC, CHARISMA, CHARISMA_SUBNET, DEMO_END

CHA = CHARISMA
START = datetime.fromtimestamp(DEFAULT_START_TIME, UTC)
CURRENT = "GET /prices/{token_id}"
HISTORY = "GET /prices/{token_id}/history"


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def prices(fake_chain_server: FakeChainServer) -> AsyncIterator[HttpPriceSource]:
    async with httpx.AsyncClient(base_url=fake_chain_server.url, timeout=10.0) as http:
        yield HttpPriceSource(
            http,
            "/prices/{token_id}",
            history_url_template="/prices/{token_id}/history",
            retries=2,
            sleep=_no_sleep,
        )


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain()
    chain.set_price("stx", "1.50", at=DEFAULT_START_TIME - 3600)
    chain.set_price(CHA, Decimal("0.0100"), at=DEFAULT_START_TIME - 7200)
    chain.advance_time(3600)
    chain.set_price(CHA, "0.0125")  # at the tip
    chain.set_price(CHA, "0.0200", at=chain.tip_time + 3600)  # in the future: not current yet
    return chain


async def test_current_prices(fake_chain: FakeChain, prices: HttpPriceSource) -> None:
    found = await prices.get_prices(["stx", CHA, f"{CHA}::charisma"])
    tip = datetime.fromtimestamp(fake_chain.tip_time, UTC)
    assert found["stx"] == PricePoint(START - timedelta(hours=1), Decimal("1.50"))
    assert found[CHA] == PricePoint(tip, Decimal("0.0125"))
    assert found[f"{CHA}::charisma"] == found[CHA]  # an asset identifier prices as its contract
    fake_chain.advance_time(3600)
    assert (await prices.get_prices([CHA]))[CHA].usd == Decimal("0.0200")


async def test_unknown_tokens_are_absent(fake_chain: FakeChain, prices: HttpPriceSource) -> None:
    found = await prices.get_prices(["stx", CHARISMA_SUBNET])
    assert set(found) == {"stx"}
    assert await prices.get_price_history(CHARISMA_SUBNET, START, START + timedelta(1)) == []
    assert fake_chain.requests[CURRENT] == 2
    assert fake_chain.requests[HISTORY] == 1


async def test_history_window(fake_chain: FakeChain, prices: HttpPriceSource) -> None:
    everything = await prices.get_price_history(
        CHA, START - timedelta(days=1), START + timedelta(1)
    )
    assert [p.usd for p in everything] == [Decimal("0.0100"), Decimal("0.0125"), Decimal("0.0200")]
    inside = await prices.get_price_history(CHA, START, START + timedelta(hours=1))
    assert inside == [PricePoint(START + timedelta(hours=1), Decimal("0.0125"))]
    assert await prices.get_price_history("stx", START, START + timedelta(hours=1)) == []


async def test_5xx_faults_are_retried_a_bounded_number_of_times(
    fake_chain: FakeChain, prices: HttpPriceSource
) -> None:
    fake_chain.faults.force_5xx = 2
    assert (await prices.get_prices(["stx"]))["stx"].usd == Decimal("1.50")
    assert fake_chain.requests[CURRENT] == 3
    fake_chain.faults.error_rate = 1.0
    with pytest.raises(PriceSourceError, match="after 3 attempt"):
        await prices.get_prices(["stx"])
    assert fake_chain.requests[CURRENT] == 6


async def test_malformed_answers_are_refused(
    fake_chain: FakeChain, prices: HttpPriceSource
) -> None:
    fake_chain.faults.malformed_kind = "missing_field"
    fake_chain.faults.force_malformed = 1
    with pytest.raises(PriceSourceError, match="no 'usd'"):
        await prices.get_prices(["stx"])
    fake_chain.faults.malformed_kind = "html"
    fake_chain.faults.force_malformed = 1
    with pytest.raises(PriceSourceError, match="not JSON"):
        await prices.get_prices(["stx"])


async def test_route_errors(fake_chain_client: httpx.AsyncClient) -> None:
    missing = await fake_chain_client.get(f"/prices/{CHARISMA_SUBNET}")
    assert missing.status_code == 404
    assert "error" in missing.json()
    assert (await fake_chain_client.get("/prices/not-a-token")).status_code == 400
    bad = await fake_chain_client.get("/prices/stx/history", params={"from": "soon"})
    assert bad.status_code == 400
    backwards = await fake_chain_client.get("/prices/stx/history", params={"from": 9, "to": 1})
    assert backwards.status_code == 400


def test_the_ledger_checks_its_input() -> None:
    chain = FakeChain()
    for bad in ("-1", "abc", "Infinity", 1.5):
        with pytest.raises(FakeChainError):
            chain.set_price("stx", bad)  # type: ignore[arg-type]
    with pytest.raises(FakeChainError):
        chain.set_price("stx", "1", at=-1)
    with pytest.raises(FakeChainError):
        chain.set_price("not a token", "1")
    chain.set_price("STX", "1", at=5)
    chain.set_price("stx", "2", at=5)  # same moment: replaces
    assert [(t.at, t.usd) for t in chain.prices.history("stx", 0, 10)] == [(5, Decimal(2))]


def test_the_demo_chain_has_prices() -> None:
    chain = demo_chain(days=10)
    assert len(chain.prices.tokens) == 6
    for token in chain.prices.tokens:
        assert chain.prices.current(token) is not None
    start = DEMO_END - 10 * 86_400
    assert len(chain.prices.history(CHA, start, chain.tip_time)) >= 10 * 24
    assert chain.prices.history(CHARISMA_SUBNET, 0, DEMO_END) == chain.prices.history(
        CHA, 0, DEMO_END
    )
    usdc = [tick.usd for tick in chain.prices.history(AEUSDC, 0, DEMO_END)]
    assert all(Decimal("0.97") < usd < Decimal("1.03") for usd in usdc)
