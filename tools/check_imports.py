"""Fail when a module imports against the layering of DESIGN.md section 3.

Data flows chain -> sync -> storage -> service -> API/CLI, and imports point back
down that stack only. Each module belongs to the layer of its longest matching
prefix below. A module may import:

- any module in a strictly lower layer, and
- modules of its own group (the same row of ``LAYERS``, same package).

Groups that share a rank (``chain`` and ``blobs``; ``api`` and ``testing``) may
not import each other. Imports inside ``if TYPE_CHECKING:`` blocks count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "balances"
ROOT = Path(__file__).resolve().parent.parent / "src" / PACKAGE

# (rank, group prefixes). A group is one unit: its members may import each other.
# Inside ``stores`` and ``service`` the rows state the direction too: the stores'
# shared parts, then what each stores, then the layouts built on them; the service's
# views and readers, its core (wiring and the read path), then each layer of
# ``BalanceService`` on the one below, then the series API over it.
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("errors",)),
    (1, ("chain.c32",)),
    (2, ("domain",)),
    (3, ("chain",)),
    (3, ("blobs",)),
    (3, ("prices",)),
    (4, ("config",)),  # settings; builds its defaults from chain.networks' facts
    # shared parts of every store (any other stores module not listed below too)
    (5, ("stores", "stores.cache", "stores.encoding", "stores.document", "stores.quarantine")),
    (5, ("stores.layout",)),  # the protocols every layout meets
    (6, ("stores.tracked",)),
    (6, ("stores.tokens",)),
    (6, ("stores.prices",)),
    (6, ("stores.feed",)),  # the change feed: numbered entries, segments, the live hub
    (6, ("stores.webhooks",)),  # webhook subscriptions and their cursors
    (6, ("stores.sharded",)),  # the default layout: journal, shards, manifest, compaction
    (7, ("stores.spec",)),  # the original layout, sharing the sharded layout's documents
    (8, ("stores.layouts",)),  # chooses a layout from the settings
    (9, ("sync",)),
    (10, ("ingest",)),  # folds blocks into the stores; reads pairs through the syncer's chain
    (11, ("bootstrap",)),  # settings -> concrete store, chain client, price source
    (12, ("service.views",)),
    (12, ("service.history",)),
    (12, ("service.ingest",)),
    (12, ("service.stream",)),  # following the change feed
    # delivering the change feed to webhook subscriptions, and where they may go
    (12, ("service.webhooks", "service.destinations")),
    (13, ("service.core",)),
    (13, ("service.aggregates",)),
    (14, ("service.reads",)),
    (15, ("service.bulk",)),
    (16, ("service.history_api",)),
    (17, ("service.balances",)),
    (18, ("service.consistency",)),  # one block for a bulk answer (re-reads behind it)
    (19, ("service.series",)),
    (20, ("service",)),  # the package: BalanceService and BalanceSeriesAPI
    (21, ("scheduler",)),  # runs BalanceService / BalanceSeriesAPI methods on a schedule
    (22, ("costmodel",)),  # drives the stores' layouts and the scheduler's bookkeeping
    (22, ("doctor",)),  # verifies every blob kind, repairs through the service
    (23, ("api",)),
    (23, ("testing",)),
    (24, ("cli", "__main__")),
    (25, ("",)),  # balances/__init__.py: the curated public API
]


def layer_of(module: str) -> tuple[int, int]:
    """(rank, group index) of a module path relative to the package."""
    best: tuple[int, int, int] | None = None  # (prefix length, rank, group)
    for group_index, (rank, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".") or prefix == ""
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, group_index)
    assert best is not None
    return best[1], best[2]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(
    tree: ast.Module, module: str, is_package: bool, known: set[str]
) -> list[tuple[int, str]]:
    """(line, module relative to the package) for every import of our own package.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module,
    and as importing ``pkg`` otherwise.
    """
    found: list[tuple[int, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _relative(alias.name)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _relative(_absolute_base(node, module, is_package))
            if base is None:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                found.append((node.lineno, submodule if submodule in known else base))
    return [(line, name) for line, name in found if name is not None]


def _absolute_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    anchor = module.split(".") if module else []
    if not is_package:
        anchor = anchor[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([PACKAGE, *anchor, *([node.module] if node.module else [])])


def _relative(name: str) -> str | None:
    """``balances.x.y`` -> ``x.y``; ``balances`` -> ``""``; other packages -> None."""
    if name == PACKAGE:
        return ""
    if name.startswith(PACKAGE + "."):
        return name[len(PACKAGE) + 1 :]
    return None


def violations(root: Path = ROOT) -> list[str]:
    """Every import under ``root`` (the package directory) that breaks the layering."""
    problems: list[str] = []
    known = {module_name(p, root) for p in root.rglob("*.py")}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        rank, group = layer_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported_modules(tree, module, path.name == "__init__.py", known):
            if target == module or target not in known:
                continue
            target_rank, target_group = layer_of(target)
            if target_rank < rank or target_group == group:
                continue
            problems.append(
                f"{path.relative_to(root.parent)}:{line}: {PACKAGE}.{module or '__init__'}"
                f" (layer {rank}) must not import {PACKAGE}.{target} (layer {target_rank})"
            )
    return problems


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (typing-only imports too)."""
    known = {module_name(p, root) for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = imported_modules(tree, module, path.name == "__init__.py", known)
        graph[module] = {target for _, target in found if target in known and target != module}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other, directly or round a loop (the
    strongly connected components of more than one module), each sorted."""
    reach = {module: reachable(graph, module) for module in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for module in sorted(graph):
        if module in placed or module not in reach[module]:
            continue
        component = sorted(m for m in reach[module] if module in reach[m])
        placed.update(component)
        found.append(component)
    return found


def circle_problems(root: Path = ROOT) -> list[str]:
    return [
        "import circle: " + " <-> ".join(f"{PACKAGE}.{m or '__init__'}" for m in component)
        for component in circles(import_graph(root))
    ]


def main() -> int:
    problems = violations() + circle_problems()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import problem(s) against the layering", file=sys.stderr)
        return 1
    print("imports follow the layering, with no import circle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
