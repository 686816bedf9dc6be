"""Prometheus ``GET /metrics`` on the Stacks API stand-in.

Request latency is a histogram labelled with the route template (never a raw
address), for the fast path and the full route alike; cache, chain-request, blob
and cost figures are read from the service at scrape time and must equal what the
service reports itself; scheduler runs appear when a scheduler is attached.

Counter families exported through a custom collector (``CounterMetricFamily("x")``)
are exposed by prometheus_client as ``x_total``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, Kit, config

from balances.api import create_app
from balances.chain.routes import FT_LIST_V3, STX_ROUTES
from balances.config import BalanceServiceConfig
from balances.service.balances import BalanceService

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
LATENCY = "balances_http_request_duration_seconds"
ONE_BALANCE = "/balances/{address}/{tokenId}"

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: As in conftest.py (the ``api`` fixture's key and base URL).
API_KEY = "test-api-key"
BASE_URL = "http://balances.test"


def api_config(**fields: Any) -> BalanceServiceConfig:
    """The tests' mainnet config: memory store, the seeded map token read for all."""
    return config(map_tokens=[MAP_TOKEN], **fields)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _with(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name`` whose labels include ``labels``."""
    return {
        key: value
        for (found, key), value in samples.items()
        if found == name and set(labels.items()) <= set(key)
    }


async def _client(kit: Kit, make_client: ClientFactory) -> tuple[BalanceService, httpx.AsyncClient]:
    service = kit.service(api_config(api={"key": API_KEY}))
    return service, await make_client(service)


async def test_latency_is_labelled_with_the_route_template(
    kit: Kit, make_client: ClientFactory
) -> None:
    _, client = await _client(kit, make_client)
    full = await client.get(f"/balances/{HOLDER}/stx")  # a miss: the full route
    assert full.json()["source"] == "chain"
    fast = await client.get(f"/balances/{HOLDER}/stx")  # cached: the fast path
    assert fast.json()["source"] == "cache"
    await client.get(f"/balances/{OTHER}/{NATIVE}")
    text, samples = await _scrape(client)
    assert HOLDER not in text, "no raw address in any label"
    assert OTHER not in text

    labels = {
        dict(key)["route"]
        for key in _with(samples, f"{LATENCY}_count", method="GET")
        if dict(key)["route"].startswith("/balances/")
    }
    assert labels == {ONE_BALANCE}, "the full route and the fast path share one template"
    counts = _with(samples, f"{LATENCY}_count", route=ONE_BALANCE)
    assert counts == {
        (("method", "GET"), ("route", ONE_BALANCE), ("status", "200")): 3.0,
    }, "the full route and the fast path share one label set"
    buckets = _with(samples, f"{LATENCY}_bucket", route=ONE_BALANCE, status="200")
    assert buckets
    assert max(buckets.values()) == 3.0  # the +Inf bucket holds every request
    assert (
        _value(
            samples, f"{LATENCY}_bucket", method="GET", route=ONE_BALANCE, status="200", le="+Inf"
        )
        == 3.0
    )


async def test_every_route_label_is_a_template(kit: Kit, make_client: ClientFactory) -> None:
    _, client = await _client(kit, make_client)
    await client.get(f"/balances/{HOLDER}")
    await client.get(f"/balances/{HOLDER}/history/stx", params={"period": "24h"})
    await client.post("/balances/bulk/current", json={"addresses": [HOLDER]})
    await client.get("/balances/not-an-address/stx")
    await client.get("/no/such/route")
    _, samples = await _scrape(client)
    routes = {
        dict(labels)["route"]: dict(labels)["status"]
        for labels in _with(samples, f"{LATENCY}_count")
        if dict(labels)["route"] != "/metrics"
    }
    assert routes == {
        "/balances/{address}": "200",
        "/balances/{address}/history/{tokenId}": "200",
        "/balances/bulk/current": "200",
        ONE_BALANCE: "400",
        "unmatched": "404",
    }


async def test_cache_chain_and_blob_figures_equal_the_services(
    kit: Kit, make_client: ClientFactory
) -> None:
    service, client = await _client(kit, make_client)
    for _ in range(3):
        await client.get(f"/balances/{HOLDER}/stx")
    await client.get(f"/balances/{OTHER}/stx")
    _, samples = await _scrape(client)
    stats = service.cache.stats()
    assert stats.hits >= 2
    assert _value(samples, "balances_cache_hits_total") == stats.hits
    assert _value(samples, "balances_cache_misses_total") == stats.misses
    assert _value(samples, "balances_cache_evictions_total") == stats.evictions
    assert _value(samples, "balances_cache_entries") == stats.entries == 2
    assert _value(samples, "balances_cache_bytes") == stats.bytes > 0

    counts = service.chain.request_counts  # type: ignore[attr-defined]
    assert counts
    for (route, status), count in counts.items():
        assert _value(samples, "balances_chain_requests_total", route=route, status=status) == count
    stx_route = next(route for route in STX_ROUTES if (route, "200") in counts)
    assert _value(samples, "balances_chain_requests_total", route=stx_route, status="200") == 2
    assert _value(samples, "balances_chain_requests_total", route=FT_LIST_V3, status="200") == 2

    meter = service.blobs.snapshot()
    for operation, count in meter.operations.items():
        assert _value(samples, "balances_blob_operations_total", operation=operation) == count
    assert _value(samples, "balances_blob_operations_total", operation="put") > 0
    assert _value(samples, "balances_blob_bytes_uploaded_total") == meter.bytes_uploaded
    assert _value(samples, "balances_blob_bytes_downloaded_total") == meter.bytes_downloaded
    assert _value(samples, "balances_blob_bytes_stored") == meter.bytes_stored

    cost = service.cache_report()["estimated_cost"]
    for category in ("storage", "simple_operations", "advanced_operations", "transfer"):
        found = _value(samples, "balances_blob_cost_dollars", category=category)
        assert found == pytest.approx(cost[category]), category
    assert _value(samples, "balances_blob_cost_dollars", category="advanced_operations") > 0


class FakeScheduler:
    def __init__(self, tasks: dict[str, dict[str, Any]]) -> None:
        self.tasks = tasks

    def get_status(self) -> dict[str, Any]:
        return {"owner_id": "replica-1", "leader": True, "tasks": self.tasks}


async def test_scheduler_runs_appear_when_a_scheduler_is_attached(kit: Kit) -> None:
    service = kit.service(api_config(api={"key": API_KEY}))
    app = create_app(service=service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        text, _ = await _scrape(client)
        assert "balances_scheduler_runs" not in text

        app.state.scheduler = FakeScheduler(
            {
                "sync": {"runs": 5, "failures": 2},
                "prices": {"runs": 1, "failures": 0},
                "compact": {"enabled": False},
            }
        )
        _, samples = await _scrape(client)
        runs = "balances_scheduler_runs_total"
        assert _value(samples, runs, task="sync", outcome="ok") == 3
        assert _value(samples, runs, task="sync", outcome="failed") == 2
        assert _value(samples, runs, task="prices", outcome="ok") == 1
        assert _value(samples, runs, task="prices", outcome="failed") == 0
        assert _value(samples, runs, task="compact", outcome="ok") == 0


async def test_two_apps_in_one_process_keep_their_own_metrics(kit: Kit) -> None:
    first = kit.service(api_config(api={"key": API_KEY}))
    second = kit.service(api_config(api={"key": API_KEY}))
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(service=s)), base_url=BASE_URL
        )
        for s in (first, second)
    ]
    async with clients[0] as one, clients[1] as two:
        await one.get(f"/balances/{HOLDER}/stx")
        await one.get(f"/balances/{HOLDER}/stx")
        _, samples_one = await _scrape(one)
        _, samples_two = await _scrape(two)
    assert _with(samples_one, f"{LATENCY}_count", route=ONE_BALANCE)
    assert _with(samples_two, f"{LATENCY}_count", route=ONE_BALANCE) == {}
    assert _value(samples_two, "balances_cache_hits_total") == 0


async def test_metrics_is_not_in_the_openapi_schema(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"]
