"""A process killed mid-block loses nothing and applies nothing twice.

``balances ingest run --source pull`` runs as a child process on a local-directory
store, following the stand-in (served by this test's event loop) while blocks are
produced; it is SIGKILLed at seeded random moments once it has written, and started
again, ten times. The reconciler is off (it would repair what a crash broke). A
block applied twice would double its deltas, so 0 differences with the ledger after
the last restart caught up proves each block was applied once; the history points
are those of the ledger, one per height; no temp file outlives the maintenance pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from ingest_rig import Rig, rig_on
from service_helpers import config

from balances.blobs.local import LocalBlobStore
from balances.blobs.localfs import write_temp
from balances.domain import Principal
from balances.scheduler.tasks import maintain
from balances.service.balances import BalanceService
from balances.testing import FakeChain, FakeChainServer

KILLS = 10
SEED = 20261206


def child_env(rig: Rig) -> dict[str, str]:
    return {
        **os.environ,
        "BALANCES_LAYOUT": "sharded",
        "BALANCES_NETWORKS__MAINNET__MAP_TOKENS": rig.producer.map_token,
        "BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE": "100000",
        "BALANCES_INGEST__FLUSH_SECONDS": "0.05",  # a segment for nearly every block
        "BALANCES_INGEST__BLOCK_SECONDS": "0.1",
        "BALANCES_INGEST__BATCH_BLOCKS": "1",
        "BALANCES_INGEST__RECONCILE_ADDRESSES": "0",
        "BALANCES_SCHEDULER__ENABLED": "false",
    }


def written(root: Path) -> int:
    """Blobs in the store (temp files aside): grows with every segment written."""
    return sum(1 for path in root.rglob("*") if path.is_file() and not path.name.startswith("."))


def temp_files(root: Path) -> list[Path]:
    return list(root.rglob(".*.tmp"))


async def produce_until(rig: Rig, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rig.producer.produce_one()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.15)


async def run_and_kill(args: list[str], env: dict[str, str], root: Path, delay: float) -> None:
    """Start the child; once it has written a segment, SIGKILL it ``delay`` s later."""
    child = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        before = written(root)
        for _ in range(1500):  # until it wrote (bounded)
            if written(root) > before or child.returncode is not None:
                break
            await asyncio.sleep(0.01)
        assert child.returncode is None, (await child.communicate())[1].decode()[-2000:]
        await asyncio.sleep(delay)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL


async def history_problems(
    rig: Rig, service: BalanceService, principals: list[Principal]
) -> list[str]:
    """Points that repeat a height, or whose amount is not the ledger's at that height."""
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    problems = []
    for principal in principals:
        slices = await service.layout.series(principal, start, end)
        for key, found in slices.items():
            heights = [point.block_height for point in found.points]
            if len(heights) != len(set(heights)):
                problems.append(f"{principal} {key}: repeated heights {heights}")
            for point in found.points:
                if point.block_height is None:
                    continue
                truth = rig.chain.balance(key, str(principal), point.block_height)
                if point.amount != truth:
                    problems.append(f"{principal} {key} @{point.block_height}: {point.amount}")
    return problems


async def test_a_child_killed_ten_times_mid_ingestion_loses_nothing_and_repeats_nothing(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    rng = random.Random(SEED)
    async with rig_on(fake_chain, fake_chain_server, blobs=LocalBlobStore(root)) as rig:
        args = [sys.executable, "-m", "balances", "ingest", "run", "--source", "pull"]
        args += ["--store", f"file://{root}", "--chain-url", fake_chain_server.url]
        env = child_env(rig)
        stop = asyncio.Event()
        producing = asyncio.create_task(produce_until(rig, stop))
        try:
            for _ in range(KILLS):
                await run_and_kill(args, env, root, rng.uniform(0.0, 0.6))
        finally:
            stop.set()
            await producing
        assert rig.chain.tip_height > 1002 + KILLS

        # One more run, left to finish: it catches up with the tip and writes.
        done = await asyncio.create_subprocess_exec(
            *args, "--once", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(done.communicate(), 60)
        assert done.returncode == 0, err.decode()[-2000:]

        # What a new process reads from the store.
        fresh = BalanceService(
            rig.service.config, blobs=LocalBlobStore(root), chain=rig.service.chain
        )
        try:
            await fresh.layout.poll(force=True)
            mark = fresh.layout.ingest_mark
            assert mark is not None
            assert (mark.height, mark.block_hash) == (rig.chain.tip_height, rig.chain.tip.hash)
            assert await rig.differences(fresh) == []
            principals = [Principal.parse(a) for a in rig.tracked]
            assert await history_problems(rig, fresh, principals) == []
            # A kill between a temp file's write and its rename leaves it: the
            # maintenance pass removes it once it is an hour old (a younger one may
            # be a live writer's). Age them as if that hour had passed.
            for path in temp_files(root):
                os.utime(path, (time.time() - 7200,) * 2)
            await maintain(fresh)
            assert temp_files(root) == []
        finally:
            await fresh.close()
        assert b"cursor" in out


async def test_maintenance_removes_a_killed_writers_old_temp_file_and_keeps_a_young_one(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    service = BalanceService(config(layout="sharded"), blobs=LocalBlobStore(root))
    try:
        await service.blobs.put("v1/some/blob", b"kept")
        directory = LocalBlobStore(root).path_of("v1/some/blob").parent
        # What a writer killed between write and rename leaves beside its target.
        old = write_temp(directory, "blob.blob", b"", b"half", sync=False)
        os.utime(old, (time.time() - 7200,) * 2)
        young = write_temp(directory, "blob.blob", b"", b"in flight", sync=False)
        summary = await maintain(service)
        assert summary["temp_files_removed"] == 1
        assert temp_files(root) == [young]
        assert (await service.blobs.get("v1/some/blob")).data == b"kept"
    finally:
        await service.close()
