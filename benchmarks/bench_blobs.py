"""Blob store put/get cost, as ratios to raw file I/O of the same bytes.

- put: ``LocalBlobStore.put`` (temp file, fsync, rename, fsync of the directory,
  under a cross-process lock, in a worker thread) and ``MemoryBlobStore.put``
  against a plain atomic write done inline: open a temp file, write, fsync,
  rename, fsync the directory;
- get: ``LocalBlobStore.get`` (an inline page-cache read, header parsing, a size check) and
  ``MemoryBlobStore.get`` against a plain ``open``/``read`` of the file.

For 1 KB and 100 KB blobs; figures are microseconds per operation (lower is better).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from balances.blobs import LocalBlobStore, MemoryBlobStore
from benchmarks.harness import Result, best_seconds_per_call, best_seconds_per_call_async

US = 1e6
SIZES = {"1KB": 1024, "100KB": 100 * 1024}
# Honest bounds with room for a loaded machine (measured: put ~1.6-1.9x, get ~3x).
# A local put adds hashing, a thread hop and the lock to fsync-dominated raw I/O; a
# local get of a cached file runs inline and adds the header parse and a copy.
TARGETS = {
    ("local put", "1KB"): 3.0,
    ("local put", "100KB"): 3.0,
    ("local get", "1KB"): 6.0,
    ("local get", "100KB"): 6.0,
    ("memory put", "1KB"): 1.0,
    ("memory put", "100KB"): 1.0,
    ("memory get", "1KB"): 1.0,
    ("memory get", "100KB"): 1.0,
}


def _raw_atomic_write(directory: Path, data: bytes) -> Callable[[], None]:
    target = directory / "raw.bin"
    temp = directory / ".raw.bin.tmp"

    def write() -> None:
        with open(temp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    return write


def _raw_read(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        with open(path, "rb") as file:
            return file.read()

    return read


async def _timed(func: Callable[[], Awaitable[object]], number: int, repeat: int) -> float:
    return await best_seconds_per_call_async(func, number=number, repeat=repeat) * US


def _row(name: str, size: str, figure: float, baseline: float, baseline_name: str) -> Result:
    return Result(
        name=f"{name} {size}",
        figure=figure,
        unit="us/op",
        baseline=baseline,
        baseline_name=baseline_name,
        target=TARGETS[(name, size)],
        note="ratio = store / raw file I/O of the same bytes",
    )


async def _rows_for(directory: Path, size: str, quick: bool) -> list[Result]:
    data = os.urandom(SIZES[size])
    writes, reads, repeat = (20, 200, 3) if quick else (100, 2000, 5)
    local = LocalBlobStore(directory / "store")
    memory = MemoryBlobStore()
    await local.put("bench/blob", data)
    await memory.put("bench/blob", data)
    assert (await local.get("bench/blob")).data == data

    raw_write = _raw_atomic_write(directory, data)
    raw_write()
    raw_put = best_seconds_per_call(raw_write, number=writes, repeat=repeat) * US
    raw_get = best_seconds_per_call(_raw_read(directory / "raw.bin"), number=reads, repeat=repeat)
    raw_get *= US

    local_put = await _timed(lambda: local.put("bench/blob", data), writes, repeat)
    local_get = await _timed(lambda: local.get("bench/blob"), reads, repeat)
    memory_put = await _timed(lambda: memory.put("bench/blob", data), reads, repeat)
    memory_get = await _timed(lambda: memory.get("bench/blob"), reads, repeat)
    write_name, read_name = "raw atomic write", "raw read"
    return [
        _row("local put", size, local_put, raw_put, write_name),
        _row("local get", size, local_get, raw_get, read_name),
        _row("memory put", size, memory_put, raw_put, write_name),
        _row("memory get", size, memory_get, raw_get, read_name),
    ]


def _make_directory(scratch: str, name: str) -> Path:
    directory = Path(scratch, name)
    directory.mkdir()
    return directory


async def run(quick: bool) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-blobs-") as scratch:
        for size in SIZES:
            results += await _rows_for(_make_directory(scratch, size), size, quick)
    return results
