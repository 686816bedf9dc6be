"""PriceStore: monthly price blobs, step-function reads, and no lost concurrent writes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from balances.blobs import OVERWRITE, Blob, BlobInfo, MemoryBlobStore, WriteMode
from balances.errors import CorruptBlobError, InvalidPeriodError, WriteConflictError
from balances.prices import PricePoint
from balances.stores.encoding import encode_document
from balances.stores.prices import PriceStore, decode_month, encode_month, months_between

CHA = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token"
JAN = datetime(2024, 1, 10, tzinfo=UTC)
FEB = datetime(2024, 2, 10, tzinfo=UTC)
MAR = datetime(2024, 3, 10, tzinfo=UTC)


def point(at: datetime, usd: str) -> PricePoint:
    return PricePoint(at, Decimal(usd))


class YieldingBlobStore(MemoryBlobStore):
    """Memory semantics, but every call yields to the loop first, so tasks interleave
    between a read and its conditional write as they would against a real backend."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = self.heads = self.puts = 0

    async def get(self, key: str) -> Blob:
        self.gets += 1
        await asyncio.sleep(0)
        return await super().get(key)

    async def head(self, key: str) -> BlobInfo:
        self.heads += 1
        await asyncio.sleep(0)
        return await super().head(key)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = "application/octet-stream",
    ) -> BlobInfo:
        self.puts += 1
        await asyncio.sleep(0)
        return await super().put(key, data, mode=mode, content_type=content_type)


async def test_record_and_read_across_month_boundaries() -> None:
    blobs = MemoryBlobStore()
    store = PriceStore(blobs)
    assert await store.record({"stx": point(JAN, "1.0"), CHA: point(JAN, "0.01")}) == 2
    assert await store.record({"stx": point(FEB, "1.2")}) == 1
    assert await store.record({"stx": point(MAR, "1.1"), CHA: point(MAR, "0.02")}) == 2
    keys = [info.key for info in (await blobs.list("prices/")).items]
    assert keys == ["prices/2024-01", "prices/2024-02", "prices/2024-03"]
    history = await store.history("stx", JAN, MAR)
    assert [p.usd for p in history] == [Decimal("1.0"), Decimal("1.2"), Decimal("1.1")]
    assert await store.price_at("stx", FEB + timedelta(days=25)) == point(FEB, "1.2")
    assert await store.price_at(CHA, FEB) == point(JAN, "0.01")  # from a previous month
    assert await store.price_at(CHA, JAN - timedelta(seconds=1)) is None
    assert await store.price_at("SP1.unknown", MAR) is None


async def test_the_price_in_force_at_the_window_start_leads_the_history() -> None:
    store = PriceStore(MemoryBlobStore())
    await store.record({CHA: point(JAN, "0.01")})
    await store.record({CHA: point(MAR, "0.03")})
    window = await store.history(CHA, datetime(2024, 3, 1, tzinfo=UTC), MAR + timedelta(days=1))
    assert window == [point(JAN, "0.01"), point(MAR, "0.03")]  # January's price, two months back
    exact = await store.history(CHA, MAR, MAR + timedelta(days=1))
    assert exact == [point(MAR, "0.03")]  # a point at the start needs no lead
    quiet = await store.history(CHA, FEB, FEB + timedelta(days=1))
    assert quiet == [point(JAN, "0.01")]
    assert await store.history("stx", JAN, MAR) == []
    with pytest.raises(InvalidPeriodError):
        await store.history(CHA, MAR, JAN)


async def test_the_lookback_is_bounded() -> None:
    blobs = YieldingBlobStore()
    store = PriceStore(blobs, lookback_months=3)
    await store.record({CHA: point(JAN, "0.01")})
    late = datetime(2024, 6, 1, tzinfo=UTC)
    assert await store.price_at(CHA, late) is None  # May, April, March: nothing
    assert await store.price_at(CHA, datetime(2024, 4, 1, tzinfo=UTC)) == point(JAN, "0.01")
    reads = blobs.gets + blobs.heads
    await PriceStore(blobs, lookback_months=3).price_at("stx", late)
    assert blobs.gets + blobs.heads - reads == 4  # June plus three months back


async def test_equal_consecutive_prices_are_not_stored() -> None:
    blobs = YieldingBlobStore()
    store = PriceStore(blobs)
    assert await store.record({"stx": point(JAN, "1.50")}) == 1
    assert await store.record({"stx": point(JAN + timedelta(hours=1), "1.5")}) == 0
    assert await store.record({"stx": point(FEB, "1.500")}) == 0  # against January's price
    assert await store.record({"stx": point(JAN, "1.5")}) == 0  # the same point again
    assert await store.record({"stx": point(JAN, "1.6")}) == 1  # same moment, new price
    assert blobs.puts == 2
    assert await store.history("stx", JAN, FEB + timedelta(days=1)) == [point(JAN, "1.6")]


async def test_a_point_between_stored_ones_is_inserted_in_order() -> None:
    store = PriceStore(MemoryBlobStore())
    await store.record({"stx": point(JAN, "1")})
    await store.record({"stx": point(JAN + timedelta(days=2), "3")})
    assert await store.record({"stx": point(JAN + timedelta(days=1), "2")}) == 1
    assert [p.usd for p in await store.history("stx", JAN, FEB)] == [1, 2, 3]


async def test_another_writer_is_seen_before_deciding_nothing_changed() -> None:
    blobs = MemoryBlobStore()
    mine, theirs = PriceStore(blobs), PriceStore(blobs)
    await mine.record({"stx": point(JAN, "1")})
    await theirs.record({"stx": point(JAN + timedelta(hours=1), "2")})
    # Against my cached copy 1 -> 1 is no change; against the blob it is 2 -> 1.
    assert await mine.record({"stx": point(JAN + timedelta(hours=2), "1")}) == 1
    usd = [p.usd for p in await theirs.history("stx", JAN, FEB)]
    assert usd == [1, 2, 1]


async def test_concurrent_recorders_lose_nothing() -> None:
    blobs = YieldingBlobStore()
    stores = [PriceStore(blobs) for _ in range(6)]
    shared = PriceStore(blobs)

    async def recorder(index: int, store: PriceStore) -> int:
        stored = 0
        for step in range(5):
            at = JAN + timedelta(minutes=step)
            stored += await store.record({f"SP1.token-{index}": point(at, f"{index}.{step + 1}")})
        return stored

    counts = await asyncio.gather(
        *(recorder(i, store) for i, store in enumerate(stores)),
        *(recorder(10 + i, shared) for i in range(3)),
    )
    assert counts == [5] * 9
    fresh = PriceStore(blobs)
    for index in [*range(6), 10, 11, 12]:
        history = await fresh.history(f"SP1.token-{index}", JAN, FEB)
        assert [str(p.usd) for p in history] == [f"{index}.{step + 1}" for step in range(5)]


async def test_losing_every_race_gives_up_with_an_error() -> None:
    class AlwaysLosing(MemoryBlobStore):
        async def put(self, key: str, data: bytes, **options: object) -> BlobInfo:
            from balances.errors import PreconditionFailedError

            raise PreconditionFailedError(key)

    store = PriceStore(AlwaysLosing(), attempts=3, conflict_delay=0)
    with pytest.raises(WriteConflictError, match="lost 3"):
        await store.record({"stx": point(JAN, "1")})


async def test_corrupt_blobs_are_reported_and_never_overwritten() -> None:
    blobs = MemoryBlobStore()
    await blobs.put("prices/2024-02", b"not zstd at all")
    store = PriceStore(blobs)
    with pytest.raises(CorruptBlobError, match="prices/2024-02"):
        await store.history("stx", FEB, FEB + timedelta(days=1))
    with pytest.raises(CorruptBlobError):
        await store.record({"stx": point(FEB, "1")})
    with pytest.raises(CorruptBlobError):
        await store.price_at("stx", MAR)  # walks back through February
    assert (await blobs.get("prices/2024-02")).data == b"not zstd at all"


@pytest.mark.parametrize(
    "body",
    [
        {"month": "2024-01", "tokens": []},
        {"month": "2023-12", "tokens": {}},
        {"month": "2024-01", "tokens": {"stx": [[1704844800, "1e5"]]}},
        {"month": "2024-01", "tokens": {"stx": [[1704844800, "-1"]]}},
        {"month": "2024-01", "tokens": {"stx": [["soon", "1"]]}},
        {"month": "2024-01", "tokens": {"stx": [[1, "1"]]}},  # 1970 is not January 2024
        {"month": "2024-01", "tokens": {"stx": [[10**15, "1"]]}},
        {"month": "2024-01", "tokens": {"stx": [[1704844800]]}},
    ],
)
def test_malformed_documents_are_corrupt(body: dict[str, object]) -> None:
    data = encode_document("price-history", 1, body)
    with pytest.raises(CorruptBlobError, match="prices/2024-01"):
        decode_month(data, "2024-01", "prices/2024-01")


def test_encoding_round_trips_exactly() -> None:
    series = {
        "stx": (point(JAN, "1.50"), point(JAN + timedelta(microseconds=250_001), "0.000001")),
        CHA: (point(JAN, "123456789.123456789"),),
    }
    assert decode_month(encode_month("2024-01", series), "2024-01", "k") == series


def test_months_between() -> None:
    assert months_between(datetime(2023, 11, 30, tzinfo=UTC), JAN) == [
        "2023-11",
        "2023-12",
        "2024-01",
    ]
    assert months_between(JAN, JAN) == ["2024-01"]
