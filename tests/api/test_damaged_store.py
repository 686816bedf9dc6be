"""The issue's case, over HTTP: a local store whose manifest was truncated to half.

Reads say which blob is damaged (503, one warning, no traceback), ``/health``
says ``degraded`` with the blob and its error, ``/metrics`` counts the errors, and
the next write pass rebuilds the manifest from the listing: answers come back,
equal to the chain, and health is ``ok`` again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from service_helpers import HOLDER, OTHER, Kit

from balances.blobs import LocalBlobStore
from conftest import API_KEY, ClientFactory, api_config

pytestmark = pytest.mark.asyncio(loop_scope="module")
KEY = {"x-api-key": API_KEY}


async def _populated(kit: Kit, root: Path) -> LocalBlobStore:
    store = LocalBlobStore(root)
    writer = kit.service(api_config(), store=store)
    for address in (HOLDER, OTHER):
        await writer.track(address)
    await writer.syncer.refresh_many([writer._principal(a) for a in (HOLDER, OTHER)])
    kit.clocks.advance(mono=3600, wall=3600)
    await writer.layout.maintain()
    return store


def _truncate(store: LocalBlobStore, key: str) -> None:
    path = store.path_of(key)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


async def test_a_truncated_manifest_is_reported_then_rebuilt_by_the_next_write(
    kit: Kit, make_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await _populated(kit, tmp_path / "blobs")
    _truncate(store, "v1/manifest")
    svc = kit.service(api_config(api={"key": API_KEY}), store=store)
    client = await make_client(svc)

    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            refused = await client.get(f"/balances/{HOLDER}")
            assert refused.status_code == 503
            assert refused.json()["error"] == "storage_unavailable"
            assert "v1/manifest" in refused.json()["message"]
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warned] == ["balances.storage"]
    assert "v1/manifest" in warned[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)

    health = await client.get("/health")
    assert health.status_code == 503
    body = health.json()
    assert (body["status"], body["storage"]["status"]) == ("degraded", "degraded")
    (problem,) = body["storage"]["problems"]
    assert (problem["key"], problem["kind"]) == ("v1/manifest", "corrupt")
    assert "not a balances blob file" in problem["error"]
    assert problem["count"] >= 3
    assert body["tracked_addresses"] == 2  # the tracked set itself is sound
    assert (await client.get("/health/live")).json() == {"status": "alive"}
    metrics = (await client.get("/metrics")).text
    assert f'balances_storage_errors_total{{kind="corrupt"}} {problem["count"]}.0' in metrics
    assert "balances_storage_damaged_blobs 1.0" in metrics

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        refreshed = await client.post(f"/balances/{OTHER}/refresh", headers=KEY)
    assert refreshed.status_code == 200, refreshed.text
    assert any("rebuilt v1/manifest" in r.getMessage() for r in caplog.records)
    kept = [key async for key in store.iter_keys("quarantine/")]
    assert len(kept) == 1
    assert kept[0].startswith("quarantine/v1/manifest/")

    answer = await client.get(f"/balances/{HOLDER}")
    assert answer.status_code == 200
    amounts = {b["token_id"]: int(b["balance"]) for b in answer.json()["balances"]}
    assert amounts == {t: kit.chain.balance(t, HOLDER) for t in amounts}
    assert amounts["stx"] == kit.chain.balance("stx", HOLDER) > 0
    healed = await client.get("/health")
    assert healed.status_code == 200
    assert healed.json()["storage"] == {"status": "ok", "problems": []}
    assert "balances_storage_damaged_blobs 0.0" in (await client.get("/metrics")).text


async def test_health_stays_ok_on_a_sound_store(make_client: ClientFactory) -> None:
    client = await make_client()
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["storage"] == {"status": "ok", "problems": []}
    assert (
        'balances_storage_errors_total{kind="corrupt"} 0.0' in (await client.get("/metrics")).text
    )
