"""The web dashboard at ``/``, in process (``httpx.ASGITransport``, no browser).

The page is read as HTML: balances against the REST API's own answers, charts by
their ``data-points``/``data-buckets`` and ``class="point"`` circles, against the
portfolio route of the same app. ``tests/integration/test_dashboard_browser.py``
renders it in chromium.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import pytest_asyncio
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, Kit, config

from balances.prices import StaticPriceSource
from balances.service.balances import BalanceService

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
BAD_CHECKSUM = HOLDER[:-1] + ("8" if HOLDER[-1] != "8" else "9")
STX_PRICE = Decimal("2.5")
#: The in-process client's base URL (tests/api/conftest.py): the app's own origin.
BASE_URL = "http://balances.test"

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Charts(HTMLParser):
    """Every ``<svg class="chart">``: its attributes and how many ``point`` circles it has."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, Any]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg" and "chart" in (found.get("class") or "").split():
            self.charts.append({**found, "circles": 0})
            self._inside = True
        elif self._inside and tag == "circle" and found.get("class") == "point":
            self.charts[-1]["circles"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._inside = False


def charts(html: str) -> list[dict[str, Any]]:
    parser = Charts()
    parser.feed(html)
    return parser.charts


def assert_html(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "Traceback" not in response.text
    return response.text


async def priced_service(kit: Kit, api_key: str) -> BalanceService:
    """A service on the kit with a constant STX price and three more days of history:
    STX grows by 1, 2 and 3 STX a day; the other tokens have no price."""

    def now() -> datetime:
        return datetime.fromtimestamp(kit.clocks.wall(), UTC)

    service = BalanceService(
        config(map_tokens=[MAP_TOKEN], api={"key": api_key}),
        blobs=kit.store,
        chain=kit.client,
        clock=kit.clocks.mono,
        wall_clock=kit.clocks.wall,
        price_source=StaticPriceSource({"stx": STX_PRICE}, now=now),
    )
    kit.services.append(service)
    await service.get_all_balances(HOLDER)
    for day in (1, 2, 3):
        kit.clocks.advance(mono=100_000, wall=86_400)
        kit.chain.mint("stx", HOLDER, 1_000_000 * day)
        await service.refresh_address_balances(HOLDER)
    await service.backfill_prices(["stx"], days=30)
    return service


@pytest_asyncio.fixture(loop_scope="module")
async def priced(kit: Kit, make_client: ClientFactory, api_key: str) -> httpx.AsyncClient:
    return await make_client(await priced_service(kit, api_key))


# --- the form ------------------------------------------------------------------------------


async def test_without_an_address_the_page_is_the_form(api: httpx.AsyncClient) -> None:
    html = assert_html(await api.get("/"), 200)
    assert '<form class="lookup" method="get" action="/">' in html
    assert 'name="address"' in html
    assert 'name="period"' in html
    assert 'name="granularity"' in html
    assert charts(html) == []
    assert "Current balances" not in html
    assert "<script" not in html


async def test_the_form_lists_tracked_addresses(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    await api.put(f"/tracked/{HOLDER}", json={"tokens": []}, headers=key)
    html = assert_html(await api.get("/"), 200)
    assert f'href="/?address={HOLDER}"' in html


# --- balances ------------------------------------------------------------------------------


async def test_every_balance_is_shown_with_its_amount_and_freshness(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    assert_html(await api.get("/", params={"address": HOLDER}), 200)
    await kit.metadata_settled()  # the first page did not wait on token metadata
    html = assert_html(await api.get("/", params={"address": HOLDER}), 200)
    balances = (await api.get(f"/balances/{HOLDER}")).json()["balances"]
    assert len(balances) >= 4
    assert html.count('<tr class="balance') == len(balances)
    for item in balances:
        amount = f"{Decimal(item['display_balance']):,f}"
        row = _row(html, item["token_id"])
        assert f">{item['symbol']}<" in row
        assert f'<td class="num amount">{amount}</td>' in row
        assert f">{item['block_height']}<" in row
        assert "ago" in row or "just now" in row
        assert "badge stale" not in row
    assert "Some balances are stale" not in html


def _row(html: str, token_id: str) -> str:
    """The table row of ``token_id``."""
    found = re.search(
        rf'<tr class="balance[^"]*" data-token="{re.escape(token_id)}"[^>]*>.*?</tr>', html, re.S
    )
    assert found, f"no row for {token_id}"
    return found.group(0)


async def test_a_stale_balance_has_a_visible_badge_with_the_error(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    assert_html(await api.get("/", params={"address": HOLDER}), 200)  # read and stored
    await kit.metadata_settled()
    kit.chain.faults.error_rate = 1.0
    kit.clocks.advance(mono=10_000, wall=10_000)  # past the cache TTL and stale_after

    html = assert_html(await api.get("/", params={"address": HOLDER}), 200)
    row = _row(html, NATIVE)
    assert '<span class="badge stale"' in row
    assert ">750<" not in row  # the amount is shown in display units: 0.00000750
    assert '<td class="num amount">0.00000750</td>' in row
    error = (await api.get(f"/balances/{HOLDER}/{NATIVE}")).json()["error"]
    assert error
    assert f'<span class="stale-error">{_escaped(error)}</span>' in row
    assert "Some balances are stale" in html


def _escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


async def test_usd_values_where_a_price_is_known(priced: httpx.AsyncClient) -> None:
    html = assert_html(await priced.get("/", params={"address": HOLDER}), 200)
    stx = (await priced.get(f"/balances/{HOLDER}/stx")).json()
    value = (Decimal(stx["display_balance"]) * STX_PRICE).quantize(Decimal("0.01"))
    row = _row(html, "stx")
    assert f'<td class="num usd">${value:,f}</td>' in row
    assert "$2.5<" in row
    assert f'<dd class="total">${value:,f}</dd>' in html, "only STX has a price"
    native = _row(html, NATIVE)
    assert '<td class="num usd">—</td>' in native
    assert "No price known for:" in html
    assert "CHA" in html.split("No price known for:")[1].split("</p>")[0]
    assert html.index('data-token="stx"') < html.index(f'data-token="{NATIVE}"'), (
        "rows are ordered by value"
    )


# --- charts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "granularity", "buckets"),
    [("7d", "day", 8), ("24h", "hour", 25), ("30d", "day", 31), ("30d", "week", 5)],
)
async def test_charts_have_a_point_per_bucket_with_a_value(
    priced: httpx.AsyncClient, period: str, granularity: str, buckets: int
) -> None:
    query = {"address": HOLDER, "period": period, "granularity": granularity}
    html = assert_html(await priced.get("/", params=query), 200)
    portfolio = (await priced.get(f"/balances/{HOLDER}/portfolio", params=query)).json()
    assert len(portfolio["buckets"]) == buckets
    found = charts(html)
    [total] = [c for c in found if c["data-chart"] == "portfolio"]
    valued = sum(b["total_usd"] is not None for b in portfolio["buckets"])
    assert valued >= 1
    assert int(total["data-buckets"]) == buckets
    assert int(total["data-points"]) == valued == total["circles"]

    tokens = {c["data-token"]: c for c in found if c["data-chart"] == "token"}
    held = (await priced.get(f"/balances/{HOLDER}")).json()["balances"]
    assert set(tokens) == {item["token_id"] for item in held}
    for token_id, chart in tokens.items():
        known = sum(b["balances"][token_id] is not None for b in portfolio["buckets"])
        assert int(chart["data-buckets"]) == buckets
        assert int(chart["data-points"]) == known == chart["circles"] >= 1


async def test_auto_granularity_says_what_it_chose(priced: httpx.AsyncClient) -> None:
    query = {"address": HOLDER, "period": "7d", "granularity": "auto"}
    html = assert_html(await priced.get("/", params=query), 200)
    [total] = [c for c in charts(html) if c["data-chart"] == "portfolio"]
    assert int(total["data-buckets"]) == 7 * 24 + 1
    assert "169 × hour" in html


async def test_charts_have_date_and_amount_labels(priced: httpx.AsyncClient) -> None:
    query = {"address": HOLDER, "period": "7d", "granularity": "day"}
    html = assert_html(await priced.get("/", params=query), 200)
    portfolio = html.split('data-chart="portfolio"')[1].split("</svg>")[0]
    assert re.search(r'class="tick x"[^>]*>\d\d (Dec|Jan)<', portfolio)
    assert re.search(r'class="tick y"[^>]*>\$[\d.,]+K?<', portfolio)


async def test_period_and_granularity_switches_are_links(api: httpx.AsyncClient) -> None:
    query = {"address": HOLDER, "period": "7d", "granularity": "hour"}
    html = assert_html(await api.get("/", params=query), 200)
    for period in ("24h", "7d", "30d"):
        assert f'href="/?address={HOLDER}&amp;period={period}&amp;granularity=hour"' in html
    for granularity in ("auto", "hour", "day", "week"):
        assert f'href="/?address={HOLDER}&amp;period=7d&amp;granularity={granularity}"' in html
    assert re.search(r'class="switch active" aria-current="page"[^>]*>7d<', html)
    assert re.search(r'class="switch active" aria-current="page"[^>]*>hour<', html)
    for too_fine in ("90d", "1y"):  # thousands of hourly buckets: not offered
        assert f'<span class="switch disabled" title="too many buckets to draw">{too_fine}<' in html


async def test_too_many_buckets_is_a_friendly_400(api: httpx.AsyncClient) -> None:
    query = {"address": HOLDER, "period": "1y", "granularity": "hour"}
    html = assert_html(await api.get("/", params=query), 400)
    assert "too many to draw" in html
    assert charts(html) == []


# --- errors and escaping ----------------------------------------------------------------------


async def test_a_bad_address_is_a_400_page_with_the_reason(api: httpx.AsyncClient) -> None:
    html = assert_html(await api.get("/", params={"address": BAD_CHECKSUM}), 400)
    assert 'role="alert"' in html
    assert "checksum" in html
    assert BAD_CHECKSUM in html
    assert f'value="{BAD_CHECKSUM}"' in html, "the form keeps what was typed"
    assert charts(html) == []


@pytest.mark.parametrize(
    ("field", "value", "mentions"),
    [("period", "2w", "unknown period"), ("granularity", "minute", "unknown granularity")],
)
async def test_a_bad_period_or_granularity_is_a_400_page(
    api: httpx.AsyncClient, field: str, value: str, mentions: str
) -> None:
    html = assert_html(await api.get("/", params={"address": HOLDER, field: value}), 400)
    assert mentions in html


async def test_user_input_is_escaped(api: httpx.AsyncClient) -> None:
    hostile = '"><script>alert(1)</script>'
    query = {"address": hostile, "period": hostile, "granularity": hostile}
    html = assert_html(await api.get("/", params=query), 400)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'value="&#34;&gt;&lt;script&gt;' in html


async def test_an_unexpected_failure_is_a_500_page_without_internals(
    kit: Kit, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = kit.service(config(map_tokens=[MAP_TOKEN]))

    async def broken(address: str) -> list[Any]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "get_all_balances", broken)
    client = await make_client(service)
    html = assert_html(await client.get("/", params={"address": HOLDER}), 500)
    assert "an unexpected error occurred" in html
    assert "secret internal detail" not in html
    assert "RuntimeError" not in html


# --- live rows -------------------------------------------------------------------------------


async def test_rows_follow_the_address_stream(priced: httpx.AsyncClient) -> None:
    """The table names its stream and carries what live.js needs to show a change
    exactly: the decimals and the price of each row (the browser test runs it)."""
    html = assert_html(await priced.get("/", params={"address": HOLDER}), 200)
    stream = f"/stream/balances?addresses={HOLDER}"
    assert f'<section class="balances" data-stream="{stream}">' in html
    assert '<span class="live-status" data-state="off" role="status">' in html
    stx = (await priced.get(f"/balances/{HOLDER}/stx")).json()
    row = _row(html, "stx")
    assert f'data-decimals="{stx["decimals"]}" data-price="{STX_PRICE}"' in row
    native = _row(html, NATIVE)
    assert 'data-price=""' in native  # no price: live.js marks its value outdated
    script = await priced.get("/static/live.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "new EventSource(section.dataset.stream)" in script.text


async def test_without_a_change_feed_the_page_has_no_script(
    kit: Kit, make_client: ClientFactory
) -> None:
    client = await make_client(kit.service(config(feed={"enabled": False})))
    html = assert_html(await client.get("/", params={"address": HOLDER}), 200)
    assert "Current balances" in html
    assert "<script" not in html
    assert "data-stream" not in html


# --- offline -----------------------------------------------------------------------------------


async def test_the_stylesheet_is_served_by_the_app(api: httpx.AsyncClient) -> None:
    html = assert_html(await api.get("/"), 200)
    assert '<link rel="stylesheet" href="/static/dashboard.css">' in html
    response = await api.get("/static/dashboard.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "svg.chart" in response.text
    assert "@import" not in response.text
    assert "url(" not in response.text


async def test_the_page_needs_nothing_from_elsewhere(priced: httpx.AsyncClient) -> None:
    html = assert_html(await priced.get("/", params={"address": HOLDER}), 200)
    css = (await priced.get("/static/dashboard.css")).text
    script = (await priced.get("/static/live.js")).text
    for text in (html, css, script):
        external = [
            u for u in re.findall(r"https?://[^\s\"'<>)]+", text) if not u.startswith(BASE_URL)
        ]
        assert external == []
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/live.js" defer>']
    assert "//" not in re.sub(
        r"https?://", "", " ".join(re.findall(r'(?:href|src)="([^"]*)"', html))
    )
