"""File helpers of :mod:`balances.blobs.local`: the header format, temp files, walking.

All functions block; the store runs them in worker threads.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from balances.blobs.base import BlobInfo
from balances.errors import CorruptBlobError

# preadv2(RWF_NOWAIT) reads only what is in the page cache and never waits for a disk.
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
MAGIC = b"balances-blob/1 "
MAX_HEADER_BYTES = 8192
TEMP_SUFFIX = ".tmp"
#: The etag listed (and matched by conditions) for a file whose header is damaged.
DAMAGED_ETAG = "damaged-header"


def header(info: BlobInfo) -> bytes:
    """The first line of a blob file: magic, then the info as one line of JSON."""
    fields = {
        "etag": info.etag,
        "type": info.content_type,
        "size": info.size,
        "at": info.uploaded_at.isoformat() if info.uploaded_at else None,
    }
    return MAGIC + json.dumps(fields, separators=(",", ":")).encode("ascii") + b"\n"


def parse_header(key: str, raw: bytes) -> tuple[BlobInfo, int]:
    """The info in a blob file's first line, and where the bytes start."""
    end = raw.find(b"\n", 0, MAX_HEADER_BYTES)
    if not raw.startswith(MAGIC) or end < 0:
        raise CorruptBlobError(f"blob {key!r} is not a balances blob file", key=key, raw=raw)
    try:
        fields = json.loads(raw[len(MAGIC) : end])
        at = fields["at"]
        info = BlobInfo(
            key=key,
            etag=str(fields["etag"]),
            size=int(fields["size"]),
            content_type=fields["type"],
            uploaded_at=datetime.fromisoformat(at) if at else None,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptBlobError(
            f"blob {key!r} has a damaged header: {error}", key=key, raw=raw
        ) from error
    return info, end + 1


def read_if_cached(path: Path, limit: int | None = None) -> bytes | None:
    """The file's bytes (the first ``limit`` of them) if the page cache holds them all.

    None means "would wait for the disk, or the kernel cannot tell": read in a
    worker thread instead. Raises FileNotFoundError for a missing file.
    """
    if _NOWAIT is None:
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        wanted = size if limit is None else min(size, limit)
        buffer = bytearray(wanted)
        try:
            count = os.preadv(descriptor, [buffer], 0, _NOWAIT) if wanted else 0
        except OSError:  # BlockingIOError: not cached; EOPNOTSUPP: tmpfs and others
            return None
        return bytes(buffer) if count == wanted else None
    finally:
        os.close(descriptor)


def write_temp(directory: Path, target_name: str, head: bytes, payload: bytes, sync: bool) -> Path:
    """Write ``head + payload`` to a new temp file beside the target; fsync it if ``sync``."""
    temp = directory / f".{target_name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        with open(temp, "xb") as file:
            file.write(head)
            file.write(payload)
            file.flush()
            if sync:
                os.fsync(file.fileno())
    except BaseException:
        unlink_quietly(temp)
        raise
    return temp


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


def walk_keys(
    directory: Path, key_prefix: str, segment_of_dir: Callable[[str], str], suffix: str
) -> Iterator[str]:
    """Every key stored under ``directory``, skipping our dot files."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            child_prefix = key_prefix + segment_of_dir(name) + "/"
            yield from walk_keys(Path(entry.path), child_prefix, segment_of_dir, suffix)
        elif name.endswith(suffix) and entry.is_file(follow_symlinks=False):
            yield key_prefix + name[: -len(suffix)]


def remove_temp_files(root: Path, older_than: float) -> int:
    """Delete temp files older than ``older_than`` seconds under ``root``."""
    cutoff = time.time() - older_than
    removed = 0
    for directory, _, files in os.walk(root):
        for name in files:
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                continue
            path = Path(directory, name)
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
    return removed
