"""``LocalBlobStore``: blobs as files in a directory, the embedded default.

Layout under the root (default ``./.balances``):

- key ``a/b/c.json`` is the file ``a/b/c.json.blob``. Every blob file ends in
  ``.blob`` and no directory does (a directory whose segment ends in ``.blob``,
  ``.blob_`` ... gets one more ``_``), so the keys ``a`` and ``a/b`` can coexist;
- each file is one header line (etag, content type, size, upload time) followed by
  the bytes, so data and metadata change together in one rename;
- dot files are ours (keys may not start a segment with ``.``): temp files
  ``.<name>.<random>.tmp`` beside their target, and lock files in ``.locks/``.

Writes are atomic and durable: the bytes go to a temp file in the target's
directory, which is fsynced, renamed over the target and the directory fsynced.
A reader, or a writer killed at any moment, sees the old blob or the new one,
never a mix. Every write holds an exclusive ``fcntl.flock`` on one of 256 lock
files (chosen by a hash of the key) while it checks its condition, renames and
fsyncs the directory, so conditional writes hold across threads and processes on
one machine (POSIX only; not over NFS, where flock may be local to each client).
Reads of files the page cache holds happen inline (``preadv2`` with
``RWF_NOWAIT``, which never waits for a disk); every other blocking file
operation runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from balances.blobs import localfs
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
    check_condition,
    check_limit,
    check_mode,
    content_etag,
    keys_of,
    page_of,
)
from balances.blobs.keys import validate_key, validate_prefix
from balances.blobs.localfs import DAMAGED_ETAG
from balances.errors import BlobBackendError, BlobNotFoundError, BlobStoreError, CorruptBlobError

DEFAULT_ROOT = "./.balances"
BLOB_SUFFIX = ".blob"
_ESCAPED_DIR = re.compile(r"\.blob_*\Z")
_LOCK_DIR = ".locks"


def dir_name(segment: str) -> str:
    """The directory name of a key segment: never ends in ``.blob``, and reversible."""
    return segment + "_" if _ESCAPED_DIR.search(segment) else segment


def segment_of_dir(name: str) -> str:
    """Inverse of :func:`dir_name`."""
    return name[:-1] if _ESCAPED_DIR.search(name) and name.endswith("_") else name


class LocalBlobStore(BlobStore):
    """Blobs in a local directory, safe for many tasks, threads and processes."""

    def __init__(
        self,
        root: str | os.PathLike[str] = DEFAULT_ROOT,
        *,
        fsync: bool = True,
        inline_cached_reads: bool = True,
    ) -> None:
        """``fsync=False`` trades durability on power loss for speed (atomicity stays);
        ``inline_cached_reads=False`` sends every read to a worker thread."""
        # Absolute now, so a later chdir cannot move the store.
        self._root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        self._fsync = fsync
        self._inline_reads = inline_cached_reads
        self._closed = False

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (it may not exist)."""
        segments = validate_key(key).split("/")
        directories = [dir_name(segment) for segment in segments[:-1]]
        return self._root.joinpath(*directories, segments[-1] + BLOB_SUFFIX)

    def _check_open(self) -> None:
        if self._closed:
            raise BlobStoreError("this LocalBlobStore is closed")

    async def get(self, key: str) -> Blob:
        path = self.path_of(key)
        self._check_open()
        # Cached bytes are read inline (microseconds); a thread hop costs far more.
        raw = self._cached(key, path, None)
        if raw is None:
            return await asyncio.to_thread(self._read, key, path)
        return _blob_of(key, raw)

    async def head(self, key: str) -> BlobInfo:
        path = self.path_of(key)
        self._check_open()
        raw = self._cached(key, path, localfs.MAX_HEADER_BYTES)
        if raw is None:
            return await asyncio.to_thread(self._read_info, key, path)
        return localfs.parse_header(key, raw)[0]

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        path = self.path_of(key)
        check_mode(mode)
        self._check_open()
        payload = bytes(data)
        info = BlobInfo(key, content_etag(payload), len(payload), content_type, datetime.now(UTC))
        await asyncio.to_thread(self._write, path, info, payload, mode)
        return info

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        validate_prefix(prefix)
        limit = check_limit(limit)
        self._check_open()
        return await asyncio.to_thread(self._list, prefix, cursor, limit)

    async def delete(self, keys: str | Iterable[str]) -> None:
        paths = [(key, self.path_of(key)) for key in keys_of(keys)]
        self._check_open()
        if paths:
            await asyncio.to_thread(self._delete, paths)

    async def close(self) -> None:
        self._closed = True

    async def remove_stale_temp_files(self, older_than: float = 3600.0) -> int:
        """Delete temp files left by killed writers; the number removed."""
        self._check_open()
        return await asyncio.to_thread(localfs.remove_temp_files, self._root, older_than)

    # --- blocking parts, run in worker threads --------------------------------

    def _cached(self, key: str, path: Path, limit: int | None) -> bytes | None:
        if not self._inline_reads:
            return None
        try:
            return localfs.read_if_cached(path, limit)
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob under {key!r}") from None
        except OSError:
            return None  # let the thread path report it

    def _read(self, key: str, path: Path) -> Blob:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob under {key!r}") from None
        except OSError as error:
            raise BlobBackendError(f"cannot read blob {key!r}: {error}", key=key) from error
        return _blob_of(key, raw)

    def _read_info(self, key: str, path: Path) -> BlobInfo:
        info = self._current_info(key, path)
        if info is None:
            raise BlobNotFoundError(f"no blob under {key!r}")
        return info

    def _current_info(self, key: str, path: Path) -> BlobInfo | None:
        try:
            with path.open("rb") as file:
                line = file.readline(localfs.MAX_HEADER_BYTES)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BlobBackendError(f"cannot read blob {key!r}: {error}", key=key) from error
        return localfs.parse_header(key, line)[0]

    def _write(self, path: Path, info: BlobInfo, payload: bytes, mode: WriteMode) -> None:
        directory = path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            temp = localfs.write_temp(
                directory, path.name, localfs.header(info), payload, self._fsync
            )
        except OSError as error:
            raise BlobBackendError(
                f"cannot write blob {info.key!r}: {error}", key=info.key
            ) from error
        try:
            with self._locked(info.key):
                if not isinstance(mode, Overwrite):
                    check_condition(info.key, mode, self._current_etag(info.key, path))
                os.replace(temp, path)
                if self._fsync:
                    localfs.fsync_directory(directory)
        except OSError as error:
            raise BlobBackendError(
                f"cannot write blob {info.key!r}: {error}", key=info.key
            ) from error
        finally:
            localfs.unlink_quietly(temp)  # already renamed unless something failed

    def _delete(self, paths: Sequence[tuple[str, Path]]) -> None:
        for key, path in paths:
            with self._locked(key):
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as error:
                    raise BlobBackendError(
                        f"cannot delete blob {key!r}: {error}", key=key
                    ) from error
                if self._fsync:
                    localfs.fsync_directory(path.parent)

    def _list(self, prefix: str, cursor: str | None, limit: int) -> BlobPage:
        base, _, _partial = prefix.rpartition("/")
        start = self._root.joinpath(*(dir_name(part) for part in base.split("/") if part))
        key_prefix = base + "/" if base else ""
        found = sorted(
            key
            for key in localfs.walk_keys(start, key_prefix, segment_of_dir, BLOB_SUFFIX)
            if key.startswith(prefix)
        )
        keys, next_cursor = page_of(found, prefix, cursor, limit)
        items = [info for key in keys if (info := self._listed_info(key, self.path_of(key)))]
        return BlobPage(items, next_cursor)

    def _current_etag(self, key: str, path: Path) -> str | None:
        """The etag a condition compares with (a damaged header's placeholder, so
        that repair can replace exactly the damaged file it read)."""
        try:
            current = self._current_info(key, path)
        except CorruptBlobError:
            return DAMAGED_ETAG
        return None if current is None else current.etag

    def _listed_info(self, key: str, path: Path) -> BlobInfo | None:
        """The info a listing shows: a file whose header is damaged is still listed
        (with a placeholder etag), so that one bad file cannot hide its neighbours
        from readers, verification and repair."""
        try:
            return self._current_info(key, path)
        except CorruptBlobError:
            size = path.stat().st_size
            return BlobInfo(key, DAMAGED_ETAG, size, "application/octet-stream", None)

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """Hold the exclusive flock of ``key``'s lock shard (blocking)."""
        import fcntl  # POSIX only; imported here so the package imports everywhere

        shard = hashlib.blake2b(key.encode("utf-8"), digest_size=1).hexdigest()
        lock_dir = self._root / _LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_dir / f"{shard}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing the descriptor releases the lock


def _blob_of(key: str, raw: bytes) -> Blob:
    """Split a blob file into its info and bytes, checking they belong together."""
    info, body_start = localfs.parse_header(key, raw)
    data = raw[body_start:]
    if len(data) != info.size:
        raise CorruptBlobError(
            f"blob {key!r} is damaged: {len(data)} of {info.size} bytes", key=key, raw=raw
        )
    return Blob(data, info)
