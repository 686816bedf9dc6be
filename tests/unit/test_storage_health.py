"""StorageHealth and WatchedBlobStore: what /health and /metrics know of the store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from balances.blobs import CREATE, IfMatch, LocalBlobStore, MemoryBlobStore
from balances.blobs.health import StorageHealth, WatchedBlobStore
from balances.blobs.localfs import DAMAGED_ETAG
from balances.errors import (
    BlobBackendError,
    BlobNotFoundError,
    CorruptBlobError,
    PreconditionFailedError,
    WriteConflictError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_problem_is_news_once_counted_always_and_forgotten_when_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    health = StorageHealth(forget_after=600, clock=clock)
    with caplog.at_level(logging.WARNING):
        assert health.report(CorruptBlobError("bad", key="v1/manifest")) is True
        clock.now += 10
        assert health.report(CorruptBlobError("bad again", key="v1/manifest")) is False
        assert health.report(BlobBackendError("down", key="v1/manifest")) is True
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "storage corrupt error on v1/manifest",
        "storage backend error on v1/manifest",
    ]
    (corrupt, backend) = health.problems()
    assert (corrupt.kind, corrupt.count, corrupt.error) == ("corrupt", 2, "bad again")
    assert (corrupt.first_seen, corrupt.last_seen) == (1000.0, 1010.0)
    assert backend.kind == "backend"
    assert health.counts() == {"corrupt": 2, "backend": 1, "conflict": 0, "other": 0}

    clock.now += 601
    assert health.problems() == []
    assert health.counts()["corrupt"] == 2  # a counter never goes down
    assert health.report(CorruptBlobError("bad", key="v1/manifest")) is True  # news again


def test_one_error_is_counted_once_however_many_layers_report_it() -> None:
    health = StorageHealth()
    error = WriteConflictError("lost 8 writes", key="tracked")
    assert health.report(error) is True
    assert health.report(error) is False
    assert health.counts()["conflict"] == 1


async def test_the_watch_reports_failures_and_a_write_or_delete_clears_them() -> None:
    health = StorageHealth()
    inner = MemoryBlobStore()
    watched = WatchedBlobStore(inner, health)
    await inner.put("a", b"1")
    health.report(CorruptBlobError("a is damaged", key="a"))
    health.report(CorruptBlobError("b is damaged", key="b"))
    with pytest.raises(BlobNotFoundError):
        await watched.get("missing")  # the protocol working: not a problem
    with pytest.raises(PreconditionFailedError):
        await watched.put("a", b"2", mode=CREATE)
    assert [p.key for p in health.problems()] == ["a", "b"]
    await watched.put("a", b"3")
    await watched.delete(["b"])
    assert health.problems() == []


async def test_a_local_file_with_a_broken_frame_is_listed_and_replaceable(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await store.put("doc", b"payload")
    await store.put("next", b"neighbour")
    store.path_of("doc").write_bytes(b"\x00garbage")
    with pytest.raises(CorruptBlobError) as raised:
        await store.get("doc")
    assert (raised.value.key, raised.value.raw) == ("doc", b"\x00garbage")
    listed = {info.key: info.etag for info in (await store.list()).items}
    assert listed["doc"] == DAMAGED_ETAG  # one bad file hides no neighbour
    assert set(listed) == {"doc", "next"}
    with pytest.raises(PreconditionFailedError):
        await store.put("doc", b"new", mode=CREATE)
    await store.put("doc", b"new", mode=IfMatch(DAMAGED_ETAG))
    assert (await store.get("doc")).data == b"new"


async def test_a_truncated_local_body_is_corrupt_with_its_bytes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await store.put("doc", b"x" * 100)
    path = store.path_of("doc")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptBlobError, match="90 of 100 bytes") as raised:
        await store.get("doc")
    assert raised.value.raw is not None
