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
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("errors",)),
    (1, ("chain.c32",)),
    (2, ("domain",)),
    (3, ("config",)),
    (4, ("chain",)),
    (4, ("blobs",)),
    (5, ("stores",)),
    (6, ("sync",)),
    (7, ("service", "series_api")),
    (8, ("bootstrap",)),
    (9, ("api",)),
    (9, ("testing",)),
    (10, ("cli", "__main__")),
    (11, ("",)),  # balances/__init__.py: the curated public API
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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module relative to the package) for every import of our own package."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if module else []
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([PACKAGE, *anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    own = []
    for line, name in found:
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            own.append((line, name[len(PACKAGE) + 1 :]))
    return own


def violations() -> list[str]:
    problems: list[str] = []
    known = {module_name(p) for p in ROOT.rglob("*.py")}
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        rank, group = layer_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported_modules(tree, module, path.name == "__init__.py"):
            if target not in known or target == module:
                continue  # `from pkg import name` also lists pkg.name; only modules count
            target_rank, target_group = layer_of(target)
            if target_rank < rank or target_group == group:
                continue
            problems.append(
                f"{path.relative_to(ROOT.parent.parent)}:{line}: {PACKAGE}.{module or '__init__'}"
                f" (layer {rank}) must not import {PACKAGE}.{target} (layer {target_rank})"
            )
    return problems


def main() -> int:
    problems = violations()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import(s) against DESIGN.md section 3", file=sys.stderr)
        return 1
    print("imports follow DESIGN.md section 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
