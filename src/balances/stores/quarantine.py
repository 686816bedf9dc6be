"""Quarantine: damaged blobs are moved aside under ``quarantine/``, never deleted.

A blob that does not decode is evidence (of a bad copy, a full disk, a bug) and
may still hold something an operator wants back, so repair copies its bytes under
``quarantine/<key>/<when>-<digest>`` before removing or replacing the original.
The copy is written with ``Create``: quarantining the same bytes twice keeps one
copy, and nothing under the prefix is ever overwritten.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from balances.blobs import CREATE, BlobStore, IfMatch, validate_key
from balances.blobs.localfs import DAMAGED_ETAG
from balances.errors import BlobNotFoundError, CorruptBlobError, PreconditionFailedError

PREFIX = "quarantine"
CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Stored:
    """A blob's bytes and etag as they are, whether or not its backend could frame it."""

    data: bytes
    etag: str


async def read_raw(blobs: BlobStore, key: str) -> Stored | None:
    """The bytes under ``key`` (None: there is no blob), even when the backend
    itself finds them damaged (a local file with a broken frame)."""
    try:
        blob = await blobs.get(key)
    except BlobNotFoundError:
        return None
    except CorruptBlobError as error:
        return Stored(error.raw or b"", await _etag_of_damaged(blobs, key))
    return Stored(blob.data, blob.etag)


async def _etag_of_damaged(blobs: BlobStore, key: str) -> str:
    try:
        return (await blobs.head(key)).etag
    except CorruptBlobError:
        return DAMAGED_ETAG  # the frame itself is broken: conditions compare with this


def quarantine_key(key: str, data: bytes, now: float) -> str:
    when = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.blake2b(data, digest_size=6).hexdigest()
    return validate_key(f"{PREFIX}/{key}/{when}-{digest}")


def is_quarantined(key: str) -> bool:
    return key.startswith(PREFIX + "/")


async def keep_copy(blobs: BlobStore, key: str, stored: Stored, now: float) -> str:
    """Copy ``stored`` (read from ``key``) under the quarantine prefix; its key."""
    target = quarantine_key(key, stored.data, now)
    with suppress(PreconditionFailedError):  # these very bytes are already kept
        await blobs.put(target, stored.data, mode=CREATE, content_type=CONTENT_TYPE)
    return target


async def quarantine(blobs: BlobStore, key: str, now: float) -> str | None:
    """Move the damaged blob under ``key`` into quarantine; the copy's key (None when
    ``key`` was already gone). The original is removed only while it is still the
    version that was copied: a writer that replaced it meanwhile keeps its write."""
    stored = await read_raw(blobs, key)
    if stored is None:
        return None
    target = await keep_copy(blobs, key, stored, now)
    try:
        still = (await blobs.head(key)).etag
    except BlobNotFoundError:
        return target
    except CorruptBlobError:
        still = DAMAGED_ETAG
    if still == stored.etag:
        await blobs.delete(key)
    return target


async def replace_damaged(
    blobs: BlobStore, key: str, data: bytes, content_type: str, now: float
) -> str | None:
    """Quarantine what is under ``key`` and write ``data`` in its place, conditionally
    on the damaged version (or on there being none): a concurrent repair or writer
    wins and this write fails with :class:`PreconditionFailedError`. Returns the
    quarantine copy's key (None when there was nothing to keep)."""
    stored = await read_raw(blobs, key)
    if stored is None:
        await blobs.put(key, data, mode=CREATE, content_type=content_type)
        return None
    target = await keep_copy(blobs, key, stored, now)
    await blobs.put(key, data, mode=IfMatch(stored.etag), content_type=content_type)
    return target
