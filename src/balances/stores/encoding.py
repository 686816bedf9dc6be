"""How stores write documents into blobs: JSON (orjson) compressed with zstd.

Every document names its ``kind`` and ``format`` version, so a reader refuses a blob
of another kind or a newer format with a clear :class:`CorruptBlobError` instead of
misreading it. Amounts travel as decimal strings: u128 does not fit a JSON number.
Storage and transfer are billed per byte, hence the compression.
"""

from __future__ import annotations

from typing import Any

import orjson
import zstandard

from balances.errors import CorruptBlobError

CONTENT_TYPE = "application/zstd"
_LEVEL = 6
_MAX_DECODED_BYTES = 512 * 1024 * 1024  # refuse decompression bombs


def encode_document(kind: str, format_version: int, body: dict[str, Any]) -> bytes:
    """``body`` plus its kind and format, as zstd-compressed JSON."""
    document = {"kind": kind, "format": format_version, **body}
    return zstandard.ZstdCompressor(level=_LEVEL).compress(orjson.dumps(document))


def decode_document(data: bytes, kind: str, max_format: int, *, where: str) -> dict[str, Any]:
    """The document in ``data``; ``where`` (a key) names the blob in errors."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=_MAX_DECODED_BYTES)
        document = orjson.loads(raw)
    except (zstandard.ZstdError, orjson.JSONDecodeError) as error:
        raise CorruptBlobError(
            f"blob {where!r} is not a compressed JSON document: {error}", key=where
        ) from error
    if not isinstance(document, dict) or document.get("kind") != kind:
        found = document.get("kind") if isinstance(document, dict) else type(document).__name__
        raise CorruptBlobError(
            f"blob {where!r} holds {found!r}, expected a {kind!r} document", key=where
        )
    version = document.get("format")
    if not isinstance(version, int) or not 1 <= version <= max_format:
        raise CorruptBlobError(
            f"blob {where!r} has format {version!r}; this version reads formats 1..{max_format}",
            key=where,
        )
    return document


def corrupt(where: str, what: str) -> CorruptBlobError:
    """The error for a document whose fields do not have the expected shape."""
    return CorruptBlobError(f"blob {where!r} is malformed: {what}", key=where)
