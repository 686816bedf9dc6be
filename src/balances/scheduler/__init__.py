"""The background scheduler: balances kept fresh, storage maintained, aggregates built.

:class:`BalanceScheduler` runs the tasks of a :class:`SchedulerConfig`
(:data:`DEFAULT_SCHEDULER_CONFIG`: sync every 5 minutes; prices, maintenance and
aggregates hourly) against a :class:`~balances.service.BalanceService`. Replicas
sharing one blob store elect one leader through a lease blob; only it runs tasks.
"""

from __future__ import annotations

from balances.scheduler.config import (
    DEFAULT_SCHEDULER_CONFIG,
    TASK_NAMES,
    SchedulerConfig,
    TaskConfig,
    TaskName,
    scheduler_config,
)
from balances.scheduler.lease import LEASE_KEY, Lease, LeaseRecord
from balances.scheduler.scheduler import BalanceScheduler, TaskRun
from balances.scheduler.state import STATE_KEY, TaskState
from balances.scheduler.timing import next_run

__all__ = [
    "DEFAULT_SCHEDULER_CONFIG",
    "LEASE_KEY",
    "STATE_KEY",
    "TASK_NAMES",
    "BalanceScheduler",
    "Lease",
    "LeaseRecord",
    "SchedulerConfig",
    "TaskConfig",
    "TaskName",
    "TaskRun",
    "TaskState",
    "next_run",
    "scheduler_config",
]
