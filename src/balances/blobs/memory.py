"""``MemoryBlobStore``: the reference semantics, in a dict.

Every operation runs to completion without awaiting in between, so concurrent
asyncio tasks see each put, condition check included, as one atomic step; a
lock also makes it safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from balances.blobs.base import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobPage,
    BlobStore,
    WriteMode,
    check_condition,
    check_limit,
    check_mode,
    content_etag,
    keys_of,
    page_of,
)
from balances.blobs.keys import validate_key, validate_prefix
from balances.errors import BlobNotFoundError, BlobStoreError


class MemoryBlobStore(BlobStore):
    """Blobs in process memory; nothing survives the process."""

    def __init__(self) -> None:
        self._blobs: dict[str, Blob] = {}
        self._sorted: list[str] | None = []
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise BlobStoreError("this MemoryBlobStore is closed")

    async def get(self, key: str) -> Blob:
        validate_key(key)
        self._check_open()
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise BlobNotFoundError(f"no blob under {key!r}")
        return blob

    async def head(self, key: str) -> BlobInfo:
        return (await self.get(key)).info

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        validate_key(key)
        check_mode(mode)
        self._check_open()
        payload = bytes(data)
        info = BlobInfo(key, content_etag(payload), len(payload), content_type, datetime.now(UTC))
        with self._lock:
            current = self._blobs.get(key)
            check_condition(key, mode, current.etag if current else None)
            self._blobs[key] = Blob(payload, info)
            if current is None:
                self._sorted = None
        return info

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        validate_prefix(prefix)
        limit = check_limit(limit)
        self._check_open()
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._blobs)
            keys, next_cursor = page_of(self._sorted, prefix, cursor, limit)
            items = [self._blobs[key].info for key in keys]
        return BlobPage(items, next_cursor)

    async def delete(self, keys: str | Iterable[str]) -> None:
        wanted = [validate_key(key) for key in keys_of(keys)]
        self._check_open()
        with self._lock:
            for key in wanted:
                if self._blobs.pop(key, None) is not None:
                    self._sorted = None

    async def close(self) -> None:
        self._closed = True
