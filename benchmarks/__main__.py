"""Run every ``benchmarks/bench_*.py``, print a table, write ``results/latest.json``
and the same table as Markdown in ``results/latest.md`` (for docs/benchmarks.md and
the README).

Usage: ``python -m benchmarks [--quick] [NAME_FILTER ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.harness import Result

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"
MARKDOWN = RESULTS.with_suffix(".md")


def discover(filters: list[str]) -> list[str]:
    names = sorted(path.stem for path in HERE.glob("bench_*.py"))
    return [name for name in names if not filters or any(f in name for f in filters)]


def run_module(name: str, quick: bool) -> list[Result]:
    module = importlib.import_module(f"benchmarks.{name}")
    outcome = module.run(quick)
    if inspect.iscoroutine(outcome):  # ``async def run``
        outcome = asyncio.run(outcome)
    return list(outcome)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


COLUMNS = ("module", "name", "figure", "baseline", "ratio", "target", "met")


def _cells(module: str, result: Result) -> tuple[str, ...]:
    figure = f"{_fmt(result.figure)} {result.unit}"
    baseline = f"{_fmt(result.baseline)} ({result.baseline_name})" if result.baseline else "-"
    sign = "<=" if result.lower_is_better else ">="
    target = f"{sign} {result.target:g}" if result.target is not None else "-"
    met = {True: "yes", False: "NO", None: "-"}[result.met]
    ratio = _fmt(result.ratio)
    return module.removeprefix("bench_"), result.name, figure, baseline, ratio, target, met


def render(rows: list[tuple[str, Result]]) -> Table:
    table = Table(title="balances benchmarks")
    for column in COLUMNS:
        table.add_column(column)
    for module, result in rows:
        table.add_row(*_cells(module, result))
    return table


def render_markdown(rows: list[tuple[str, Result]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for module, result in rows:
        cells = (cell.replace("|", "\\|") for cell in _cells(module, result))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("filters", nargs="*", help="run only modules whose name contains one")
    args = parser.parse_args(argv)
    rows: list[tuple[str, Result]] = []
    started = time.time()
    for name in discover(args.filters):
        print(f"running {name} ...", file=sys.stderr)
        rows += [(name, result) for result in run_module(name, args.quick)]
    console = Console()
    if not console.is_terminal:  # piped or logged: do not squeeze the table to 80 columns
        console = Console(width=200)
    console.print(render(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started_at": started,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": args.quick,
        "results": [{"module": module, **result.as_json()} for module, result in rows],
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    MARKDOWN.write_text(render_markdown(rows), encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(HERE.parent)} and {MARKDOWN.name}", file=sys.stderr)
    missed = [result.name for _, result in rows if result.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
