"""``BalanceScheduler``: the background tasks that keep balances fresh and reads cheap.

One step (:meth:`BalanceScheduler.run_once`) takes or renews the leader lease
(:mod:`.lease`), reads the shared task record (:mod:`.state`) and runs, one after
the other in :data:`~.config.TASK_NAMES` order, every enabled task that
:func:`~.timing.next_run` says is due. :meth:`~BalanceScheduler.run_forever`
repeats steps, sleeping until the next task is due or the lease needs attention.

- Only the lease holder runs tasks. While a task runs, a guard renews the lease on
  time; if the lease is lost (another replica holds it, or it expired unrenewed) the
  guard cancels the task at once, it is not recorded, and no further task starts.
- A task's failure never stops the scheduler: the error is recorded, and the task is
  retried with backoff while the other tasks keep their schedules.
- Every start and end is written to ``scheduler/state``, so a new leader continues
  the schedule of the old one instead of running everything again.

Time is the injected wall ``clock`` (lease expiry is compared across replicas), and
waiting is the injected ``sleep``: tests drive both by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from balances.blobs.health import reportable
from balances.errors import BalancesError, BlobStoreError
from balances.scheduler.config import (
    DEFAULT_SCHEDULER_CONFIG,
    TASK_NAMES,
    SchedulerConfig,
    TaskName,
)
from balances.scheduler.lease import Lease
from balances.scheduler.state import TaskState, TaskStates, state_document
from balances.scheduler.tasks import (
    ReadTimes,
    generate_aggregates,
    maintain,
    record_prices,
    sync_pass,
)
from balances.scheduler.timing import next_run
from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI

log = logging.getLogger("balances.scheduler")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
#: The shortest pause between two steps of :meth:`BalanceScheduler.run_forever`.
MIN_PAUSE = 0.05


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One run of one task, as :meth:`BalanceScheduler.run_once` reports it.

    ``interrupted``: the lease was lost while it ran; it was cancelled and not recorded.
    """

    task: str
    started: float
    finished: float
    ok: bool
    error: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def duration(self) -> float:
        return max(0.0, self.finished - self.started)

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "started": self.started,
            "finished": self.finished,
            "duration": self.duration,
            "ok": self.ok,
            "error": self.error,
            "result": dict(self.result),
            "interrupted": self.interrupted,
        }


class _LeaseLostError(Exception):
    """The guard cancelled a task because this replica no longer leads."""


def default_owner_id() -> str:
    """Unique per process: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class BalanceScheduler:
    """Runs sync, prices, maintain and aggregates on schedule; see the module docstring."""

    def __init__(
        self,
        service: BalanceService,
        config: SchedulerConfig = DEFAULT_SCHEDULER_CONFIG,
        *,
        series_api: BalanceSeriesAPI | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        owner_id: str | None = None,
    ) -> None:
        self.service = service
        self.config = config
        self.series_api = series_api if series_api is not None else BalanceSeriesAPI(service)
        self.owner_id = owner_id or default_owner_id()
        self._clock = clock
        self._sleep = sleep
        self.lease = Lease(
            service.blobs,
            self.owner_id,
            lease_seconds=config.lease_seconds,
            renew_fraction=config.renew_fraction,
        )
        self._doc = state_document(service.blobs, clock=clock)
        self._states: dict[str, TaskState] = {}
        self._read_times = ReadTimes()
        self._origin: float | None = None
        self._offset = 0.0
        self._lost = False
        self._step_lock = asyncio.Lock()

    @property
    def batch_size(self) -> int:
        """Addresses per ``refresh_many`` (one journal segment)."""
        return self.config.segment_addresses

    # --- running ---------------------------------------------------------------

    async def run_once(self, now: float | None = None) -> list[TaskRun]:
        """Take or keep the lease and run every due task (none unless leading).

        ``now`` runs the step as if the clock read ``now`` at its start (later
        readings move on from there)."""
        async with self._step_lock:
            self._offset = 0.0 if now is None else now - self._clock()
            try:
                if self._origin is None:
                    self._origin = self._now()
                if not await self._lead():
                    return []
                return await self._run_due()
            finally:
                self._offset = 0.0

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Run steps until ``stop`` is set (or the task is cancelled); a running task
        is cancelled by ``stop``. The lease is released on the way out."""
        stop = stop if stop is not None else asyncio.Event()
        try:
            while not stop.is_set():
                await _until(stop, self._safe_step())
                if not stop.is_set():
                    await _until(stop, self._sleep(self.pause()))
        finally:
            await self.release()

    async def release(self) -> None:
        """Give up the lease (if held): another replica need not wait for it to expire."""
        await self.lease.release(self._now())

    def pause(self) -> float:
        """Seconds until the next step has something to do."""
        now = self._now()
        moments = [self.lease.next_check(now)]
        if self.lease.holds(now):
            moments += [t for name in TASK_NAMES if (t := self._next_run(name, now)) is not None]
        return max(min(moments) - now, MIN_PAUSE)

    async def _safe_step(self) -> None:
        try:
            await self.run_once()
        except Exception:  # the loop outlives any bug in a step
            log.exception("scheduler step failed")

    async def _lead(self) -> bool:
        was_leader = self.lease.leader
        leading = await self.lease.step(self._now())
        if leading and not was_leader:
            self._doc.invalidate()  # another leader may have run tasks: read its record
            self._read_times.forget()
        return leading

    async def _run_due(self) -> list[TaskRun]:
        try:
            self._states = dict(await self._doc.current())
        except BalancesError as error:
            log.warning("task record unreadable, no task runs this step: %s", error)
            return []
        runs: list[TaskRun] = []
        for name in TASK_NAMES:
            now = self._now()
            if not self.lease.holds(now):
                break
            due = self._next_run(name, now)
            if due is None or due > now:
                continue
            run = await self._run_task(name)
            runs.append(run)
            if run.interrupted:
                break
        return runs

    async def _run_task(self, name: TaskName) -> TaskRun:
        started = self._now()
        # The start is kept here only: a shared write per start would double the
        # scheduler's billed writes, and a task a dying leader left half done is
        # simply run again by the next (every task is idempotent).
        await self._record(name, lambda state: state.started(started, self.owner_id), share=False)
        try:
            result, error = await self._execute(name)
        except _LeaseLostError:
            log.warning("%s: lease lost while %s ran; it was cancelled", self.owner_id, name)
            return TaskRun(name, started, self._now(), False, "lease lost", interrupted=True)
        finished = self._now()
        await self._record(
            name,
            lambda state: state.started(started, self.owner_id).finished(
                started, finished, error, result
            ),
        )
        return TaskRun(name, started, finished, error is None, error, result)

    async def _execute(self, name: TaskName) -> tuple[dict[str, Any], str | None]:
        """(summary, None) or ({}, the error as text); raises only :class:`_LeaseLostError`."""
        try:
            return await self._guarded(self._work(name)), None
        except _LeaseLostError:
            raise
        except BalancesError as error:
            if isinstance(error, BlobStoreError) and reportable(error):
                self.service.storage_failed(error)  # warned once per damaged blob
                log.debug("scheduled %s failed: %s", name, error)
            else:
                log.warning("scheduled %s failed: %s", name, error)
            return {}, f"{type(error).__name__}: {error}"
        except Exception as error:  # a task failure never kills the loop
            log.exception("scheduled %s failed unexpectedly", name)
            return {}, f"{type(error).__name__}: {error}"

    def _work(self, name: TaskName) -> Coroutine[Any, Any, dict[str, Any]]:
        if name == "sync":
            return sync_pass(
                self.service,
                self._read_times,
                batch_size=self.batch_size,
                interval=self.config.sync.interval,
                share=self.config.rate_limit_share,
            )
        if name == "prices":
            return record_prices(self.service)
        if name == "maintain":
            return maintain(self.service)
        return generate_aggregates(self.series_api, self.config.aggregate_periods)

    async def _guarded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` while a guard keeps the lease; :class:`_LeaseLostError` if it is lost."""
        self._lost = False
        job = asyncio.ensure_future(work)
        guard = asyncio.create_task(self._hold_lease(job))
        try:
            result = await job
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._lost and (current is None or not current.cancelling()):
                raise _LeaseLostError from None
            raise
        finally:
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard
        if self._lost:
            raise _LeaseLostError
        return result

    async def _hold_lease(self, job: asyncio.Future[Any]) -> None:
        """Renew the lease on time while ``job`` runs; cancel it once the lease is lost.

        A renewal under way when the job ends is let finish: cancelled after its put
        but before it kept the new etag, the next renewal would look like a lost lease.
        """
        while not job.done():
            await self._sleep(max(0.0, self.lease.next_check(self._now()) - self._now()))
            if job.done():
                return
            step = asyncio.ensure_future(self.lease.step(self._now()))
            try:
                leading = await asyncio.shield(step)
            except asyncio.CancelledError:
                await asyncio.wait({step})
                raise
            if not leading:
                self._lost = True
                job.cancel()
                return

    async def _record(
        self, name: str, change: Callable[[TaskState], TaskState], *, share: bool = True
    ) -> None:
        """Apply ``change`` to the task's record here, then in the shared blob."""

        def apply(states: TaskStates) -> TaskStates:
            return {**states, name: change(states.get(name, TaskState()))}

        self._states = dict(apply(self._states))
        if not share:
            return
        try:
            self._states = dict(await self._doc.update(apply))
        except BalancesError as error:
            log.warning("task record not written (%s); kept in this replica", error)

    # --- status ------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() + self._offset

    def _next_run(self, name: TaskName, now: float) -> float | None:
        task = self.config.task(name)
        if not self.config.runs(name):
            return None
        state = self._states.get(name, TaskState())
        return next_run(
            name,
            state.last_started,
            state.last_finished,
            now,
            task.interval,
            state.consecutive_failures,
            origin=self._origin,
            initial_delay=task.initial_delay,
            backoff=task.backoff,
            max_backoff=task.max_backoff,
            align=task.align,
            jitter=self.config.jitter,
        )

    def get_status(self) -> dict[str, Any]:
        """Leadership, the lease, and per task its record and next run (no I/O)."""
        now = self._now()
        record = self.lease.record
        tasks: dict[str, Any] = {}
        for name in TASK_NAMES:
            task, state = self.config.task(name), self._states.get(name, TaskState())
            tasks[name] = {
                "enabled": self.config.runs(name),
                "interval": task.interval,
                **state.as_dict(),
                "running": state.running,
                "next_run": self._next_run(name, now),
            }
        return {
            "owner_id": self.owner_id,
            "leader": self.lease.holds(now),
            "lease": None if record is None else record.as_dict(),
            "now": now,
            "tasks": tasks,
        }

    async def load_status(self) -> dict[str, Any]:
        """:meth:`get_status` after reading the shared lease and task record (no writes)."""
        await self.lease.observe()
        self._doc.invalidate()
        self._states = dict(await self._doc.current())
        return self.get_status()


async def _until(stop: asyncio.Event, work: Awaitable[Any]) -> None:
    """Await ``work`` unless ``stop`` is set first (then cancel it)."""
    job = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({job, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (job, waiter):
            pending.cancel()
        await asyncio.gather(job, waiter, return_exceptions=True)
