"""``balances store verify``: read every blob of the store and say what is damaged.

Every listed blob is read and decoded with the service's own decoder, then
cross-checked (:mod:`.catalog`); the layout as a whole is checked too: a store with
shard or journal blobs must have a manifest, and journal segments the manifest says
are folded should be gone. Reading is all it does: nothing is written.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from balances.blobs import BlobStore
from balances.doctor.catalog import BlobKind, Layout, blob_kinds, kind_of
from balances.errors import BlobNotFoundError, BlobStoreError, ConfigError
from balances.stores.quarantine import is_quarantined
from balances.stores.sharded.manifest import decode_manifest

Progress = Callable[[int, int], None]  # (blobs read, blobs in all)
READ_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong with one blob; ``damaged`` False is a note, not a failure."""

    key: str
    kind: str
    problem: str
    damaged: bool = True
    #: Written for another configuration (another shard count): fix the setting.
    foreign: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "kind": self.kind,
            "problem": self.problem,
            "damaged": self.damaged,
            "foreign": self.foreign,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    by_kind: dict[str, int]
    findings: tuple[Finding, ...]
    quarantined: int = 0
    keys: tuple[str, ...] = field(default=(), repr=False)

    @property
    def damaged(self) -> list[Finding]:
        return [f for f in self.findings if f.damaged]

    @property
    def ok(self) -> bool:
        return not self.damaged

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "by_kind": self.by_kind,
            "damaged": [f.as_dict() for f in self.damaged],
            "notes": [f.as_dict() for f in self.findings if not f.damaged],
            "quarantined": self.quarantined,
        }


async def verify_store(
    blobs: BlobStore, layout: Layout, *, progress: Progress | None = None
) -> VerifyReport:
    """Read and check every blob under ``blobs`` (quarantined ones are only counted)."""
    listed = [key async for key in blobs.iter_keys("")]
    keys = [key for key in listed if not is_quarantined(key)]
    kinds = blob_kinds(layout)
    gate = asyncio.Semaphore(READ_CONCURRENCY)
    done = 0

    async def one(key: str) -> list[Finding]:
        nonlocal done
        async with gate:
            found = await _check(blobs, key, kind_of(key, kinds))
        done += 1
        if progress is not None:
            progress(done, len(keys))
        return found

    findings = [f for found in await asyncio.gather(*(one(k) for k in keys)) for f in found]
    findings += await _layout_checks(blobs, keys, layout, findings)
    by_kind = Counter(_kind_name(kind_of(key, kinds)) for key in keys)
    return VerifyReport(
        checked=len(keys),
        by_kind=dict(sorted(by_kind.items())),
        findings=tuple(sorted(findings, key=lambda f: (not f.damaged, f.key))),
        quarantined=len(listed) - len(keys),
        keys=tuple(keys),
    )


def _kind_name(kind: BlobKind | None) -> str:
    return "unknown" if kind is None else kind.name


async def _check(blobs: BlobStore, key: str, kind: BlobKind | None) -> list[Finding]:
    if kind is None:
        return [Finding(key, "unknown", "not a blob this service writes", damaged=False)]
    try:
        blob = await blobs.get(key)
        problems = kind.check(blob.data, key)
    except BlobNotFoundError:
        return []  # deleted since it was listed (compaction)
    except ConfigError as error:
        return [Finding(key, kind.name, str(error), foreign=True)]
    except BlobStoreError as error:
        problems = [str(error)]
    return [Finding(key, kind.name, problem) for problem in problems]


async def _layout_checks(
    blobs: BlobStore, keys: Sequence[str], layout: Layout, found: Sequence[Finding]
) -> list[Finding]:
    manifest_key = f"{layout.prefix}/manifest"
    sharded = [k for k in keys if k.startswith(f"{layout.prefix}/") and k != manifest_key]
    if manifest_key not in keys:
        if not sharded:
            return []
        return [
            Finding(
                manifest_key,
                "manifest",
                f"missing, while the layout holds {len(sharded)} other blob(s)",
            )
        ]
    if any(f.key == manifest_key for f in found):
        return []
    try:
        manifest = decode_manifest((await blobs.get(manifest_key)).data, manifest_key)
    except BlobStoreError:
        return []  # changed since it was checked; the next run sees it
    folded = manifest.folded_through
    journal = f"{layout.prefix}/journal/"
    stale = [
        k
        for k in sharded
        if k.startswith(journal) and folded is not None and k[len(journal) :] <= folded
    ]
    return [
        Finding(
            k,
            "journal-segment",
            "already folded (a compaction stopped before deleting it; the next one does)",
            damaged=False,
        )
        for k in stale
    ]
