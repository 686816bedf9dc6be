"""Blob storage: one async ``BlobStore`` protocol and its backends.

The memory and local-directory backends are imported here; the S3 (obstore) and
Vercel (httpx) backends load on first use of their names, so the package imports
without cloud SDKs. Build stores from a URL with :func:`open_blob_store`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from balances.blobs.base import (
    CREATE,
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobPage,
    BlobStore,
    Create,
    IfMatch,
    Overwrite,
    WriteMode,
)
from balances.blobs.factory import DEFAULT_BLOB_URL, open_blob_store
from balances.blobs.health import Problem, StorageHealth, WatchedBlobStore
from balances.blobs.keys import (
    MAX_KEY_BYTES,
    blob_key,
    blob_key_parts,
    escape_key_part,
    unescape_key_part,
    validate_key,
    validate_prefix,
)
from balances.blobs.local import LocalBlobStore
from balances.blobs.memory import MemoryBlobStore
from balances.blobs.metering import (
    CLOUDFLARE_R2,
    S3_STANDARD,
    VERCEL_BLOB,
    CostReport,
    MeteredBlobStore,
    MeterSnapshot,
    PriceTable,
)

if TYPE_CHECKING:
    from balances.blobs.s3 import S3BlobStore
    from balances.blobs.vercel import VercelBlobStore

_LAZY = {"S3BlobStore": "balances.blobs.s3", "VercelBlobStore": "balances.blobs.vercel"}

__all__ = [
    "CLOUDFLARE_R2",
    "CREATE",
    "DEFAULT_BLOB_URL",
    "DEFAULT_CONTENT_TYPE",
    "MAX_KEY_BYTES",
    "MAX_LIST_LIMIT",
    "OVERWRITE",
    "S3_STANDARD",
    "VERCEL_BLOB",
    "Blob",
    "BlobInfo",
    "BlobPage",
    "BlobStore",
    "CostReport",
    "Create",
    "IfMatch",
    "LocalBlobStore",
    "MemoryBlobStore",
    "MeterSnapshot",
    "MeteredBlobStore",
    "Overwrite",
    "PriceTable",
    "Problem",
    "S3BlobStore",
    "StorageHealth",
    "VercelBlobStore",
    "WatchedBlobStore",
    "WriteMode",
    "blob_key",
    "blob_key_parts",
    "escape_key_part",
    "open_blob_store",
    "unescape_key_part",
    "validate_key",
    "validate_prefix",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
