"""The figures of the last ``make mutate``: per module, how many mutants mutmut made,
how many the tests killed, how many survived, and which survivors are listed as
equivalent (``tools/mutation_equivalents.txt``: a mutant name, then why, per line).

Usage: ``python tools/mutation_report.py MODULE...`` (run from the repository root,
after ``mutmut run``). Exits 1 when a module's kill rate, over its mutants that are
not equivalent, is below the bar, or when a survivor is neither killed nor listed.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

BAR = 0.90
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")
#: A timeout is the mutant looping or stalling: the tests noticed it.
KILLED = {"killed", "timeout", "caught by type check"}


def load_results(root: Path) -> dict[str, str]:
    """Every mutant's status, by mutant name."""
    results: dict[str, str] = {}
    for meta in root.rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            results[name] = status_by_exit_code[code]
    return results


def load_equivalents(path: Path) -> dict[str, str]:
    """Mutant name -> why it is equivalent (blank lines and ``#`` lines skipped)."""
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, why = line.partition(" ")
            found[name] = why.strip()
    return found


def module_of(mutant: str) -> str:
    """``balances.domain.current.x_merge__mutmut_3`` -> ``balances.domain.current``."""
    head = mutant.split("__mutmut_")[0]
    return head.rsplit(".", 1)[0]


def report(modules: list[str], results: dict[str, str], equivalents: dict[str, str]) -> bool:
    ok = True
    print(f"{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv':>5} {'kill %':>6}")
    for module in modules:
        mine = {name: status for name, status in results.items() if module_of(name) == module}
        counts = Counter("killed" if s in KILLED else s for s in mine.values())
        survivors = sorted(n for n, s in mine.items() if s not in KILLED)
        equivalent = [n for n in survivors if n in equivalents]
        judged = len(mine) - len(equivalent)
        rate = counts["killed"] / judged if judged else 1.0
        ok = ok and bool(mine) and rate >= BAR
        print(
            f"{module:32} {len(mine):7} {counts['killed']:6} {len(survivors):8} "
            f"{len(equivalent):5} {100 * rate:6.1f}"
        )
        for name in survivors:
            why = equivalents.get(name)
            print(f"    {mine[name]:9} {name}" + (f"  (equivalent: {why})" if why else ""))
            ok = ok and why is not None
    stale = sorted(n for n in equivalents if results.get(n) in KILLED or n not in results)
    for name in stale:
        print(f"    listed as equivalent but killed or gone: {name}")
    return ok


def main(argv: list[str]) -> int:
    results = load_results(Path("mutants"))
    if not results:
        print("no mutmut results under mutants/: run `make mutate`", file=sys.stderr)
        return 2
    return 0 if report(argv, results, load_equivalents(EQUIVALENTS)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
