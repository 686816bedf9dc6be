"""The store's health as this process has seen it: which blobs failed to read, and why.

:class:`StorageHealth` is fed from two sides. :class:`WatchedBlobStore` wraps the
backend and reports its failures (an unreachable bucket, a local file whose frame
is damaged), and clears a key once it is written or deleted. Whoever decodes a blob
and fails (a :class:`~balances.errors.CorruptBlobError` from a store) reports it
with :meth:`StorageHealth.report`. ``/health`` answers ``degraded`` while any
problem is recent, and ``/metrics`` counts every report by kind.

A damaged blob keeps failing every read, so it keeps being reported; a problem
nobody has met for ``forget_after`` seconds is dropped (a transient outage, or a
blob another replica repaired).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from balances.blobs.base import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobPage,
    BlobStore,
    WriteMode,
)
from balances.errors import (
    BlobBackendError,
    BlobStoreError,
    CorruptBlobError,
    WriteConflictError,
)

log = logging.getLogger("balances.storage")
#: The kinds of storage error, as ``/metrics`` labels them.
KINDS = ("corrupt", "backend", "conflict", "other")
MAX_PROBLEMS = 100


def kind_of(error: BlobStoreError) -> str:
    if isinstance(error, CorruptBlobError):
        return "corrupt"
    if isinstance(error, BlobBackendError):
        return "backend"
    if isinstance(error, WriteConflictError):
        return "conflict"
    return "other"


def reportable(error: BaseException) -> bool:
    """Whether ``error`` says something about the store's health: a missing blob or
    a lost race is the protocol working, not a fault."""
    return isinstance(error, BlobBackendError | CorruptBlobError | WriteConflictError)


@dataclass(frozen=True, slots=True)
class Problem:
    """A blob (or, when ``key`` is None, the store) that failed, and how often."""

    key: str | None
    kind: str
    error: str
    first_seen: float
    last_seen: float
    count: int

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "kind": self.kind,
            "error": self.error,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
        }


class StorageHealth:
    """Recent storage problems by blob key (thread-safe; cheap to report to)."""

    def __init__(
        self, *, forget_after: float = 600.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.forget_after = forget_after
        self._clock = clock
        self._problems: dict[tuple[str | None, str], Problem] = {}
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def report(self, error: BlobStoreError) -> bool:
        """Record ``error``; True when it is news (the first report of this blob and
        kind since it was last healthy), which is logged once, at warning level,
        without a traceback: a damaged blob fails every read of it."""
        kind = kind_of(error)
        now = self._clock()
        with self._lock:
            if error.reported:
                return False
            error.reported = True
            self._counts[kind] += 1
            self._forget_old(now)
            slot = (error.key, kind)
            known = self._problems.get(slot)
            if known is not None:
                self._problems[slot] = replace(
                    known, last_seen=now, count=known.count + 1, error=str(error)
                )
                return False
            if len(self._problems) < MAX_PROBLEMS:
                self._problems[slot] = Problem(error.key, kind, str(error), now, now, 1)
        log.warning("storage %s error%s: %s", kind, f" on {error.key}" if error.key else "", error)
        return True

    def resolved(self, key: str) -> None:
        """``key`` was written, deleted or repaired: whatever failed there is gone."""
        with self._lock:
            for slot in [slot for slot in self._problems if slot[0] == key]:
                del self._problems[slot]

    def clear(self) -> None:
        with self._lock:
            self._problems.clear()

    def problems(self) -> list[Problem]:
        """The problems met within the last ``forget_after`` seconds, oldest first."""
        with self._lock:
            self._forget_old(self._clock())
            return sorted(self._problems.values(), key=lambda p: (p.first_seen, p.key or ""))

    def counts(self) -> dict[str, int]:
        """Every report since start, by kind (a Prometheus counter)."""
        with self._lock:
            return {kind: self._counts[kind] for kind in KINDS}

    def _forget_old(self, now: float) -> None:
        cutoff = now - self.forget_after
        for slot in [slot for slot, p in self._problems.items() if p.last_seen < cutoff]:
            del self._problems[slot]


class WatchedBlobStore(BlobStore):
    """Passes every call to ``inner``, reporting its failures to ``health``."""

    def __init__(self, inner: BlobStore, health: StorageHealth) -> None:
        self.inner = inner
        self.health = health

    def _seen(self, error: BlobStoreError) -> None:
        if reportable(error):
            self.health.report(error)

    async def get(self, key: str) -> Blob:
        try:
            return await self.inner.get(key)
        except BlobStoreError as error:
            self._seen(error)
            raise

    async def head(self, key: str) -> BlobInfo:
        try:
            return await self.inner.head(key)
        except BlobStoreError as error:
            self._seen(error)
            raise

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        try:
            info = await self.inner.put(key, data, mode=mode, content_type=content_type)
        except BlobStoreError as error:
            self._seen(error)
            raise
        self.health.resolved(key)
        return info

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        try:
            return await self.inner.list(prefix, cursor=cursor, limit=limit)
        except BlobStoreError as error:
            self._seen(error)
            raise

    async def delete(self, keys: str | Iterable[str]) -> None:
        wanted = [keys] if isinstance(keys, str) else list(keys)
        try:
            await self.inner.delete(wanted)
        except BlobStoreError as error:
            self._seen(error)
            raise
        for key in wanted:
            self.health.resolved(key)

    async def close(self) -> None:
        await self.inner.close()
