"""Shared test helpers.

Reference data lives in ``shared/reference/`` beside the repository (the repo's
parent holds ``shared/``, in CI too). A missing file is a collection error, never
a silent skip: the vectors are what prove our codecs match the reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"
CLARITY_VECTORS = REFERENCE_DIR / "clarity-vectors.json"

_vectors_cache: dict[str, Any] = {}


def load_clarity_vectors() -> dict[str, Any]:
    """The parsed clarity-vectors.json (read once); fails loudly if it is missing."""
    if not _vectors_cache:
        if not CLARITY_VECTORS.is_file():
            raise FileNotFoundError(
                f"reference vectors not found at {CLARITY_VECTORS}: the repository's parent "
                "directory must contain shared/reference/clarity-vectors.json"
            )
        _vectors_cache.update(json.loads(CLARITY_VECTORS.read_text(encoding="utf-8")))
    return _vectors_cache


@pytest.fixture(scope="session")
def clarity_vectors() -> dict[str, Any]:
    return load_clarity_vectors()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "clarity_vectors(section, id_key): run the test once per entry of that (dotted) "
        "section of clarity-vectors.json, passed as `vector`, with id_key's value as id",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("clarity_vectors")
    if marker is None:
        return
    section, id_key = marker.args
    entries: Any = load_clarity_vectors()
    for part in section.split("."):
        entries = entries[part]
    if not entries:
        raise ValueError(f"clarity-vectors.json section {section!r} is empty")
    ids = [str(entry[id_key]) or f"empty-{index}" for index, entry in enumerate(entries)]
    metafunc.parametrize("vector", entries, ids=ids)
