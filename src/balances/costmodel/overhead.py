"""The scheduler's own blob traffic: its leader lease and its shared task record.

A production fleet runs the layout's work from the background scheduler, whose
bookkeeping is billed too: the lease is renewed every ``lease_seconds *
renew_fraction`` and the task record is written once per finished task. The run
drives the scheduler's real :class:`~balances.scheduler.Lease` and task record on
the metered store with the simulated clock, for the tasks
:data:`~balances.scheduler.DEFAULT_SCHEDULER_CONFIG` schedules (aggregates only
when it names periods). One leader does this however large the fleet, so these
counts are never scaled.
"""

from __future__ import annotations

from collections.abc import Callable

from balances.blobs import BlobStore
from balances.scheduler import DEFAULT_SCHEDULER_CONFIG, TASK_NAMES, Lease, SchedulerConfig
from balances.scheduler.state import TaskState, TaskStates, state_document

OWNER = "cost-model-leader"


class SchedulerOverhead:
    """Steps the lease and records the due tasks' runs, as the leader would."""

    def __init__(
        self,
        blobs: BlobStore,
        clock: Callable[[], float],
        config: SchedulerConfig = DEFAULT_SCHEDULER_CONFIG,
    ) -> None:
        self._config = config
        self._clock = clock
        self._lease = Lease(
            blobs,
            OWNER,
            lease_seconds=config.lease_seconds,
            renew_fraction=config.renew_fraction,
        )
        self._record = state_document(blobs, clock=clock)

    def due(self, elapsed: float) -> list[str]:
        """The tasks that start ``elapsed`` seconds into the month (on their grid)."""
        return [
            name
            for name in TASK_NAMES
            if self._config.runs(name) and elapsed % self._config.task(name).interval == 0
        ]

    async def step(self, elapsed: float) -> None:
        """One scheduler step: keep the lease, then record each due task's run."""
        now = self._clock()
        if not await self._lease.step(now):
            raise RuntimeError("the simulated leader lost its lease")  # it is alone
        for name in self.due(elapsed):
            await self._record.update(_ran(name, now))


def _ran(name: str, at: float) -> Callable[[TaskStates], TaskStates]:
    """The record change of one finished run of ``name`` at ``at``."""

    def change(states: TaskStates) -> TaskStates:
        state = states.get(name, TaskState()).started(at, OWNER).finished(at, at, None, {})
        return {**states, name: state}

    return change
