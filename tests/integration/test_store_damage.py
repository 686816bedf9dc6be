"""A damaged store: verify finds it, answers stay true, repair restores every balance.

Every kind of blob the service writes is damaged in each way a blob goes bad
(``store_damage.DAMAGES``); the service reads it through the stand-in over
loopback HTTP. Then the same on every backend: the local directory (where the
damage is done to the file itself), S3 (moto) and Vercel Blob (the stand-in).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from service_helpers import Kit, SharedServer, open_kit, shared_server
from store_damage import (
    DAMAGES,
    HOLDER,
    KIND_KEYS,
    NATIVE,
    OTHER,
    damage,
    key_of,
    populate,
    service,
    stored_differences,
    wrong_answers,
)

from balances.blobs import BlobStore, LocalBlobStore
from balances.blobs.s3 import S3BlobStore
from balances.blobs.vercel import VercelBlobStore
from balances.doctor import layout_of, repair_store, verify_store
from balances.stores.quarantine import read_raw
from balances.testing import FakeChain, FakeChainServer
from balances.testing.s3_server import MotoS3Server
from balances.testing.vercel_blob import VercelBlobStandIn

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[SharedServer]:
    async with shared_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def fake_chain_server(fake_chain: FakeChain, server: SharedServer) -> FakeChainServer:
    return server.plug(fake_chain)


@pytest_asyncio.fixture(loop_scope="module")
async def kit(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, fake_chain_server) as built:
        yield built


async def test_a_populated_store_verifies_clean(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    await populate(kit, fake_chain_server)
    svc = service(kit, fake_chain_server)
    report = await verify_store(svc.blobs, layout_of(svc))
    assert report.ok, report.damaged
    for kind in KIND_KEYS:
        assert report.by_kind.get(kind), kind


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", sorted(KIND_KEYS))
async def test_damage_is_found_never_served_and_repaired(
    kit: Kit, fake_chain_server: FakeChainServer, kind: str, how: str
) -> None:
    await _found_served_true_and_repaired(kit, fake_chain_server, kind, how)


async def _found_served_true_and_repaired(
    kit: Kit, server: FakeChainServer, kind: str, how: str
) -> None:
    """Damage a blob of ``kind`` in a populated store: verify names it (when a
    listing can tell: a missing blob is missed unless it is the manifest), every
    answer is the chain's or a refusal, and repair restores everything."""
    await populate(kit, server)
    key = await key_of(kit.store, kind)
    await damage(kit.store, key, how, kind)
    reader = service(kit, server)
    found = await verify_store(reader.blobs, layout_of(reader))
    detectable = how != "missing" or kind == "manifest"
    assert (key in {f.key for f in found.damaged}) is detectable, found.damaged
    assert await wrong_answers(reader, kit) == []
    await _repaired(kit, server, key if detectable and how != "missing" else None)


@pytest.mark.parametrize("how", ["garbage", "wrong-shape", "truncated"])
@pytest.mark.parametrize(
    "kind", ["shard-current", "journal-segment", "series-month", "daily-rollup"]
)
async def test_the_write_passes_quarantine_damage_and_read_again(
    kit: Kit, fake_chain_server: FakeChainServer, kind: str, how: str
) -> None:
    await populate(kit, fake_chain_server)
    key = await key_of(kit.store, kind, newest=True)
    kept = await read_raw(kit.store, key)
    await damage(kit.store, key, how, kind)
    svc = service(kit, fake_chain_server)

    kit.chain.transfer(NATIVE, HOLDER, OTHER, 1)  # so the sync pass writes a segment
    kit.chain.advance_blocks(1)
    tracked = [svc._principal(entry.address) for entry in await svc.tracked_addresses()]
    await svc.syncer.refresh_many(tracked)  # the scheduler's sync pass
    kit.clocks.advance(mono=3600, wall=3600)
    report = await svc.layout.maintain()  # and its compaction

    (copy,) = [k async for k in kit.store.iter_keys(f"quarantine/{key}/")]
    damaged = await read_raw(kit.store, copy)
    assert damaged is not None
    assert kept is not None
    assert damaged.data != kept.data
    assert any(copy in note for note in report.notes)
    assert await wrong_answers(svc, kit) == []
    assert await stored_differences(service(kit, fake_chain_server), kit) == []
    assert (await verify_store(svc.blobs, layout_of(svc))).ok
    assert await svc.storage_problems() == []


async def _repaired(kit: Kit, server: FakeChainServer, damaged: str | None) -> None:
    """Repair; then every balance is the chain's, the damaged bytes are kept under
    quarantine/, and a second repair changes nothing."""
    kept = None if damaged is None else await read_raw(kit.store, damaged)
    report = await repair_store(service(kit, server))
    assert report.ok, report.as_dict()
    if kept is not None and damaged is not None:
        copy = report.quarantined[damaged]
        assert copy.startswith(f"quarantine/{damaged}/")
        assert (await kit.store.get(copy)).data == kept.data
    after = service(kit, server)
    assert await stored_differences(after, kit) == []
    assert await wrong_answers(after, kit) == []
    listed = [key async for key in kit.store.iter_keys("")]
    again = await repair_store(service(kit, server))
    assert (again.damaged, again.quarantined) == ([], {})
    assert [key async for key in kit.store.iter_keys("")] == listed


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3Server]:
    with MotoS3Server() as running:
        yield running


@pytest.fixture(scope="module")
def vercel() -> Iterator[VercelBlobStandIn]:
    with VercelBlobStandIn(access="private") as running:
        yield running


def _backend_store(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if name.startswith("local"):
        return LocalBlobStore(tmp_path / "blobs", inline_cached_reads=name == "local")
    if name == "s3":
        moto: MotoS3Server = request.getfixturevalue("moto")
        url = f"s3://{moto.create_bucket()}/damage"
        return S3BlobStore.from_url(url, **moto.store_options())
    vercel: VercelBlobStandIn = request.getfixturevalue("vercel")
    vercel.reset()
    return VercelBlobStore(**vercel.store_options(), retry_base_delay=0.01)


#: Every backend meets every kind and every damage (the memory store above takes
#: their whole product). The local store takes the damages that break a file's own
#: frame (truncation, emptying) to every kind, and every damage to the manifest;
#: the others take every kind once, the damages in turn.
BACKEND_CASES = [
    *[("local", kind, how) for kind in sorted(KIND_KEYS) for how in ("truncated", "zero-length")],
    *[("local", "manifest", how) for how in ("garbage", "wrong-shape", "missing")],
    *[
        (backend, kind, DAMAGES[index % len(DAMAGES)])
        for backend in ("local-threaded", "s3", "vercel")
        for index, kind in enumerate(sorted(KIND_KEYS))
    ],
]


@pytest.mark.parametrize(("backend", "kind", "how"), BACKEND_CASES)
async def test_every_backend_finds_keeps_and_repairs_damage(
    fake_chain: FakeChain,
    fake_chain_server: FakeChainServer,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: str,
    kind: str,
    how: str,
) -> None:
    backend_store = _backend_store(backend, request, tmp_path)
    async with open_kit(fake_chain, fake_chain_server, store=backend_store) as kit:
        await _found_served_true_and_repaired(kit, fake_chain_server, kind, how)
    await backend_store.close()


async def test_the_spec_layout_is_verified_and_repaired_too(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    writer = service(kit, fake_chain_server, layout="spec")
    for address in (HOLDER, OTHER):
        await writer.track(address)
    await writer.syncer.refresh_many([writer._principal(a) for a in (HOLDER, OTHER)])
    keys = [key async for key in kit.store.iter_keys("spec/current/")]
    (key,) = [k for k in keys if k.endswith(HOLDER)]
    await damage(kit.store, key, "garbage", "spec-current")
    await damage(kit.store, "tracked", "truncated", "tracked-set")

    reader = service(kit, fake_chain_server, layout="spec")
    found = await verify_store(reader.blobs, layout_of(reader))
    assert sorted(f.key for f in found.damaged) == sorted([key, "tracked"])
    report = await repair_store(service(kit, fake_chain_server, layout="spec"))
    assert report.ok
    assert (sorted(report.quarantined), report.reread) == (sorted([key, "tracked"]), [HOLDER])
    assert report.tracked_restored == 2  # HOLDER's month blob still names it
    assert await stored_differences(service(kit, fake_chain_server, layout="spec"), kit) == []


async def test_repair_while_the_service_writes_loses_no_write(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    await populate(kit, fake_chain_server)
    for kind, how in (("manifest", "truncated"), ("shard-current", "garbage")):
        await damage(kit.store, await key_of(kit.store, kind), how, kind)
    running = service(kit, fake_chain_server)  # heals what it meets as it writes
    both = [running._principal(a) for a in (HOLDER, OTHER)]

    async def keep_writing() -> int:
        stored = 0
        for _ in range(12):
            kit.chain.transfer(NATIVE, HOLDER, OTHER, 1)
            kit.chain.advance_blocks(1)
            outcomes = await running.syncer.refresh_many(both)
            stored += sum(o.store_error is None for o in outcomes)
        return stored

    report, stored = await asyncio.gather(
        repair_store(service(kit, fake_chain_server)), keep_writing()
    )
    assert report.ok, report.as_dict()
    assert stored == 24  # every sync batch was stored, none refused by the repair
    assert await stored_differences(service(kit, fake_chain_server), kit) == []
    checker = service(kit, fake_chain_server)
    assert (await verify_store(checker.blobs, layout_of(checker))).ok
