"""The import-direction check (tools/check_imports.py) passes on the code and catches breaches."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_imports.py"


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "balances"
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_project_follows_the_layering(checker: ModuleType) -> None:
    assert checker.violations() == []
    assert checker.circle_problems() == []


def test_config_sits_above_the_chain_and_the_chain_never_imports_it(
    checker: ModuleType, tmp_path: Path
) -> None:
    root = _package(
        tmp_path,
        {
            "config.py": "from balances.chain.networks import KNOWN\n",
            "chain/__init__.py": "",
            "chain/networks.py": "",
            "chain/client.py": "from balances.config import C\n",
        },
    )
    (problem,) = checker.violations(root)
    assert "balances.chain.client (layer 3) must not import balances.config (layer 4)" in problem


@pytest.mark.parametrize(
    ("files", "members"),
    [
        (  # two modules of one group importing each other, one of them for typing only
            {
                "stores/__init__.py": "",
                "stores/lsm.py": "from balances.stores.compact import compact\n",
                "stores/compact.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from balances.stores.lsm import Store\n",
            },
            ["balances.stores.compact", "balances.stores.lsm"],
        ),
        (  # a loop through three modules
            {
                "service/__init__.py": "",
                "service/a.py": "from balances.service import b\n",
                "service/b.py": "from balances.service.c import C\n",
                "service/c.py": "import balances.service.a\n",
            },
            ["balances.service.a", "balances.service.b", "balances.service.c"],
        ),
    ],
)
def test_import_circles_are_reported(
    checker: ModuleType, tmp_path: Path, files: dict[str, str], members: list[str]
) -> None:
    (problem,) = checker.circle_problems(_package(tmp_path, files))
    assert problem == "import circle: " + " <-> ".join(members)


def test_a_tree_without_loops_has_no_circle(checker: ModuleType, tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "stores/__init__.py": "",
            "stores/parts.py": "",
            "stores/compact.py": "from balances.stores.parts import Parts\n",
            "stores/lsm.py": "from balances.stores.compact import compact\n"
            "from balances.stores.parts import Parts\n",
        },
    )
    assert checker.circle_problems(root) == []


@pytest.mark.parametrize(
    ("files", "offender"),
    [
        (  # domain must not reach up into the chain client
            {
                "domain.py": "from balances.chain import client\n",
                "chain/__init__.py": "",
                "chain/client.py": "",
            },
            "balances.domain (layer 2) must not import balances.chain.client",
        ),
        (  # chain and blobs share a rank but never import each other
            {
                "chain/__init__.py": "",
                "chain/client.py": "import balances.blobs.base\n",
                "blobs/__init__.py": "",
                "blobs/base.py": "",
            },
            "balances.chain.client (layer 3) must not import balances.blobs.base",
        ),
        (  # a relative import is resolved before judging it
            {
                "stores/__init__.py": "",
                "stores/current.py": "from ..service import X\n",
                "service.py": "X = 1\n",
            },
            "balances.stores.current (layer 5) must not import balances.service",
        ),
        (  # imports for typing only count too
            {
                "errors.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from balances.domain import P\n",
                "domain.py": "",
            },
            "balances.errors (layer 0) must not import balances.domain",
        ),
        (  # the default layout must not lean on the spec layout built above it
            {
                "stores/__init__.py": "",
                "stores/sharded/__init__.py": "",
                "stores/sharded/compact.py": "from balances.stores.spec.store import S\n",
                "stores/spec/__init__.py": "",
                "stores/spec/store.py": "",
            },
            "balances.stores.sharded.compact (layer 6) must not import balances.stores.spec.store",
        ),
        (  # the service's core must not call up into the methods built on it
            {
                "service/__init__.py": "",
                "service/core.py": "from balances.service.balances import BalanceService\n",
                "service/balances.py": "",
            },
            "balances.service.core (layer 13) must not import balances.service.balances",
        ),
        (  # the API must not use the test doubles
            {
                "api/__init__.py": "",
                "api/app.py": "from balances.testing import fake\n",
                "testing/__init__.py": "",
                "testing/fake.py": "",
            },
            "balances.api.app (layer 23) must not import balances.testing.fake",
        ),
    ],
)
def test_breaches_are_reported(
    checker: ModuleType, tmp_path: Path, files: dict[str, str], offender: str
) -> None:
    problems = checker.violations(_package(tmp_path, files))
    assert len(problems) == 1
    assert offender in problems[0]


def test_imports_down_the_stack_are_allowed(checker: ModuleType, tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "errors.py": "",
            "domain.py": "from balances.errors import E\nfrom balances.chain.c32 import c\n",
            "chain/__init__.py": "",
            "chain/c32.py": "from balances import errors\n",
            "chain/client.py": "from balances.chain.c32 import x\nfrom . import c32\n",
            "service.py": "from balances.chain import client\n",
            "series_api.py": "from balances.service import S\n",
        },
    )
    assert checker.violations(root) == []
