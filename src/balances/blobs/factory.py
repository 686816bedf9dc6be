"""``open_blob_store``: the one place that turns a store URL into a concrete backend.

Code above the blobs layer (stores, service) asks for a store by URL and sees only
the :class:`~balances.blobs.base.BlobStore` protocol.
"""

from __future__ import annotations

from typing import Any

from balances.blobs.base import BlobStore
from balances.blobs.local import DEFAULT_ROOT, LocalBlobStore
from balances.blobs.memory import MemoryBlobStore
from balances.errors import ConfigError

DEFAULT_BLOB_URL = "file://" + DEFAULT_ROOT
# Schemes obstore serves (S3 and S3-compatible, Google Cloud Storage, Azure).
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl"})
_LOCAL_OPTIONS = frozenset({"fsync", "inline_cached_reads"})
_VERCEL_OPTIONS = frozenset(
    {"token", "api_url", "access", "cache_control_max_age", "read_url", "max_retries", "timeout"}
)


def open_blob_store(url: str = DEFAULT_BLOB_URL, **options: Any) -> BlobStore:
    """Open the blob store that ``url`` names; no I/O happens until it is used.

    - ``file://PATH``: a local directory (``file://./.balances``, ``file:///srv/b``;
      ``file://`` alone is ``./.balances``). Option: ``fsync`` (default True).
    - ``memory://``: process memory.
    - ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix``:
      through obstore (install the ``s3`` extra). Options: ``endpoint``, ``region``,
      ``allow_http``, ``conditional_writes`` and any obstore config key
      (``access_key_id`` ...); credentials otherwise come from the usual
      ``AWS_*`` / ``GOOGLE_*`` / ``AZURE_*`` environment variables.
    - ``vercel://``: Vercel Blob. Options: ``token`` (required: the
      ``BLOB_READ_WRITE_TOKEN`` value), ``api_url`` (``VERCEL_BLOB_API_URL``),
      ``access`` (``public``/``private``), ``cache_control_max_age`` (the
      ``blob_cache_control`` setting, >= 60), ``read_url``, ``max_retries``, ``timeout``.

    Raises :class:`~balances.errors.ConfigError` for an unknown scheme or option.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise ConfigError(f"blob store URL {url!r} has no scheme; e.g. {DEFAULT_BLOB_URL}")
    if scheme == "memory":
        _check_options(scheme, options, frozenset())
        return MemoryBlobStore()
    if scheme == "file":
        _check_options(scheme, options, _LOCAL_OPTIONS)
        return LocalBlobStore(rest or DEFAULT_ROOT, **options)
    if scheme in OBJECT_STORE_SCHEMES:
        return _open_object_store(url, options)
    if scheme == "vercel":
        return _open_vercel(rest, options)
    known = "file://, memory://, s3://, gs://, az://, vercel://"
    raise ConfigError(f"unknown blob store URL scheme {scheme + '://'!r}; use one of {known}")


def _check_options(scheme: str, options: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(f"{scheme}:// does not take {unknown}; it accepts: {accepted}")


def _open_object_store(url: str, options: dict[str, Any]) -> BlobStore:
    try:
        from balances.blobs.s3 import S3BlobStore  # optional: needs obstore
    except ImportError as error:
        raise ConfigError(f"{url!r} needs obstore: pip install 'balances[s3]'") from error
    return S3BlobStore.from_url(url, **options)


def _open_vercel(rest: str, options: dict[str, Any]) -> BlobStore:
    from balances.blobs.vercel import VercelBlobStore

    if rest:
        raise ConfigError("use vercel:// with options (token=..., access=...), not a path")
    _check_options("vercel", options, _VERCEL_OPTIONS)
    settings = {name: value for name, value in options.items() if value is not None}
    token = settings.pop("token", None)
    if not token:
        raise ConfigError("vercel:// needs token= (the BLOB_READ_WRITE_TOKEN value)")
    return VercelBlobStore(str(token), **settings)
