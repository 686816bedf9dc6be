"""The Vercel Blob HTTP API as ``@vercel/blob`` 2.8.0 speaks it: URLs, headers, errors.

Pure helpers of :mod:`balances.blobs.vercel`; see
``shared/reference/vercel-blob/client-2.8.0-request-capture.json`` for what the
official SDK sends and PROTOCOLS.md section 7 for the rest.
"""

from __future__ import annotations

import email.utils
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from balances.blobs.base import BlobInfo, Create, IfMatch, WriteMode
from balances.errors import (
    BlobBackendError,
    BlobNotFoundError,
    BlobStoreError,
    ConfigError,
    PreconditionFailedError,
)

DEFAULT_API_URL = "https://vercel.com/api/blob"
API_VERSION = "12"
MIN_CACHE_MAX_AGE = 60
DEFAULT_CACHE_MAX_AGE = 300
# The SDK retries these codes (and network errors); we add 429 after its retry-after.
RETRYABLE_CODES = frozenset({"unknown_error", "service_unavailable", "internal_server_error"})


def store_id_of(token: str) -> str:
    """The store id: the 4th ``_``-separated field of ``vercel_blob_rw_<id>_<secret>``."""
    fields = token.split("_") if isinstance(token, str) else []
    if len(fields) < 5 or not fields[3]:
        raise ConfigError(
            "a Vercel Blob read-write token looks like vercel_blob_rw_<storeId>_<secret> "
            "(BLOB_READ_WRITE_TOKEN)"
        )
    return fields[3]


def form_encode(value: str) -> str:
    """Encode a query value as JavaScript's ``URLSearchParams`` does.

    It keeps ``*-._`` and ASCII letters and digits, writes a space as ``+`` and
    percent-encodes everything else, ``~`` and ``/`` included.
    """
    return quote_plus(value, safe="*").replace("~", "%7E")


def query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{name}={form_encode(value)}" for name, value in pairs)


def request_id(store_id: str) -> str:
    """``<storeId>:<ms>:<hex>``, like the SDK's ``Math.random().toString(16).slice(2)``."""
    return f"{store_id}:{int(time.time() * 1000)}:{secrets.token_hex(7)[:13]}"


def read_path(key: str) -> str:
    """The path of a blob under its store's read URL."""
    return "/" + quote(key, safe="/")


def put_headers(
    mode: WriteMode, *, access: str, content_type: str, cache_max_age: int
) -> dict[str, str]:
    """The option headers of a put, as the SDK sends them for our write modes.

    Create sends no ``x-allow-overwrite`` (the service refuses to replace a blob by
    default); Overwrite sends ``1``; IfMatch sends ``1`` and ``x-if-match``, as the
    SDK does for ``put(..., {allowOverwrite: true, ifMatch})``.
    """
    headers = {
        "x-vercel-blob-access": access,
        "x-content-type": content_type,
        "x-add-random-suffix": "0",
        "x-cache-control-max-age": str(cache_max_age),
    }
    if not isinstance(mode, Create):
        headers["x-allow-overwrite"] = "1"
    if isinstance(mode, IfMatch):
        headers["x-if-match"] = mode.etag
    return headers


@dataclass(frozen=True, slots=True)
class ApiError:
    """An error answer: HTTP status, the body's ``error.code`` and ``error.message``."""

    status: int
    code: str
    message: str
    retry_after: float | None

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        code, message = "", response.reason_phrase  # e.g. a CDN's plain-text 404
        try:
            body = response.json()
            error = body.get("error") or {}
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
        except (ValueError, AttributeError):
            pass
        return cls(response.status_code, code, message, _retry_after(response))

    @property
    def retryable(self) -> bool:
        return (
            self.status == 429
            or self.code == "rate_limited"
            or self.code in RETRYABLE_CODES
            or self.status >= 500
        )

    def to_exception(self, op: str, key: str, mode: WriteMode | None) -> BlobStoreError:
        """Our error for this answer to ``op`` on ``key``."""
        text = f"Vercel Blob {op} {key!r}: {self.status} {self.code}: {self.message}"
        if self.code == "precondition_failed" or self.status == 412:
            return PreconditionFailedError(text)
        if op == "put" and self.code == "bad_request" and "already exists" in self.message:
            return PreconditionFailedError(text)  # create on an existing pathname
        if self.code == "not_found" or self.status == 404:
            if isinstance(mode, IfMatch):
                return PreconditionFailedError(text)  # the version we matched is gone
            return BlobNotFoundError(text)
        return BlobBackendError(text)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def parse_time(value: Any) -> datetime | None:
    """An ISO ``uploadedAt`` or an HTTP ``last-modified`` date, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def info_of(key: str, body: dict[str, Any], size: int | None = None) -> BlobInfo:
    """A :class:`BlobInfo` from a put, head or list entry."""
    etag = body.get("etag")
    if not isinstance(etag, str) or not etag:
        raise BlobBackendError(f"Vercel Blob answered without an etag for {key!r}")
    content_type = body.get("contentType")
    return BlobInfo(
        key=key,
        etag=etag,
        size=int(body["size"]) if size is None else size,
        content_type=content_type if isinstance(content_type, str) else None,
        uploaded_at=parse_time(body.get("uploadedAt")),
    )
