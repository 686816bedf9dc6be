"""BalanceScheduler against the Stacks API stand-in over loopback HTTP.

A sync pass (most stale first, one journal segment per batch, within the rate
limit), failures and backoff, and leadership among replicas sharing one memory
blob store: one leader, takeover after a leader dies, a leader that loses its
lease stops. Time is the kit's fake wall clock; ``sleep`` waits a millisecond.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest_client import FAST_RETRY
from service_helpers import FT_V3, HOLDER, STX_V3, Kit, SharedServer, open_kit, shared_server

from balances.blobs import BlobStore
from balances.chain.client import StacksClient
from balances.domain import Principal
from balances.errors import BlobStoreError
from balances.scheduler import (
    DEFAULT_SCHEDULER_CONFIG,
    LEASE_KEY,
    TASK_NAMES,
    BalanceScheduler,
    SchedulerConfig,
    TaskRun,
)
from balances.service.balances import BalanceService
from balances.stores.sharded.store import ShardedStore
from balances.sync.syncer import SyncOutcome
from balances.testing import FakeChain, FakeChainServer, fake_address

ADDRESSES = sorted(fake_address(f"scheduled holder {n}") for n in range(5))
JOURNAL = "v1/journal/"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[SharedServer]:
    async with shared_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def fake_chain_server(fake_chain: FakeChain, server: SharedServer) -> FakeChainServer:
    return server.plug(fake_chain)


@pytest_asyncio.fixture(loop_scope="module")
async def kit(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, fake_chain_server) as built:
        yield built


async def tiny_sleep(_seconds: float) -> None:
    """The scheduler's sleep in tests: time moves only when a test moves it."""
    await asyncio.sleep(0.001)


#: The default configuration with a one-minute lease: the lease tests move the clock
#: by lease lengths, and a short one keeps their arithmetic readable.
TEST_CONFIG = replace(DEFAULT_SCHEDULER_CONFIG, lease_seconds=60.0, aggregate_periods=("30d",))


def only(*names: str, **overrides: Any) -> SchedulerConfig:
    """The test configuration with only ``names`` enabled."""
    base = TEST_CONFIG
    tasks = {name: replace(base.task(name), enabled=name in names) for name in TASK_NAMES}
    return replace(base, **{**tasks, **overrides})


def scheduler(
    kit: Kit,
    service: BalanceService,
    config: SchedulerConfig = TEST_CONFIG,
    owner: str = "a",
    sleep: Callable[[float], Awaitable[None]] = tiny_sleep,
) -> BalanceScheduler:
    return BalanceScheduler(service, config, clock=kit.clocks.wall, sleep=sleep, owner_id=owner)


def record_batches(service: BalanceService) -> list[list[str]]:
    """Spy on ``refresh_many``: the addresses of each batch, in call order."""
    batches: list[list[str]] = []
    original = service.syncer.refresh_many

    async def spy(addresses: Sequence[Principal], **options: Any) -> list[SyncOutcome]:
        batches.append([str(a) for a in addresses])
        return await original(addresses, **options)

    service.syncer.refresh_many = spy  # type: ignore[method-assign]
    return batches


async def segments(store: BlobStore) -> set[str]:
    """The ids of the journal segments in ``store``."""
    return {key.removeprefix(JOURNAL) async for key in store.iter_keys(JOURNAL)}


async def track(service: BalanceService, addresses: Sequence[str]) -> None:
    for address in addresses:
        await service.track(address)


def names(runs: Sequence[TaskRun]) -> list[str]:
    return [run.task for run in runs]


# --- the sync pass -----------------------------------------------------------------


async def test_a_pass_syncs_most_stale_first_one_journal_segment_per_batch(kit: Kit) -> None:
    svc = kit.service()
    await track(svc, ADDRESSES)
    older, newer = ADDRESSES[3], ADDRESSES[1]
    await svc.refresh_address_balances(older)
    kit.clocks.advance(wall=10)
    await svc.refresh_address_balances(newer)
    kit.clocks.advance(wall=100)
    for address in ADDRESSES:  # every address has something new to write
        kit.chain.mint("stx", address, 1_000)
    before = await segments(kit.store)
    batches = record_batches(svc)

    (run,) = await scheduler(kit, svc, only("sync", segment_addresses=2)).run_once()

    never_read = [a for a in ADDRESSES if a not in (older, newer)]
    assert batches == [never_read[:2], [never_read[2], older], [newer]]
    assert run.ok
    assert run.result["planned"] == run.result["synced"] == 5
    assert (run.result["skipped"], run.result["batches"]) == (0, 3)
    assert run.result["request_budget"] is None  # the test client is unlimited
    written = sorted((await segments(kit.store)) - before)
    assert len(written) == 3
    layout = svc.layout
    assert isinstance(layout, ShardedStore)
    held = [sorted(r.address for r in (await layout.journal.read(s)).records) for s in written]
    assert sorted(held) == sorted(sorted(batch) for batch in batches)  # ids: same ms, random
    for address in ADDRESSES:
        balance = await svc.get_balance(address, "stx")
        assert (balance.amount, balance.source) == (kit.chain.balance("stx", address), "store")


async def test_the_rate_limit_budget_bounds_a_pass_and_the_rest_lead_the_next(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    # 6 requests a minute, a 60 s sync interval, all of it for the pass: 6 requests,
    # 2 per address (STX + the native listing; no map-based tokens configured).
    async with httpx.AsyncClient() as http:
        limited = StacksClient(
            http,
            fake_chain_server.url,
            requests_per_minute=6,
            retry=FAST_RETRY,
            clock=kit.clocks.mono,
            sleep=no_wait,
        )
        svc = kit.service(client=limited)
        await track(svc, ADDRESSES)
        config = only(
            "sync", sync=replace(DEFAULT_SCHEDULER_CONFIG.sync, interval=60.0), rate_limit_share=1.0
        )
        sched = scheduler(kit, svc, config)
        batches = record_batches(svc)
        kit.reset()

        (first,) = await sched.run_once()
        assert first.result["request_budget"] == 6
        assert (first.result["planned"], first.result["skipped"]) == (3, 2)
        assert kit.balance_reads() == {STX_V3: 3, FT_V3: 3}

        kit.clocks.advance(wall=60)
        (second,) = await sched.run_once()
        assert (second.result["planned"], second.result["skipped"]) == (3, 2)
        synced_first = [a for batch in batches[:-1] for a in batch]
        assert synced_first == ADDRESSES[:3]
        assert batches[-1] == [*ADDRESSES[3:], ADDRESSES[0]]  # never read, then the oldest


# --- failures ------------------------------------------------------------------------


async def test_a_failing_task_is_recorded_and_retried_with_backoff_while_others_run(
    kit: Kit,
) -> None:
    svc = kit.service()
    await svc.track(HOLDER)
    failures: list[BaseException] = [RuntimeError("a bug"), BlobStoreError("store hiccup")]
    layout = svc.layout
    real_maintain = layout.maintain

    async def flaky(now: float | None = None) -> Any:
        if failures:
            raise failures.pop(0)
        return await real_maintain(now)

    layout.maintain = flaky  # type: ignore[method-assign]
    sched = scheduler(kit, svc)
    start = kit.clocks.wall.now

    runs = await sched.run_once()
    assert names(runs) == list(TASK_NAMES)
    assert {run.task: run.ok for run in runs} == {
        "sync": True,
        "prices": True,
        "maintain": False,
        "aggregates": True,
    }
    maintain = sched.get_status()["tasks"]["maintain"]
    assert maintain["last_error"] == "RuntimeError: a bug"
    assert (maintain["runs"], maintain["failures"], maintain["consecutive_failures"]) == (1, 1, 1)
    assert maintain["next_run"] == pytest.approx(maintain["last_finished"] + 30)

    kit.clocks.advance(wall=30)
    retry = await sched.run_once()
    assert [(r.task, r.ok, r.error) for r in retry] == [
        ("maintain", False, "BlobStoreError: store hiccup")
    ]
    maintain = sched.get_status()["tasks"]["maintain"]
    assert maintain["next_run"] == pytest.approx(maintain["last_finished"] + 60)  # doubled

    kit.clocks.advance(wall=30)
    assert await sched.run_once() == []  # still backing off
    kit.clocks.advance(wall=30)
    (healed,) = await sched.run_once()
    assert (healed.task, healed.ok) == ("maintain", True)
    status = sched.get_status()["tasks"]
    assert (status["maintain"]["runs"], status["maintain"]["failures"]) == (3, 2)
    assert status["maintain"]["consecutive_failures"] == 0
    assert status["maintain"]["last_error"] is None
    assert status["maintain"]["next_run"] % 3600 == 0  # back on whole hours
    assert status["sync"]["runs"] == 1
    assert status["sync"]["next_run"] == pytest.approx(start + 300)


# --- leadership ------------------------------------------------------------------------


async def test_replicas_on_one_store_run_each_task_once(kit: Kit) -> None:
    first, second = kit.service(), kit.service()
    await first.track(HOLDER)
    a, b = scheduler(kit, first, owner="a"), scheduler(kit, second, owner="b")
    ran: dict[str, list[str]] = {"a": [], "b": []}
    for _ in range(13):  # 0..300 s in steps shorter than the renewal (30 s)
        runs_a, runs_b = await asyncio.gather(a.run_once(), b.run_once())
        ran["a"] += names(runs_a)
        ran["b"] += names(runs_b)
        kit.clocks.advance(wall=25)
    assert ran["b"] == []
    assert sorted(ran["a"]) == sorted([*TASK_NAMES, "sync"])  # sync again at 300 s
    assert (a.get_status()["leader"], b.get_status()["leader"]) == (True, False)
    shared = await scheduler(kit, second, owner="observer").load_status()
    assert shared["lease"]["owner"] == "a"
    assert shared["tasks"]["sync"]["runs"] == 2
    assert shared["tasks"]["sync"]["last_owner"] == "a"


async def test_a_dead_leader_is_replaced_without_re_running_what_it_ran(kit: Kit) -> None:
    first, second = kit.service(), kit.service()
    await first.track(HOLDER)
    a, b = scheduler(kit, first, owner="a"), scheduler(kit, second, owner="b")
    start = kit.clocks.wall.now
    assert names(await a.run_once()) == list(TASK_NAMES)
    kit.clocks.advance(wall=10)
    assert await b.run_once() == []

    kit.clocks.advance(wall=51)  # a stopped renewing: its lease ran out at start + 60
    assert await b.run_once() == []  # b leads now, and nothing is due yet
    status = b.get_status()
    assert status["leader"] is True
    assert (status["lease"]["owner"], status["lease"]["term"]) == ("b", 2)
    assert status["tasks"]["sync"]["next_run"] == pytest.approx(start + 300)

    kit.clocks.advance(wall=240)  # start + 301
    assert names(await b.run_once()) == ["sync"]
    assert await a.run_once() == []  # back from the dead: a follows
    assert a.get_status()["leader"] is False
    assert a.get_status()["lease"]["owner"] == "b"


async def test_a_leader_that_loses_its_lease_stops_at_once(kit: Kit) -> None:
    first, second = kit.service(), kit.service()
    await first.track(HOLDER)
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(now: float | None = None) -> Any:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    first.layout.maintain = stuck  # type: ignore[method-assign]
    tick = asyncio.Event()

    async def guard_sleep(_seconds: float) -> None:  # a's guard wakes when told to
        await tick.wait()
        tick.clear()

    a = scheduler(kit, first, owner="a", sleep=guard_sleep)
    b = scheduler(kit, second, owner="b")
    running = asyncio.create_task(a.run_once())
    await asyncio.wait_for(entered.wait(), timeout=5)

    kit.clocks.advance(wall=61)  # a's lease expired while maintain hung
    # b runs what a had not finished: starts are not shared (a billed write each), so
    # the task a's lost lease left half done runs again, as every task may.
    assert names(await b.run_once()) == ["maintain", "aggregates"]
    tick.set()
    runs = await asyncio.wait_for(running, timeout=5)

    assert [(r.task, r.ok, r.interrupted) for r in runs] == [
        ("sync", True, False),
        ("prices", True, False),
        ("maintain", False, True),
    ]
    assert cancelled.is_set()
    assert a.lease.leader is False
    assert a.get_status()["leader"] is False
    shared = await b.load_status()
    assert shared["tasks"]["maintain"]["runs"] == 1  # b's run; a's never finished
    assert shared["tasks"]["maintain"]["last_owner"] == "b"
    assert shared["tasks"]["aggregates"]["last_owner"] == "b"


async def test_the_lease_is_renewed_at_half_and_released_on_stop(kit: Kit) -> None:
    svc = kit.service()
    sched = scheduler(kit, svc, only("sync"))
    stop = asyncio.Event()
    loop = asyncio.create_task(sched.run_forever(stop))
    status = sched.get_status()
    for _ in range(1000):
        status = sched.get_status()
        if status["tasks"]["sync"]["runs"]:
            break
        await asyncio.sleep(0.001)
    acquired = kit.clocks.wall.now
    assert status["leader"] is True
    assert sched.pause() == pytest.approx(30)  # the renewal comes before the next sync

    kit.clocks.advance(wall=30)
    for _ in range(1000):
        if sched.lease.record and sched.lease.record.renewed_at > acquired:
            break
        await asyncio.sleep(0.001)
    assert sched.lease.record is not None
    assert sched.lease.record.expires_at == pytest.approx(acquired + 90)

    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    other = scheduler(kit, kit.service(), owner="b")
    assert (await other.load_status())["lease"]["expires_at"] == pytest.approx(acquired + 30)
    await other.run_once()  # the released lease is taken at once
    assert other.get_status()["leader"] is True
    assert (await kit.store.head(LEASE_KEY)).size > 0


async def test_status_shape(kit: Kit) -> None:
    sched = scheduler(kit, kit.service())
    before = sched.get_status()
    assert before["leader"] is False
    assert before["lease"] is None
    await sched.run_once()
    status = sched.get_status()
    assert set(status) == {"owner_id", "leader", "lease", "now", "tasks"}
    assert (status["owner_id"], status["leader"]) == ("a", True)
    assert set(status["lease"]) == {"owner", "expires_at", "acquired_at", "renewed_at", "term"}
    assert status["lease"]["expires_at"] == pytest.approx(kit.clocks.wall.now + 60)
    assert list(status["tasks"]) == list(TASK_NAMES)
    for task in status["tasks"].values():
        assert set(task) == {
            "enabled",
            "interval",
            "last_started",
            "last_finished",
            "last_duration",
            "last_error",
            "last_result",
            "last_owner",
            "runs",
            "failures",
            "consecutive_failures",
            "running",
            "next_run",
        }
        assert (task["runs"], task["failures"], task["running"]) == (1, 0, False)
        assert task["next_run"] > status["now"]


async def test_a_step_at_a_given_time_and_a_long_pause_run_each_task_once(kit: Kit) -> None:
    sched = scheduler(kit, kit.service())
    start = kit.clocks.wall.now
    assert names(await sched.run_once()) == list(TASK_NAMES)
    (sync,) = await sched.run_once(now=start + 300)  # as if the clock read start + 300
    assert (sync.task, sync.started) == ("sync", pytest.approx(start + 300))

    kit.clocks.advance(wall=30 * 3600)  # thirty hours asleep: no pile-up of missed runs
    assert names(await sched.run_once()) == list(TASK_NAMES)
    assert await sched.run_once() == []
    status = sched.get_status()["tasks"]
    assert status["sync"]["runs"] == 3
    assert status["sync"]["next_run"] == pytest.approx(kit.clocks.wall.now + 300)
