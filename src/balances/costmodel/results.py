"""What a run reports: one layout's month at fleet size, and the two side by side."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from balances.blobs import CostReport, MeterSnapshot, PriceTable
from balances.costmodel.meter import add_snapshots
from balances.costmodel.workload import Targets, Workload

DAILY_YEAR = "1y daily chart"
HOURLY_30D = "30d hourly chart"
#: What a run was doing when it counted an operation: syncing (``apply_many`` and
#: ``maintain``) or one kind of read; :data:`STORAGE` holds the bytes stored.
SYNC, BALANCE, HISTORY, PORTFOLIO, STORAGE = "sync", "balance", "history", "portfolio", "storage"
PHASES = (SYNC, BALANCE, HISTORY, PORTFOLIO)


@dataclass(frozen=True, slots=True)
class Part:
    """One (phase, key group) share of the month, fleet-sized."""

    phase: str
    group: str
    monthly: MeterSnapshot
    dollars: CostReport


@dataclass(frozen=True, slots=True)
class LayoutCost:
    """One layout's month, at fleet size, with the cold read probes.

    ``monthly`` and ``dollars`` are the fleet's (scaled); ``measured`` is what the
    run itself counted. ``cold_ops`` are the operations of one chart read after the
    layout's caches were dropped; ``fresh_ops`` the same on a newly opened layout
    object (a process that just started).
    """

    layout: str
    scale: float
    addresses: int
    shards: int | None
    factor: float
    monthly: MeterSnapshot
    dollars: CostReport
    parts: tuple[Part, ...]
    cold_ops: Mapping[str, Mapping[str, int]]
    fresh_ops: Mapping[str, Mapping[str, int]]
    measured: MeterSnapshot
    notes: tuple[str, ...]
    seconds: Mapping[str, float]
    prices: PriceTable

    @property
    def total(self) -> float:
        return self.dollars.total

    @property
    def storage_gb(self) -> float:
        return self.monthly.bytes_stored / 1e9

    def cold_gets(self, chart: str) -> int:
        return self.cold_ops[chart]["get"]

    def totals_by(self, attribute: Literal["phase", "group"]) -> dict[str, Part]:
        """The parts summed per phase (storage is a phase of its own) or per group."""
        chosen: dict[str, list[Part]] = {}
        for part in self.parts:
            chosen.setdefault(getattr(part, attribute), []).append(part)
        totals = {}
        for name, parts in chosen.items():
            monthly = add_snapshots([p.monthly for p in parts])
            totals[name] = Part(name, name, monthly, monthly.cost_report(self.prices))
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "scale": self.scale,
            "simulated_addresses": self.addresses,
            "shards": self.shards,
            "factor": self.factor,
            "storage_gb": self.storage_gb,
            "monthly": asdict(self.monthly),
            "dollars": self.dollars.as_dict(),
            "parts": [
                {
                    "phase": p.phase,
                    "group": p.group,
                    "monthly": asdict(p.monthly),
                    "dollars": p.dollars.as_dict(),
                }
                for p in self.parts
            ],
            "cold_ops": {k: dict(v) for k, v in self.cold_ops.items()},
            "fresh_ops": {k: dict(v) for k, v in self.fresh_ops.items()},
            "measured": asdict(self.measured),
            "notes": list(self.notes),
            "seconds": dict(self.seconds),
        }


@dataclass(frozen=True, slots=True)
class Check:
    """One target: ``figure <= target``."""

    name: str
    figure: float
    target: float

    @property
    def met(self) -> bool:
        return self.figure <= self.target


@dataclass(frozen=True, slots=True)
class CostComparison:
    workload: Workload
    targets: Targets
    seed: int
    sharded: LayoutCost
    spec: LayoutCost
    #: The sharded layout ran on block ingestion (else on the polling sync).
    ingestion: bool = False

    @property
    def ratio(self) -> float:
        """Our monthly dollars over the spec layout's."""
        return self.sharded.total / self.spec.total if self.spec.total else float("inf")

    def checks(self) -> list[Check]:
        t, ours = self.targets, self.sharded
        return [
            Check("sharded $/month", ours.total, t.monthly_dollars),
            Check("sharded / spec $", self.ratio, t.ratio_to_spec),
            Check(f"sharded GETs, {DAILY_YEAR}", ours.cold_gets(DAILY_YEAR), t.daily_year_gets),
            Check(f"sharded GETs, {HOURLY_30D}", ours.cold_gets(HOURLY_30D), t.hourly_30d_gets),
        ]

    def as_dict(self) -> dict[str, Any]:
        workload = {**asdict(self.workload), "month_start": self.workload.month_start.isoformat()}
        return {
            "workload": workload,
            "targets": asdict(self.targets),
            "seed": self.seed,
            "sharded_sync": "ingestion" if self.ingestion else "polling",
            "ratio": self.ratio,
            "checks": [{**asdict(c), "met": c.met} for c in self.checks()],
            "layouts": {"sharded": self.sharded.as_dict(), "spec": self.spec.as_dict()},
        }
