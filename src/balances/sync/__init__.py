"""Sync: reading the chain into storage. The refresh plan lives in :mod:`.plan`."""

from balances.sync.plan import (
    PlanStep,
    RefreshPlan,
    RefreshResult,
    TokenRead,
    TrackedToken,
    build_plan,
    execute_plan,
    execute_plans,
)

__all__ = [
    "PlanStep",
    "RefreshPlan",
    "RefreshResult",
    "TokenRead",
    "TrackedToken",
    "build_plan",
    "execute_plan",
    "execute_plans",
]
