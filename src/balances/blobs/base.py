"""The ``BlobStore`` protocol and the values it trades in.

Every backend (memory, local directory, S3-compatible, Vercel Blob) implements
:class:`BlobStore` with the same semantics, checked by one contract test suite:

- ``get`` / ``head`` raise :class:`~balances.errors.BlobNotFoundError` for a
  missing key;
- ``put`` takes a :data:`WriteMode`: :class:`Create` (fails if the key exists),
  :class:`Overwrite` (unconditional) or :class:`IfMatch` (only if the current
  etag is the given one). A lost condition raises
  :class:`~balances.errors.PreconditionFailedError`; a backend that cannot
  enforce a condition raises :class:`~balances.errors.UnsupportedConditionError`
  and never writes;
- ``list`` pages through keys in lexicographic (code point) order with an opaque
  cursor; ``delete`` takes many keys and ignores the missing ones;
- every key is checked by :func:`~balances.blobs.keys.validate_key` before any I/O.

Etags are opaque strings: compare them for equality, never parse them.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from balances.errors import PreconditionFailedError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_LIST_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Create:
    """Write only if no blob exists under the key (HTTP ``If-None-Match: *``)."""


@dataclass(frozen=True, slots=True)
class Overwrite:
    """Write unconditionally, replacing any blob under the key."""


@dataclass(frozen=True, slots=True)
class IfMatch:
    """Write only if the blob exists and its etag is still ``etag``."""

    etag: str


WriteMode = Create | Overwrite | IfMatch
CREATE = Create()
OVERWRITE = Overwrite()


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What a store knows about a blob without its bytes.

    ``content_type`` and ``uploaded_at`` are None where the backend's answer
    lacks them (listings, or the reply to a put on some backends).
    """

    key: str
    etag: str
    size: int
    content_type: str | None = None
    uploaded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Blob:
    """A blob's bytes and its :class:`BlobInfo`; ``etag`` belongs to exactly these bytes."""

    data: bytes
    info: BlobInfo

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def etag(self) -> str:
        return self.info.etag

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def content_type(self) -> str | None:
        return self.info.content_type

    @property
    def uploaded_at(self) -> datetime | None:
        return self.info.uploaded_at


@dataclass(frozen=True, slots=True)
class BlobPage:
    """One page of a listing; ``cursor`` is None on the last page."""

    items: list[BlobInfo]
    cursor: str | None = None

    @property
    def keys(self) -> list[str]:
        return [item.key for item in self.items]


def content_etag(data: bytes) -> str:
    """A quoted etag derived from the bytes alone (as S3's MD5 etag is).

    Writing the same bytes again gives the same etag; a conditional write made from
    those bytes is then still correct, because the content it read is current.
    """
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def check_mode(mode: object) -> WriteMode:
    """Reject anything that is not a :data:`WriteMode` before it reaches a backend."""
    if not isinstance(mode, Create | Overwrite | IfMatch):
        raise TypeError(f"mode must be Create(), Overwrite() or IfMatch(etag), not {mode!r}")
    if isinstance(mode, IfMatch) and (not isinstance(mode.etag, str) or not mode.etag):
        raise ValueError("IfMatch needs a non-empty etag string")
    return mode


def check_condition(key: str, mode: WriteMode, current_etag: str | None) -> None:
    """Raise :class:`PreconditionFailedError` if ``mode`` forbids replacing ``current_etag``.

    ``current_etag`` is None when no blob exists under ``key``.
    """
    if isinstance(mode, Create) and current_etag is not None:
        raise PreconditionFailedError(f"blob {key!r} already exists")
    if isinstance(mode, IfMatch) and current_etag != mode.etag:
        state = "does not exist" if current_etag is None else "has changed"
        raise PreconditionFailedError(f"blob {key!r} {state} (expected etag {mode.etag})")


def check_limit(limit: int) -> int:
    """Bound a page size to ``1..MAX_LIST_LIMIT`` (Vercel and S3 cap pages at 1000)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    return min(limit, MAX_LIST_LIMIT)


def keys_of(keys: str | Iterable[str]) -> list[str]:
    """``delete`` accepts one key or many; give many, without duplicates, in order."""
    if isinstance(keys, str):
        return [keys]
    return list(dict.fromkeys(keys))


def page_of(
    sorted_keys: list[str], prefix: str, cursor: str | None, limit: int
) -> tuple[list[str], str | None]:
    """One page of ``sorted_keys``: the keys after ``cursor`` that start with ``prefix``.

    The cursor is the last key of the previous page, so a key written between two
    calls shows up in order, and a deleted one simply disappears.
    """
    start = bisect.bisect_right(sorted_keys, cursor) if cursor is not None else 0
    start = max(start, bisect.bisect_left(sorted_keys, prefix))
    page: list[str] = []
    for key in sorted_keys[start : start + limit + 1]:
        if not key.startswith(prefix):
            break
        page.append(key)
    if len(page) > limit:
        return page[:limit], page[limit - 1]
    return page, None


@runtime_checkable
class BlobStore(Protocol):
    """Async blob storage. Backends subclass this to inherit the helpers below."""

    async def get(self, key: str) -> Blob:
        """The blob's bytes and info; :class:`BlobNotFoundError` if missing."""
        ...

    async def head(self, key: str) -> BlobInfo:
        """The blob's info without its bytes; :class:`BlobNotFoundError` if missing."""
        ...

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        """Store ``data`` under ``key`` if ``mode`` allows; the info of the new blob."""
        ...

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        """Up to ``limit`` blobs whose key starts with ``prefix``, after ``cursor``."""
        ...

    async def delete(self, keys: str | Iterable[str]) -> None:
        """Delete every key given; keys that do not exist are not an error."""
        ...

    async def close(self) -> None:
        """Release connections and files; the store is unusable afterwards."""
        ...

    async def iter_blobs(
        self, prefix: str = "", *, page_size: int = MAX_LIST_LIMIT
    ) -> AsyncIterator[BlobInfo]:
        """Every blob under ``prefix``, following the cursor from page to page."""
        cursor: str | None = None
        while True:
            page = await self.list(prefix, cursor=cursor, limit=page_size)
            for item in page.items:
                yield item
            if page.cursor is None:
                return
            cursor = page.cursor

    async def iter_keys(
        self, prefix: str = "", *, page_size: int = MAX_LIST_LIMIT
    ) -> AsyncIterator[str]:
        """Every key under ``prefix``."""
        async for item in self.iter_blobs(prefix, page_size=page_size):
            yield item.key

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
