"""``VercelBlobStore``: Vercel Blob through its HTTP API, spoken with httpx.

Requests match what the official ``@vercel/blob`` 2.8.0 SDK sends (see
:mod:`balances.blobs.vercel_api`). Reads go to the store's own URL
(``https://<storeId>.<access>.blob.vercel-storage.com/<pathname>``):

- **private** stores are read with the token and ``?cache=0``, which bypasses
  Vercel's CDN: a read always reflects the latest write;
- **public** stores are read through the CDN, which may serve the previous
  version of an overwritten blob for up to its cache max-age. The etag returned
  is the one of the bytes actually served (the response's ``ETag``), so a
  conditional write based on a stale read fails with
  :class:`~balances.errors.PreconditionFailedError` instead of losing an update.
  Use a private store (or write-once pathnames) for blobs that are
  read-modify-written.

Rate limits (429) are retried after ``retry-after`` (capped), and network errors
and 5xx answers with a jittered exponential backoff, ``max_retries`` times, then
:class:`~balances.errors.BlobBackendError`. When a conditional put whose earlier
attempt may have been applied is then refused, the store reads the blob back and
reports success if it holds exactly our bytes.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from balances.blobs import vercel_api as api
from balances.blobs.base import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobPage,
    BlobStore,
    Overwrite,
    WriteMode,
    check_limit,
    check_mode,
    keys_of,
)
from balances.blobs.keys import validate_key, validate_prefix
from balances.errors import BlobBackendError, BlobStoreError, ConfigError, PreconditionFailedError

Access = Literal["public", "private"]
_DELETE_BATCH = 1000
_MAX_BACKOFF = 5.0


@dataclass
class _Attempts:
    """What the retry loop learned: whether an earlier attempt may have taken effect."""

    uncertain: bool = False


class VercelBlobStore(BlobStore):
    """A :class:`BlobStore` on one Vercel Blob store."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = api.DEFAULT_API_URL,
        access: Access = "public",
        cache_control_max_age: int = api.DEFAULT_CACHE_MAX_AGE,
        read_url: str | None = None,
        max_retries: int = 3,
        max_retry_after: float = 30.0,
        retry_base_delay: float = 0.2,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store_id = api.store_id_of(token)
        if access not in ("public", "private"):
            raise ConfigError(f"access must be 'public' or 'private', not {access!r}")
        if cache_control_max_age < api.MIN_CACHE_MAX_AGE:
            raise ConfigError(
                f"Vercel Blob caches for at least {api.MIN_CACHE_MAX_AGE} s; "
                f"cache_control_max_age={cache_control_max_age} is too low"
            )
        self._token = token
        self._api_url = api_url.rstrip("/")
        self._access: Access = access
        self._cache_max_age = int(cache_control_max_age)
        default_read = f"https://{self._store_id}.{access}.blob.vercel-storage.com"
        self._read_url = (read_url or default_read).rstrip("/")
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._retry_base_delay = retry_base_delay
        self._sleep = sleep
        self._closed = False
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)

    @property
    def store_id(self) -> str:
        return self._store_id

    # --- the BlobStore operations ----------------------------------------------

    async def get(self, key: str) -> Blob:
        validate_key(key)
        url = self._read_url + api.read_path(key)
        headers: dict[str, str] = {}
        if self._access == "private":
            url += "?cache=0"  # bypass the CDN: read-after-write consistent
            headers = {"authorization": f"Bearer {self._token}", "x-vercel-blob-access": "private"}
        response = await self._send("GET", url, "get", key, headers=headers, api_call=False)
        etag = response.headers.get("etag")
        if not etag:
            raise BlobBackendError(f"read of {key!r} had no ETag: cannot tie bytes to a version")
        data = response.content
        info = BlobInfo(
            key=key,
            etag=etag,
            size=len(data),
            content_type=response.headers.get("content-type"),
            uploaded_at=api.parse_time(response.headers.get("last-modified")),
        )
        return Blob(data, info)

    async def head(self, key: str) -> BlobInfo:
        validate_key(key)
        url = f"{self._api_url}?{api.query([('url', key)])}"
        response = await self._send("GET", url, "head", key)
        return api.info_of(key, self._json(response, key))

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
        payload = bytes(data)
        url = f"{self._api_url}/?{api.query([('pathname', key)])}"
        headers = api.put_headers(
            mode, access=self._access, content_type=content_type, cache_max_age=self._cache_max_age
        )
        attempts = _Attempts()
        try:
            response = await self._send(
                "PUT", url, "put", key, headers=headers, content=payload, mode=mode, track=attempts
            )
        except PreconditionFailedError:
            if not attempts.uncertain or isinstance(mode, Overwrite):
                raise
            return await self._own_write_or_raise(key, payload)
        return api.info_of(key, self._json(response, key), size=len(payload))

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        validate_prefix(prefix)
        pairs = [("limit", str(check_limit(limit)))]
        if prefix:
            pairs.append(("prefix", prefix))
        if cursor:
            pairs.append(("cursor", cursor))
        response = await self._send("GET", f"{self._api_url}?{api.query(pairs)}", "list", prefix)
        body = self._json(response, prefix)
        items = [api.info_of(str(entry["pathname"]), entry) for entry in body.get("blobs", [])]
        next_cursor = body.get("cursor") if body.get("hasMore") else None
        return BlobPage(items, str(next_cursor) if next_cursor else None)

    async def delete(self, keys: str | Iterable[str]) -> None:
        wanted = [validate_key(key) for key in keys_of(keys)]
        for start in range(0, len(wanted), _DELETE_BATCH):
            batch = wanted[start : start + _DELETE_BATCH]
            # JSON.stringify: no spaces, non-ASCII kept as UTF-8.
            body = json.dumps({"urls": batch}, separators=(",", ":"), ensure_ascii=False)
            headers = {"content-type": "application/json"}
            url = f"{self._api_url}/delete"
            await self._send(
                "POST", url, "delete", batch[0], headers=headers, content=body.encode()
            )

    async def close(self) -> None:
        self._closed = True
        if self._own_client:
            await self._client.aclose()

    # --- plumbing ---------------------------------------------------------------

    async def _own_write_or_raise(self, key: str, payload: bytes) -> BlobInfo:
        """After an attempt with an unknown outcome, a refusal may mean it was ours."""
        try:
            current = await self.get(key)
        except BlobStoreError:
            current = None
        if current is not None and current.data == payload:
            return current.info
        raise PreconditionFailedError(f"blob {key!r} changed or exists (conditional put refused)")

    def _api_headers(self, request_id: str, attempt: int) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self._token}",
            "x-api-version": api.API_VERSION,
            "x-vercel-blob-store-id": self._store_id,
            "x-api-blob-request-id": request_id,
            "x-api-blob-request-attempt": str(attempt),
        }

    async def _send(
        self,
        method: str,
        url: str,
        op: str,
        key: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        mode: WriteMode | None = None,
        api_call: bool = True,
        track: _Attempts | None = None,
    ) -> httpx.Response:
        """Send with bounded retries; the successful response or our error."""
        if self._closed:
            raise BlobStoreError("this VercelBlobStore is closed")
        attempts = track or _Attempts()
        request_id = api.request_id(self._store_id)
        for attempt in range(self._max_retries + 1):
            sent = dict(headers or {})
            if api_call:
                sent.update(self._api_headers(request_id, attempt))
            last_try = attempt == self._max_retries
            try:
                response = await self._client.request(method, url, headers=sent, content=content)
            except httpx.TransportError as error:
                attempts.uncertain = True
                if last_try:
                    raise BlobBackendError(f"Vercel Blob {op} {key!r}: {error!r}") from error
                await self._sleep(self._backoff(attempt))
                continue
            if response.is_success:
                return response
            failure = api.ApiError.of(response)
            if not failure.retryable or last_try:
                raise failure.to_exception(op, key, mode)
            attempts.uncertain = attempts.uncertain or failure.status >= 500
            await self._sleep(self._delay(failure, attempt))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _delay(self, failure: api.ApiError, attempt: int) -> float:
        if failure.retry_after is not None:
            return min(failure.retry_after, self._max_retry_after)
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(_MAX_BACKOFF, self._retry_base_delay * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def _json(response: httpx.Response, key: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as error:
            raise BlobBackendError(f"Vercel Blob answered {key!r} with non-JSON") from error
        if not isinstance(body, dict):
            raise BlobBackendError(f"Vercel Blob answered {key!r} with {type(body).__name__}")
        return body
