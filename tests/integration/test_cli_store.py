"""``balances store verify`` and ``balances store repair`` on a file store damaged in
three places (the manifest truncated, a shard emptied, the tracked set garbled),
against the demo ledger on loopback."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from threaded_stand_in import ThreadedStandIn
from typer.testing import CliRunner, Result

from balances.blobs import LocalBlobStore
from balances.bootstrap import load_config
from balances.cli import app
from balances.service import BalanceService
from balances.testing import DEMO_ADDRESSES, demo_chain

ENV = {"BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE": "100000"}
ADDRESSES = DEMO_ADDRESSES[:3]
runner = CliRunner()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[ThreadedStandIn]:
    with ThreadedStandIn(demo_chain()) as running:
        yield running


def _invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env=ENV)


async def _populate(url: str, root: Path) -> None:
    config = load_config(store_url=f"file://{root}", chain_url=url)
    async with BalanceService(config) as service:
        for address in ADDRESSES:
            await service.track(address)
        await service.syncer.refresh_many([service._principal(a) for a in ADDRESSES])
        await service.layout.maintain(now=service.wall_clock() + 3600)


async def _stored(url: str, root: Path) -> dict[str, dict[str, int]]:
    config = load_config(store_url=f"file://{root}", chain_url=url)
    async with BalanceService(config) as service:
        found = await service.current.load_many([service._principal(a) for a in ADDRESSES])
        return {
            a: {k: s.amount for k, s in (b.tokens.items() if b else ()) if s.amount}
            for a, b in found.items()
        }


def _damage_three_places(root: Path) -> list[str]:
    store = LocalBlobStore(root)
    manifest = store.path_of("v1/manifest")
    manifest.write_bytes(manifest.read_bytes()[: manifest.stat().st_size // 2])
    shard = sorted((root / "v1" / "current").iterdir())[0]
    shard.write_bytes(b"")
    store.path_of("tracked").write_bytes(os.urandom(64))
    return ["v1/manifest", f"v1/current/{shard.name.removesuffix('.blob')}", "tracked"]


def test_verify_names_three_damaged_blobs_and_repair_restores_them(
    stand_in: ThreadedStandIn, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    asyncio.run(_populate(stand_in.url, root))
    before = asyncio.run(_stored(stand_in.url, root))
    damaged = _damage_three_places(root)
    where = ["--store", f"file://{root}", "--chain-url", stand_in.url]

    shown = _invoke("store", "verify", *where)
    print(shown.stdout)
    assert shown.exit_code == 1
    for key in damaged:
        assert key in shown.stdout
    assert "3 damaged" in shown.stdout
    report = json.loads(_invoke("store", "verify", "--json", *where).stdout)
    assert sorted(f["key"] for f in report["damaged"]) == sorted(damaged)
    assert report["ok"] is False

    repaired = _invoke("store", "repair", *where)
    print(repaired.stdout)
    assert repaired.exit_code == 0, repaired.output
    assert "rebuilt the manifest from the listing" in repaired.stdout
    assert f"tracked {len(ADDRESSES)} addresses again" in repaired.stdout
    assert "the store verifies clean" in repaired.stdout
    kept = sorted(p.name for p in (root / "quarantine").rglob("*.blob"))
    assert len(kept) == 3

    assert _invoke("store", "verify", *where).exit_code == 0
    again = _invoke("store", "repair", "--json", *where)
    assert again.exit_code == 0
    assert json.loads(again.stdout)["quarantined"] == {}
    after = asyncio.run(_stored(stand_in.url, root))
    assert after == before
    truth = {a: {t: stand_in.chain.balance(t, a) for t in after[a]} for a in ADDRESSES}
    assert after == truth


def test_verify_of_a_sound_store_exits_0(stand_in: ThreadedStandIn, tmp_path: Path) -> None:
    root = tmp_path / "store"
    asyncio.run(_populate(stand_in.url, root))
    result = _invoke("store", "verify", "--store", f"file://{root}")
    assert result.exit_code == 0
    assert "no damage found" in result.stdout
