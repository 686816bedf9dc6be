"""A small shared document in one blob, kept in memory and updated without lost writes.

The tracked set and the token registry are each one document that every replica
reads and, now and then, changes. :class:`SharedDocument` holds the decoded value
and its etag; :meth:`~SharedDocument.current` re-checks the blob at most every
``recheck_seconds`` with a ``head`` (a cheap "simple" operation that moves no
bytes) and downloads only when the etag changed. :meth:`~SharedDocument.update`
applies a pure function to the newest value with a conditional write, re-reading
and re-applying it when another writer won the race.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from balances.blobs import CREATE, BlobStore, IfMatch, WriteMode
from balances.errors import BlobNotFoundError, PreconditionFailedError, WriteConflictError
from balances.stores.encoding import CONTENT_TYPE

T = TypeVar("T")
DEFAULT_ATTEMPTS = 8


class SharedDocument(Generic[T]):
    """One blob ``key`` decoded with ``decode`` (bytes -> T) and written with ``encode``."""

    def __init__(
        self,
        blobs: BlobStore,
        key: str,
        *,
        empty: Callable[[], T],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes, str], T],
        recheck_seconds: float = 60.0,
        attempts: int = DEFAULT_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._blobs = blobs
        self.key = key
        self._empty = empty
        self._encode = encode
        self._decode = decode
        self._recheck = recheck_seconds
        self._attempts = attempts
        self._clock = clock
        self._value: T | None = None
        self._etag: str | None = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> T:
        """The value, re-checked against the blob when older than ``recheck_seconds``."""
        async with self._lock:
            if self._value is None or self._due():
                await self._sync()
            assert self._value is not None
            return self._value

    async def update(self, change: Callable[[T], T | None]) -> T:
        """Apply ``change`` to the newest value and store it; ``change`` returning None
        (or the value unchanged) writes nothing. Returns the value now stored."""
        async with self._lock:
            if self._value is None:
                await self._sync()
            for _ in range(self._attempts):
                assert self._value is not None
                new = change(self._value)
                if new is None or new == self._value:
                    return self._value
                mode: WriteMode = CREATE if self._etag is None else IfMatch(self._etag)
                try:
                    info = await self._blobs.put(
                        self.key, self._encode(new), mode=mode, content_type=CONTENT_TYPE
                    )
                except PreconditionFailedError:
                    await self._download()
                    continue
                self._value, self._etag, self._checked_at = new, info.etag, self._clock()
                return new
            raise WriteConflictError(f"{self.key}: lost {self._attempts} conditional writes")

    def peek(self) -> T | None:
        """The value held in memory, without any I/O (None before the first read)."""
        return self._value

    def invalidate(self) -> None:
        """Forget the copy in memory: the next read goes to the blob."""
        self._checked_at = None

    def _due(self) -> bool:
        return self._checked_at is None or self._clock() - self._checked_at >= self._recheck

    async def _sync(self) -> None:
        if self._etag is not None:
            try:
                info = await self._blobs.head(self.key)
            except BlobNotFoundError:
                info = None
            if info is not None and info.etag == self._etag:
                self._checked_at = self._clock()
                return
        await self._download()

    async def _download(self) -> None:
        try:
            blob = await self._blobs.get(self.key)
        except BlobNotFoundError:
            self._value, self._etag = self._empty(), None
        else:
            self._value, self._etag = self._decode(blob.data, self.key), blob.etag
        self._checked_at = self._clock()
