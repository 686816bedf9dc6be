"""The storage cost model: the reference workload through the real layouts, priced.

See :mod:`balances.costmodel.simulate` for how a run works and why a scaled-down
run stands for the whole fleet; ``balances cost`` and ``benchmarks/bench_cost.py``
print and check its numbers.
"""

from balances.costmodel.report import FAITHFUL, render_tables, render_text
from balances.costmodel.results import Check, CostComparison, LayoutCost, Part
from balances.costmodel.rig import LayoutName
from balances.costmodel.simulate import SimOptions, compare, simulate
from balances.costmodel.workload import DEFAULT_SCALE, QUICK_SCALE, Plan, Targets, Workload

__all__ = [
    "DEFAULT_SCALE",
    "FAITHFUL",
    "QUICK_SCALE",
    "Check",
    "CostComparison",
    "LayoutCost",
    "LayoutName",
    "Part",
    "Plan",
    "SimOptions",
    "Targets",
    "Workload",
    "compare",
    "render_tables",
    "render_text",
    "simulate",
]
