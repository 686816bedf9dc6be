"""SharedDocument: one small blob shared by replicas, cached, updated without lost writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import orjson
import pytest

from balances.blobs import (
    DEFAULT_CONTENT_TYPE,
    OVERWRITE,
    BlobInfo,
    MemoryBlobStore,
    MeteredBlobStore,
    WriteMode,
)
from balances.errors import CorruptBlobError, WriteConflictError
from balances.stores.document import SharedDocument

KEY = "doc"
Doc = Mapping[str, int]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _decode(data: bytes, where: str) -> Doc:
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise CorruptBlobError(f"{where} is not an object")
    return value


def _document(blobs: MeteredBlobStore | MemoryBlobStore, clock: Clock) -> SharedDocument[Doc]:
    return SharedDocument(
        blobs,
        KEY,
        empty=dict,
        encode=lambda doc: orjson.dumps(dict(sorted(doc.items()))),
        decode=_decode,
        recheck_seconds=60.0,
        clock=clock,
    )


def _adding(key: str, value: int = 1) -> Callable[[Doc], Doc]:
    def change(doc: Doc) -> Doc:
        return {**doc, key: value}

    return change


@pytest.fixture
def inner() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def blobs(inner: MemoryBlobStore) -> MeteredBlobStore:
    return MeteredBlobStore(inner)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _ops(blobs: MeteredBlobStore) -> dict[str, int]:
    return {op: n for op, n in blobs.reset().operations.items() if n}


async def test_a_missing_blob_reads_as_empty(blobs: MeteredBlobStore, clock: Clock) -> None:
    assert await _document(blobs, clock).current() == {}
    assert _ops(blobs) == {"get": 1}


async def test_reads_within_the_recheck_window_cost_nothing(
    inner: MemoryBlobStore, blobs: MeteredBlobStore, clock: Clock
) -> None:
    await inner.put(KEY, b'{"a": 1}')
    doc = _document(blobs, clock)
    assert await doc.current() == {"a": 1}
    assert _ops(blobs) == {"get": 1}
    clock.now += 59
    assert await doc.current() == {"a": 1}
    assert _ops(blobs) == {}


async def test_a_recheck_of_an_unchanged_blob_is_one_head_and_no_download(
    inner: MemoryBlobStore, blobs: MeteredBlobStore, clock: Clock
) -> None:
    await inner.put(KEY, b'{"a": 1}')
    doc = _document(blobs, clock)
    await doc.current()
    _ops(blobs)
    clock.now += 60
    assert await doc.current() == {"a": 1}
    snapshot = blobs.snapshot()
    assert _ops(blobs) == {"head": 1}
    assert snapshot.bytes_downloaded == 0
    clock.now += 30  # the head restarted the window
    await doc.current()
    assert _ops(blobs) == {}


async def test_a_recheck_downloads_what_another_writer_changed(
    inner: MemoryBlobStore, blobs: MeteredBlobStore, clock: Clock
) -> None:
    await inner.put(KEY, b'{"a": 1}')
    doc = _document(blobs, clock)
    await doc.current()
    await inner.put(KEY, b'{"a": 2}')
    assert await doc.current() == {"a": 1}  # within the window: the copy in memory
    clock.now += 61
    _ops(blobs)
    assert await doc.current() == {"a": 2}
    assert _ops(blobs) == {"head": 1, "get": 1}


async def test_invalidate_makes_the_next_read_recheck(
    inner: MemoryBlobStore, blobs: MeteredBlobStore, clock: Clock
) -> None:
    await inner.put(KEY, b'{"a": 1}')
    doc = _document(blobs, clock)
    await doc.current()
    await inner.put(KEY, b'{"a": 3}')
    doc.invalidate()
    assert await doc.current() == {"a": 3}


async def test_update_writes_the_changed_value(blobs: MeteredBlobStore, clock: Clock) -> None:
    doc = _document(blobs, clock)
    assert await doc.update(_adding("a")) == {"a": 1}
    assert orjson.loads((await blobs.inner.get(KEY)).data) == {"a": 1}
    assert _ops(blobs) == {"get": 1, "put": 1}
    assert await doc.current() == {"a": 1}
    assert _ops(blobs) == {}, "the written value is current: no re-read"


async def test_an_update_that_changes_nothing_writes_nothing(
    blobs: MeteredBlobStore, clock: Clock
) -> None:
    doc = _document(blobs, clock)
    await doc.update(_adding("a"))
    _ops(blobs)
    assert await doc.update(lambda value: None) == {"a": 1}
    assert await doc.update(lambda value: value) == {"a": 1}
    assert await doc.update(_adding("a")) == {"a": 1}  # equal, not the same object
    assert _ops(blobs) == {}


async def test_two_documents_updating_one_blob_both_persist(
    inner: MemoryBlobStore, clock: Clock
) -> None:
    first, second = _document(inner, clock), _document(inner, clock)
    assert await first.current() == await second.current() == {}
    calls: list[Doc] = []

    def add_b(doc: Doc) -> Doc:
        calls.append(doc)
        return {**doc, "b": 2}

    await first.update(_adding("a"))
    # ``second`` holds the empty value: its create loses, it re-reads and re-applies.
    assert await second.update(add_b) == {"a": 1, "b": 2}
    assert calls == [{}, {"a": 1}]
    third = _document(inner, clock)
    assert await third.current() == {"a": 1, "b": 2}


async def test_many_documents_updating_concurrently_lose_nothing(
    inner: MemoryBlobStore, clock: Clock
) -> None:
    docs = [_document(inner, clock) for _ in range(6)]
    await asyncio.gather(*(doc.current() for doc in docs))
    await asyncio.gather(*(doc.update(_adding(f"k{i}", i)) for i, doc in enumerate(docs)))
    assert await _document(inner, clock).current() == {f"k{i}": i for i in range(6)}


async def test_concurrent_updates_through_one_document_are_serialised(
    blobs: MeteredBlobStore, clock: Clock
) -> None:
    doc = _document(blobs, clock)
    await asyncio.gather(*(doc.update(_adding(f"k{i}")) for i in range(5)))
    assert await _document(blobs, clock).current() == {f"k{i}": 1 for i in range(5)}


class Rival(MemoryBlobStore):
    """Another writer changes the blob just before each of our writes."""

    def __init__(self) -> None:
        super().__init__()
        self.rivals = 0

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        self.rivals += 1
        await super().put(key, orjson.dumps({"rival": self.rivals}))
        return await super().put(key, data, mode=mode, content_type=content_type)


async def test_losing_every_race_gives_up_with_an_error(clock: Clock) -> None:
    store = Rival()
    doc = SharedDocument(
        store,
        KEY,
        empty=dict,
        encode=orjson.dumps,
        decode=_decode,
        attempts=3,
        clock=clock,
    )
    with pytest.raises(WriteConflictError, match="3"):
        await doc.update(_adding("a"))
    assert store.rivals == 3
    assert orjson.loads((await store.get(KEY)).data) == {"rival": 3}


async def test_a_corrupt_blob_is_an_error_not_an_empty_document(
    inner: MemoryBlobStore, clock: Clock
) -> None:
    await inner.put(KEY, b"[1, 2]")
    doc = _document(inner, clock)
    with pytest.raises(CorruptBlobError):
        await doc.current()
    with pytest.raises(CorruptBlobError):
        await doc.update(_adding("a"))
    assert (await inner.get(KEY)).data == b"[1, 2]"
