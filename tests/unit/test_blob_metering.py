"""MeteredBlobStore counts and the price tables, with numbers worked out by hand."""

from __future__ import annotations

import pytest

from balances.blobs import (
    CLOUDFLARE_R2,
    CREATE,
    S3_STANDARD,
    VERCEL_BLOB,
    MemoryBlobStore,
    MeteredBlobStore,
    MeterSnapshot,
    PriceTable,
)
from balances.errors import BlobNotFoundError, PreconditionFailedError

EXACT = {"rel": 1e-12, "abs": 0.0}


async def run_workload(store: MeteredBlobStore) -> None:
    await store.put("a", b"x" * 1000, mode=CREATE)
    await store.put("b", b"y" * 500)
    await store.put("a", b"z" * 2000)  # overwrite: 1000 -> 2000 stored
    with pytest.raises(PreconditionFailedError):
        await store.put("a", b"w" * 10, mode=CREATE)  # refused, still billed and sent
    await store.get("a")
    await store.get("b")
    with pytest.raises(BlobNotFoundError):
        await store.get("missing")
    await store.head("a")
    await store.list()
    await store.delete(["b", "never-there"])


async def test_operations_bytes_and_storage_are_counted() -> None:
    store = MeteredBlobStore(MemoryBlobStore())
    await run_workload(store)
    snapshot = store.snapshot()
    assert snapshot.operations == {"get": 3, "head": 1, "put": 4, "list": 1, "delete": 1}
    assert (snapshot.simple, snapshot.advanced, snapshot.free) == (4, 5, 1)
    assert snapshot.bytes_uploaded == 1000 + 500 + 2000 + 10
    assert snapshot.bytes_downloaded == 2000 + 500
    assert (snapshot.bytes_stored, snapshot.blobs_stored) == (2000, 1)


async def test_cost_of_the_workload_on_vercel() -> None:
    store = MeteredBlobStore(MemoryBlobStore())
    await run_workload(store)
    report = store.cost_report(VERCEL_BLOB, months=1.0)
    assert report.storage == pytest.approx(2000 / 1e9 * 0.023, **EXACT)
    assert report.simple_operations == pytest.approx(4 / 1e6 * 0.40, **EXACT)
    assert report.advanced_operations == pytest.approx(5 / 1e6 * 5.00, **EXACT)
    assert report.transfer == pytest.approx(2500 / 1e9 * 0.05, **EXACT)
    assert report.total == pytest.approx(4.6e-8 + 1.6e-6 + 2.5e-5 + 1.25e-7, **EXACT)


def million_ops_and_a_gigabyte() -> MeterSnapshot:
    return MeterSnapshot(
        operations={"get": 600_000, "head": 400_000, "put": 900_000, "list": 100_000},
        simple=1_000_000,
        advanced=1_000_000,
        free=0,
        bytes_uploaded=0,
        bytes_downloaded=1_000_000_000,
        bytes_stored=1_000_000_000,
        blobs_stored=10,
    )


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        (VERCEL_BLOB, {"storage": 0.023, "simple": 0.40, "advanced": 5.00, "transfer": 0.05}),
        (S3_STANDARD, {"storage": 0.023, "simple": 0.40, "advanced": 5.00, "transfer": 0.09}),
        (CLOUDFLARE_R2, {"storage": 0.015, "simple": 0.36, "advanced": 4.50, "transfer": 0.0}),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_price_tables(prices: PriceTable, expected: dict[str, float]) -> None:
    report = million_ops_and_a_gigabyte().cost_report(prices, months=1.0)
    assert report.storage == pytest.approx(expected["storage"], **EXACT)
    assert report.simple_operations == pytest.approx(expected["simple"], **EXACT)
    assert report.advanced_operations == pytest.approx(expected["advanced"], **EXACT)
    assert report.transfer == pytest.approx(expected["transfer"], **EXACT)
    assert report.total == pytest.approx(sum(expected.values()), **EXACT)
    assert report.as_dict()["total"] == report.total


def test_storage_scales_with_months_and_operations_do_not() -> None:
    year = million_ops_and_a_gigabyte().cost_report(S3_STANDARD, months=12)
    assert year.storage == pytest.approx(0.023 * 12, **EXACT)
    assert year.simple_operations == pytest.approx(0.40, **EXACT)


async def test_reset_zeroes_counters_but_keeps_what_is_stored() -> None:
    store = MeteredBlobStore(MemoryBlobStore())
    await run_workload(store)
    before = store.reset()
    assert before.advanced == 5
    after = store.snapshot()
    assert set(after.operations.values()) == {0}
    assert (after.bytes_uploaded, after.bytes_downloaded) == (0, 0)
    assert after.bytes_stored == 2000
    await store.put("c", b"123")
    assert store.snapshot().operations["put"] == 1
    assert store.snapshot().bytes_stored == 2003


async def test_measure_stored_seeds_from_an_existing_store() -> None:
    inner = MemoryBlobStore()
    await inner.put("old/1", b"a" * 300)
    await inner.put("old/2", b"b" * 700)
    store = MeteredBlobStore(inner)
    assert await store.measure_stored() == 1000
    assert store.snapshot().operations["list"] == 0  # seeding is not billed
    await store.put("old/1", b"c" * 100)
    assert store.snapshot().bytes_stored == 800
