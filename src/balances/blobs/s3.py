"""``S3BlobStore``: S3 and S3-compatible stores (MinIO, R2 ...), GCS and Azure via obstore.

Conditional writes use the HTTP preconditions of the object store API:
:class:`~balances.blobs.base.Create` sends ``If-None-Match: *`` and
:class:`~balances.blobs.base.IfMatch` sends ``If-Match: <etag>`` (obstore's
``PutMode`` "create" and ``UpdateVersion``). For S3 the store is opened with
``conditional_put="etag"``. A server that rejects the headers as unsupported gives
:class:`~balances.errors.UnsupportedConditionError`; a store known to ignore them
should be opened with ``conditional_writes=False``, which refuses conditional
writes instead of silently overwriting.

Credentials come from obstore's usual sources (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` ... or explicit options). This module imports obstore, so
import it only when an object store is wanted (``open_blob_store`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import obstore.exceptions as obstore_errors
from obstore.store import from_url as obstore_from_url

from balances.blobs.base import (
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
    check_limit,
    check_mode,
    keys_of,
)
from balances.blobs.keys import validate_key, validate_prefix
from balances.errors import (
    BlobBackendError,
    BlobNotFoundError,
    BlobStoreError,
    ConfigError,
    PreconditionFailedError,
    UnsupportedConditionError,
)

if TYPE_CHECKING:
    from obstore import ObjectMeta, PutMode
    from obstore.store import ClientConfig, ObjectStore

_S3_SCHEMES = ("s3://", "s3a://")
# The largest code point: "<prefix minus last char><last char - 1><this>" sorts just
# below every key that starts with the prefix, so listing can start right there.
_MAX_CHAR = "\U0010ffff"


class S3BlobStore(BlobStore):
    """A :class:`BlobStore` over an obstore ``ObjectStore`` (S3, GCS, Azure)."""

    def __init__(self, store: ObjectStore, *, conditional_writes: bool = True) -> None:
        self._store: ObjectStore | None = store
        self._conditional_writes = conditional_writes

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        allow_http: bool = False,
        conditional_writes: bool = True,
        client_options: ClientConfig | None = None,
        **config: Any,
    ) -> S3BlobStore:
        """Open ``s3://bucket/prefix`` (or ``gs://``, ``az://``); ``config`` goes to obstore.

        ``endpoint`` points at an S3-compatible server (MinIO, R2, a local test
        server); ``allow_http`` permits a plain-HTTP endpoint such as a loopback one.
        """
        options: dict[str, Any] = dict(client_options or {})
        if allow_http:
            options["allow_http"] = True
        if url.startswith(_S3_SCHEMES):
            config.setdefault("conditional_put", "etag")
            if endpoint is not None:
                config["endpoint"] = endpoint
            if region is not None:
                config["region"] = region
        elif endpoint is not None or region is not None:
            raise ConfigError("endpoint and region apply to s3:// URLs only")
        try:
            # The config keys differ per scheme (S3Config, GCSConfig, AzureConfig).
            store = obstore_from_url(
                url,
                config=cast(Any, config) or None,
                client_options=cast("ClientConfig", options) if options else None,
            )
        except (obstore_errors.BaseError, ValueError, TypeError) as error:
            raise ConfigError(f"cannot open {url!r}: {error}") from error
        return cls(store, conditional_writes=conditional_writes)

    def _require(self) -> ObjectStore:
        if self._store is None:
            raise BlobStoreError("this S3BlobStore is closed")
        return self._store

    async def get(self, key: str) -> Blob:
        validate_key(key)
        try:
            result = await self._require().get_async(key)
            data = bytes(await result.bytes_async())
        except BlobStoreError:
            raise
        except Exception as error:
            raise _translate(error, key, None) from error
        return Blob(data, _info(key, result.meta, result.attributes))

    async def head(self, key: str) -> BlobInfo:
        validate_key(key)
        try:
            # A HEAD request that, unlike head_async, also returns the Content-Type.
            result = await self._require().get_async(key, options={"head": True})
        except BlobStoreError:
            raise
        except Exception as error:
            raise _translate(error, key, None) from error
        return _info(key, result.meta, result.attributes)

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
        if not isinstance(mode, Overwrite) and not self._conditional_writes:
            raise UnsupportedConditionError(
                f"this store was opened with conditional_writes=False; cannot honour {mode!r}"
            )
        payload = bytes(data)
        try:
            result = await self._require().put_async(
                key,
                payload,
                mode=_put_mode(mode),
                attributes={"Content-Type": content_type},
                use_multipart=False if not isinstance(mode, Overwrite) else None,
            )
        except BlobStoreError:
            raise
        except Exception as error:
            raise _translate(error, key, mode) from error
        etag = result["e_tag"]
        if not etag:
            return await self.head(key)
        return BlobInfo(key, etag, len(payload), content_type, None)

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        validate_prefix(prefix)
        limit = check_limit(limit)
        directory, offset = _list_start(prefix, cursor)
        found: list[BlobInfo] = []
        try:
            stream = self._require().list(directory, offset=offset, chunk_size=limit + 1)
            async for chunk in stream:
                if _collect(chunk, prefix, found, limit + 1):
                    break
        except BlobStoreError:
            raise
        except Exception as error:
            raise _translate(error, prefix, None) from error
        if len(found) > limit:
            return BlobPage(found[:limit], found[limit - 1].key)
        return BlobPage(found, None)

    async def delete(self, keys: str | Iterable[str]) -> None:
        wanted = [validate_key(key) for key in keys_of(keys)]
        if not wanted:
            return
        store = self._require()
        try:
            await store.delete_async(wanted)  # one bulk request per 1000 keys on S3
        except FileNotFoundError:
            # Stores without bulk delete report missing keys; delete one by one.
            for key in wanted:
                await self._delete_one(key)
        except Exception as error:
            raise _translate(error, wanted[0], None) from error

    async def _delete_one(self, key: str) -> None:
        try:
            await self._require().delete_async(key)
        except FileNotFoundError:
            return
        except Exception as error:
            raise _translate(error, key, None) from error

    async def close(self) -> None:
        # Dropping the obstore store lets its connection pool shut down while the
        # interpreter is alive; tokio tasks left running at exit can abort the process.
        self._store = None


def _put_mode(mode: WriteMode) -> PutMode:
    if isinstance(mode, Create):
        return "create"
    if isinstance(mode, IfMatch):
        return {"e_tag": mode.etag}
    return "overwrite"


def _info(key: str, meta: ObjectMeta, attributes: Mapping[str, Any]) -> BlobInfo:
    content_type = attributes.get("Content-Type")
    uploaded_at: datetime | None = meta.get("last_modified")
    return BlobInfo(
        key=key,
        etag=meta.get("e_tag") or "",
        size=int(meta["size"]),
        content_type=str(content_type) if content_type is not None else None,
        uploaded_at=uploaded_at,
    )


def _list_start(prefix: str, cursor: str | None) -> tuple[str | None, str | None]:
    """The obstore listing directory and the offset to list after."""
    directory = prefix.rpartition("/")[0] or None
    if cursor is not None:
        return directory, max(cursor, _below(prefix)) if prefix else cursor
    return directory, _below(prefix) if prefix else None


def _below(prefix: str) -> str:
    """A string just below every key that starts with ``prefix``."""
    head, last = prefix[:-1], ord(prefix[-1])
    if last <= 0x20:
        return head  # no valid key has a control character between head and prefix
    below = last - 1 if not 0xD800 <= last - 1 <= 0xDFFF else 0xD7FF  # skip surrogates
    return head + chr(below) + _MAX_CHAR


def _collect(chunk: Iterable[ObjectMeta], prefix: str, found: list[BlobInfo], wanted: int) -> bool:
    """Add the chunk's keys under ``prefix`` to ``found``; True once the page is full."""
    for meta in chunk:
        path = meta["path"]
        if not path.startswith(prefix):
            if path > prefix:
                return True  # sorted: nothing after this matches
            continue
        found.append(_info(path, meta, {}))
        if len(found) >= wanted:
            return True
    return False


def _translate(error: Exception, key: str, mode: WriteMode | None) -> BlobStoreError:
    """Map an obstore (or builtin) exception to our error tree."""
    message = str(error).split("\n", 1)[0][:300]
    conditional = mode is not None and not isinstance(mode, Overwrite)
    if isinstance(error, FileNotFoundError | obstore_errors.NotFoundError):
        if isinstance(mode, IfMatch):
            return PreconditionFailedError(f"blob {key!r} does not exist (expected {mode.etag})")
        return BlobNotFoundError(f"no blob under {key!r}")
    if isinstance(error, obstore_errors.AlreadyExistsError):
        return PreconditionFailedError(f"blob {key!r} already exists")
    if isinstance(error, obstore_errors.PreconditionError):
        return PreconditionFailedError(f"blob {key!r} changed or is missing: {message}")
    if conditional and isinstance(error, obstore_errors.NotSupportedError | NotImplementedError):
        return UnsupportedConditionError(f"the object store cannot honour {mode!r}: {message}")
    return BlobBackendError(f"object store failed on {key!r}: {message}", key=key)
