"""Writers killed with SIGKILL at random points: nothing torn, nothing committed lost.

Four writer processes (``store_writer.py``) share one local store through the
sharded layout: sync batches, tracking (a shared document, conditional writes)
and compaction, all racing. The test kills one at random 30 times, restarting
it after its last committed update, then kills the rest. The store must then
verify clean (no torn or unreadable blob), hold every committed update (current
amounts, the history points and the tracked set), and the next maintenance pass
must leave no temp file behind.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_writer import SETTINGS, tracked_address, writer_address

from balances.blobs import LocalBlobStore
from balances.blobs.localfs import TEMP_SUFFIX
from balances.doctor import Layout, verify_store
from balances.domain import Principal
from balances.stores.sharded.store import ShardedStore
from balances.stores.tracked import TrackedSet

WRITERS = 4
KILLS = 30
WORKER = Path(__file__).with_name("store_writer.py")


def _start(root: Path, writer: int, start: int, committed: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), str(root), str(writer), str(start), str(committed)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(WORKER.parent)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", "the writer did not start"
    return process


def _committed(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()]


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"*{TEMP_SUFFIX}") if p.name.startswith(".")]


@pytest.mark.slow
def test_writers_killed_at_random_tear_nothing_and_lose_nothing(tmp_path: Path) -> None:
    root, rng = tmp_path / "store", random.Random(18)
    logs = [tmp_path / f"committed-{w}" for w in range(WRITERS)]
    processes = [_start(root, w, 1, logs[w]) for w in range(WRITERS)]
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.4))
        victim = rng.randrange(WRITERS)
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait()
        done = _committed(logs[victim])
        processes[victim] = _start(root, victim, (done[-1] if done else 0) + 1, logs[victim])
    time.sleep(0.3)
    for process in processes:  # the end is a crash too
        process.send_signal(signal.SIGKILL)
        process.wait()
    left_by_kills = len(_temp_files(root))
    figures = asyncio.run(_check(root, logs))
    print(f"kills {KILLS + WRITERS}, temp files left by kills {left_by_kills}, {figures}")
    assert _temp_files(root) == []


async def _check(root: Path, logs: list[Path]) -> str:
    blobs = LocalBlobStore(root)
    report = await verify_store(blobs, Layout(SETTINGS.prefix, SETTINGS.shards))
    assert report.ok, [f.as_dict() for f in report.damaged]
    store = ShardedStore(blobs, SETTINGS)
    committed = [_committed(log) for log in logs]
    lost = 0
    for writer, numbers in enumerate(committed):
        address = Principal.parse(writer_address(writer))
        found = await store.load(address)
        assert found is not None
        amount = found.tokens["stx"].amount
        # A write that landed just before its kill is stored but not logged.
        assert numbers[-1] <= amount <= numbers[-1] + 1, (writer, amount, numbers[-1])
        series = await store.series(
            address, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        )
        points = {p.amount for p in series["stx"].points}
        lost += len(set(numbers) - points)
    tracked = {entry.address for entry in await TrackedSet(blobs).entries()}
    wanted = {tracked_address(w, n) for w, ns in enumerate(committed) for n in ns if n % 5 == 0}
    lost += len(wanted - tracked)
    assert lost == 0
    maintained = await store.maintain()
    removed = await blobs.remove_stale_temp_files(older_than=0.0)  # the pass, an hour on
    assert (await verify_store(blobs, Layout(SETTINGS.prefix, SETTINGS.shards))).ok
    updates = sum(len(ns) for ns in committed)
    return (
        f"{report.checked} blobs verified, 0 torn, {updates} committed updates, 0 lost, "
        f"{maintained.segments_folded} segments folded after, {removed} temp files removed"
    )
