"""A writer process for the kill test: sync batches, tracking and compaction.

    python store_writer.py ROOT WRITER START COMMITTED

Writes, forever, update number n = START, START+1, ... of WRITER's address (its
STX amount becomes n, at block height n) through the sharded layout on a local
store in ROOT; every 5th update also tracks a new address, every 7th runs a
compaction (every writer compacts: they race). Once ``apply_many`` (and the
tracking) returned, n is *committed*: it is appended to the file COMMITTED and
fsynced. Prints "ready" after the first commit. The test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from balances.blobs import LocalBlobStore
from balances.domain import Principal
from balances.domain.current import AddressUpdate, Stamp
from balances.errors import BalancesError
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.stores.tracked import TrackedSet
from balances.testing import fake_address

#: Compaction leaves segments younger than a second: a segment's id is its writer's
#: clock when the write began, and a pass must not fold past one still landing
#: (the service's default grace is 10 minutes).
SETTINGS = LsmSettings(
    shards=16, compact_grace_seconds=1.0, poll_seconds=0.0, max_points_per_month=100_000
)


def writer_address(writer: int) -> str:
    return fake_address(f"kill-test writer {writer}")


def tracked_address(writer: int, n: int) -> str:
    return fake_address(f"kill-test writer {writer} tracked {n}")


async def run(root: str, writer: int, start: int, committed: str) -> None:
    blobs = LocalBlobStore(root)
    store = ShardedStore(blobs, SETTINGS)
    tracked = TrackedSet(blobs, recheck_seconds=0.0)
    address = writer_address(writer)
    # Blocking on purpose: an update counts as committed only once its line is on disk.
    with open(committed, "a", encoding="ascii") as log:  # noqa: ASYNC230
        n = start
        while True:
            update = AddressUpdate(
                address, Stamp(time.time(), n), {"stx": (n, "stx")}, listing_complete=True
            )
            (outcome,) = await store.apply_many([update])
            if isinstance(outcome, BalancesError):
                raise outcome
            if n % 5 == 0:
                await tracked.track(Principal.parse(tracked_address(writer, n)))
            log.write(f"{n}\n")
            log.flush()
            os.fsync(log.fileno())
            if n == start:
                print("ready", flush=True)
            if n % 7 == 0:
                await store.maintain()
            n += 1


if __name__ == "__main__":
    root, writer, start, committed = sys.argv[1:5]
    asyncio.run(run(root, int(writer), int(start), committed))
