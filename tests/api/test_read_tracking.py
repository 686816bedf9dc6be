"""Reads grow the tracked set only with the API key, or within the operator's
anonymous budget (off by default): an anonymous read is answered, not kept fresh."""

from __future__ import annotations

import httpx
import pytest
from conftest_client import HOLDER
from service_helpers import Kit

from balances.testing import fake_address
from conftest import ClientFactory

pytestmark = pytest.mark.asyncio(loop_scope="module")
NEW = [fake_address(f"read-tracking-{i}") for i in range(12)]
BULK = "/balances/bulk/current"


async def tracked(api: httpx.AsyncClient, key: dict[str, str]) -> set[str]:
    answer = await api.get("/tracked", headers=key)
    assert answer.status_code == 200, answer.text
    return {entry["address"] for entry in answer.json()}


async def test_an_anonymous_read_is_answered_and_tracks_nothing(
    api: httpx.AsyncClient, key: dict[str, str], kit: Kit
) -> None:
    bulk = await api.post(BULK, json={"addresses": NEW, "tokenIds": ["stx"]})
    assert bulk.status_code == 200, bulk.text
    one = await api.get(f"/balances/{HOLDER}/stx")
    assert one.json()["balance"] == str(kit.chain.balance("stx", HOLDER))
    assert await tracked(api, key) == set()


async def test_a_keyed_read_tracks_what_it_reads(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    answer = await api.post(BULK, json={"addresses": NEW[:3], "tokenIds": ["stx"]}, headers=key)
    assert answer.status_code == 200, answer.text
    assert await tracked(api, key) == set(NEW[:3])


async def test_the_anonymous_budget_bounds_additions_per_client(
    make_client: ClientFactory, key: dict[str, str]
) -> None:
    api = await make_client(api={"key": "test-api-key", "anonymous_track_per_minute": 4})
    answer = await api.post(BULK, json={"addresses": NEW, "tokenIds": ["stx"]})
    assert answer.status_code == 200, answer.text
    assert len(await tracked(api, key)) == 4
    assert set(await tracked(api, key)) <= set(NEW)


async def test_no_anonymous_addition_past_the_cap_on_the_tracked_set(
    make_client: ClientFactory, key: dict[str, str]
) -> None:
    fields = {"key": "test-api-key", "anonymous_track_per_minute": 100, "anonymous_track_max": 5}
    api = await make_client(api=fields)
    await api.post(BULK, json={"addresses": NEW, "tokenIds": ["stx"]})
    assert len(await tracked(api, key)) == 5
