"""Racing writers: conditional writes must never lose an update, and crashes never tear.

Every backend runs N asyncio writers incrementing one counter (read, write
if-match, retry on conflict). The local backend also runs N processes, and a
writer killed with SIGKILL mid-write, which must leave the old or the new blob.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from blob_local_worker import churn_payload, is_whole

from balances.blobs import CREATE, BlobStore, IfMatch, LocalBlobStore
from balances.blobs.base import content_etag
from balances.errors import PreconditionFailedError

WORKER = Path(__file__).with_name("blob_local_worker.py")
WRITERS = 8
INCREMENTS = 5


async def increment(store: BlobStore, key: str, times: int) -> int:
    """Add 1 to the counter ``times`` times; the number of conflicts met."""
    conflicts = 0
    for _ in range(times):
        while True:
            blob = await store.get(key)
            await asyncio.sleep(0)  # let the other writers read the same version
            try:
                await store.put(key, b"%d" % (int(blob.data) + 1), mode=IfMatch(blob.etag))
                break
            except PreconditionFailedError:
                conflicts += 1
    return conflicts


async def test_concurrent_conditional_writers_lose_nothing(store: BlobStore) -> None:
    await store.put("counter", b"0", mode=CREATE)
    conflicts = await asyncio.gather(
        *(increment(store, "counter", INCREMENTS) for _ in range(WRITERS))
    )
    assert int((await store.get("counter")).data) == WRITERS * INCREMENTS
    assert sum(conflicts) > 0, "the writers never raced: the test proved nothing"


async def test_concurrent_creates_have_one_winner(store: BlobStore) -> None:
    async def create(index: int) -> bool:
        try:
            await store.put("once", b"%d" % index, mode=CREATE)
        except PreconditionFailedError:
            return False
        return True

    won = await asyncio.gather(*(create(index) for index in range(WRITERS)))
    assert won.count(True) == 1
    assert (await store.get("once")).data == b"%d" % won.index(True)


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


async def test_local_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    store = LocalBlobStore(root)
    await store.put("counter", b"0", mode=CREATE)
    processes = [_worker("increment", str(root), "counter", "25") for _ in range(4)]
    for process in processes:  # all imported and waiting: release them together
        assert process.stdout is not None
        assert await asyncio.to_thread(process.stdout.readline) == "ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [await asyncio.to_thread(process.communicate, None, 120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    assert int((await store.get("counter")).data) == 100
    conflicts = sum(int(stdout) for stdout, _ in outputs)
    assert conflicts > 0, "the processes never raced: the test proved nothing"


@pytest.mark.timeout(180)
async def test_writer_killed_mid_write_never_leaves_a_torn_blob(tmp_path: Path) -> None:
    size = 2 * 1024 * 1024
    root = tmp_path / "killed"
    store = LocalBlobStore(root)
    valid = {churn_payload(sequence, size) for sequence in range(4)}
    killed_mid_write = 0
    for round_number in range(20):
        process = _worker("churn", str(root), "big/blob", str(size))
        assert process.stdout is not None
        assert await asyncio.to_thread(process.stdout.readline) == "ready\n"
        await asyncio.sleep(random.uniform(0.0, 0.15))
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 60)
        process.stdout.close()
        blob = await store.get("big/blob")
        assert is_whole(blob.data, size), f"torn blob after kill {round_number}"
        assert blob.data in valid
        assert blob.etag == content_etag(blob.data)
        assert [key async for key in store.iter_keys()] == ["big/blob"]
        leftovers = list((root / "big").glob(".*.tmp"))
        killed_mid_write += bool(leftovers)
        assert await store.remove_stale_temp_files(older_than=0) == len(leftovers)
        if killed_mid_write >= 2 and round_number >= 4:
            break
    assert killed_mid_write >= 1, "no kill landed mid-write: the test proved nothing"
