"""``balances store repair``: quarantine what is damaged, rebuild the manifest, and
read again from the chain what was lost.

1. :func:`~balances.doctor.verify.verify_store` finds the damaged blobs.
2. Each one is moved under ``quarantine/`` (copied with ``Create``, then removed
   only while it is still the damaged version: a writer that replaced it keeps its
   write). Nothing is deleted for good.
3. A damaged or missing manifest is rebuilt from the listing, conditionally on
   the damaged version (:mod:`balances.stores.sharded.rebuild`).
4. A lost tracked set is rebuilt from the addresses the shard blobs and journal hold.
5. The addresses whose current balances were in a quarantined blob (a shard's
   addresses; every tracked address for a journal segment, whose addresses cannot
   be read any more) are read again from the chain and stored; addresses whose
   history blobs were lost are backfilled again when ``backfill`` is set.

A store that verifies clean is left alone, so a second run changes nothing. A
store written with another shard count is refused (that is a setting to fix, not
damage to repair).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from balances.blobs import blob_key_parts
from balances.doctor.catalog import Layout
from balances.doctor.verify import Finding, Progress, verify_store
from balances.domain import Principal
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    ConfigError,
    CorruptBlobError,
    PreconditionFailedError,
)
from balances.service.balances import BalanceService
from balances.stores.quarantine import quarantine
from balances.stores.sharded.documents import decode_current, decode_daily, decode_month
from balances.stores.sharded.journal import decode_segment
from balances.stores.sharded.parts import DEFAULT_PREFIX, shard_of
from balances.stores.sharded.rebuild import rebuild_manifest, shard_index
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.store import PREFIX as SPEC_PREFIX

log = logging.getLogger("balances.doctor")
#: Blob kinds whose loss takes current balances with it, and history kinds.
_CURRENT_KINDS = frozenset({"shard-current", "spec-current"})
_HISTORY_KINDS = frozenset({"series-month", "daily-rollup", "spec-month", "spec-snapshot"})


@dataclass(slots=True)
class RepairReport:
    damaged: list[Finding] = field(default_factory=list)
    #: damaged key -> the key of its copy under quarantine/
    quarantined: dict[str, str] = field(default_factory=dict)
    manifest_rebuilt: bool = False
    tracked_restored: int = 0
    reread: list[str] = field(default_factory=list)
    backfilled: list[str] = field(default_factory=list)
    #: address -> why it could not be read again (run repair again later)
    failed: dict[str, str] = field(default_factory=dict)
    remaining: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining and not self.failed

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "damaged": [f.as_dict() for f in self.damaged],
            "quarantined": self.quarantined,
            "manifest_rebuilt": self.manifest_rebuilt,
            "tracked_restored": self.tracked_restored,
            "reread": self.reread,
            "backfilled": self.backfilled,
            "failed": self.failed,
            "remaining": [f.as_dict() for f in self.remaining],
        }


def layout_of(service: BalanceService) -> Layout:
    store = service.layout
    if isinstance(store, ShardedStore):
        return Layout(store.settings.prefix, store.settings.shards)
    return Layout(DEFAULT_PREFIX, service.config.shards)


async def repair_store(
    service: BalanceService, *, backfill: bool = True, progress: Progress | None = None
) -> RepairReport:
    """Repair the service's store; see the module docstring."""
    layout = layout_of(service)
    # Reads bypass the health record: checking damage is not meeting it.
    found = await verify_store(service.backend, layout, progress=progress)
    report = RepairReport(damaged=found.damaged)
    if found.ok:
        return report
    _refuse_foreign_layout(report.damaged, layout)
    now = service.wall_clock()
    by_key = {f.key: f.kind for f in report.damaged}
    for key, kind in by_key.items():
        if kind == "manifest":
            continue
        copy = await quarantine(service.blobs, key, now)
        if copy is not None:
            report.quarantined[key] = copy
            log.warning("quarantined %s as %s", key, copy)
    service.storage_health.clear()
    store = service.layout
    if isinstance(store, ShardedStore):
        store.clear()
        if "manifest" in by_key.values():
            await _rebuild(store, now, report)
    if "tracked-set" in by_key.values():
        report.tracked_restored = await _restore_tracked(service, layout)
    await service.clear_cache()
    await _read_again(service, report, by_key, layout, backfill)
    report.remaining = (await verify_store(service.backend, layout)).damaged
    return report


def _refuse_foreign_layout(damaged: Iterable[Finding], layout: Layout) -> None:
    for finding in damaged:
        if finding.foreign:
            raise ConfigError(
                f"{finding.key}: {finding.problem}. The store was written with another "
                f"shard count than {layout.shards}: set BALANCES_SHARDS; nothing was changed"
            )


async def _rebuild(store: ShardedStore, now: float, report: RepairReport) -> None:
    try:
        rebuilt = await rebuild_manifest(store, now)
    except PreconditionFailedError:
        store.manifest.invalidate()  # the service rebuilt it meanwhile
        return
    store.invalidate()
    report.manifest_rebuilt = True
    if rebuilt.quarantined is not None:
        report.quarantined[store.manifest.key] = rebuilt.quarantined


async def _restore_tracked(service: BalanceService, layout: Layout) -> int:
    """Track again every address the layout holds balances or history of (history
    blobs name the addresses of a shard whose current blob was lost too)."""
    addresses: set[str] = set()
    for folder, decode in _ADDRESS_READERS:
        async for key in service.blobs.iter_keys(f"{layout.prefix}/{folder}/"):
            try:
                addresses.update(decode((await service.blobs.get(key)).data, key))
            except (BlobNotFoundError, CorruptBlobError):
                continue
    async for key in service.blobs.iter_keys(f"{SPEC_PREFIX}/"):
        parts = blob_key_parts(key)  # spec/{current,series,snapshots}/<address>[/...]
        if len(parts) >= 3:
            addresses.add(parts[2])
    return await service.tracked.track_many(Principal.parse(a) for a in sorted(addresses))


def _addresses_of_shard(data: bytes, key: str) -> Iterable[str]:
    return decode_current(data, key).addresses


def _addresses_of_segment(data: bytes, key: str) -> Iterable[str]:
    return [record.address for record in decode_segment(data, key).records]


def _addresses_of_month(data: bytes, key: str) -> Iterable[str]:
    doc = decode_month(data, key)
    return {address for address, _ in [*doc.series, *doc.openings]}


def _addresses_of_daily(data: bytes, key: str) -> Iterable[str]:
    return {address for address, _ in decode_daily(data, key).series}


_ADDRESS_READERS = (
    ("current", _addresses_of_shard),
    ("journal", _addresses_of_segment),
    ("month", _addresses_of_month),
    ("daily", _addresses_of_daily),
)


async def _read_again(
    service: BalanceService,
    report: RepairReport,
    by_key: dict[str, str],
    layout: Layout,
    backfill: bool,
) -> None:
    tracked = [entry.address for entry in await service.tracked_addresses()]
    current = _lost(by_key, tracked, layout, _CURRENT_KINDS, everyone={"journal-segment"})
    history = _lost(by_key, tracked, layout, _HISTORY_KINDS, everyone=set())
    if current:
        outcomes = await service.syncer.refresh_many([Principal.parse(a) for a in current])
        for outcome in outcomes:
            problem = outcome.store_error or next(iter(outcome.errors.values()), None)
            if problem is None:
                report.reread.append(outcome.address)
            else:
                report.failed[outcome.address] = str(problem)
    if backfill:
        for address in history:
            try:
                await service.backfill(address, force=True)
            except BalancesError as error:
                report.failed[address] = f"backfill: {error}"
            else:
                report.backfilled.append(address)
    await service.clear_cache()


def _lost(
    by_key: dict[str, str],
    tracked: list[str],
    layout: Layout,
    kinds: frozenset[str],
    everyone: set[str],
) -> list[str]:
    """The tracked addresses whose data was in a quarantined blob of ``kinds``
    (all of them for a kind in ``everyone``)."""
    lost: set[str] = set()
    for key, kind in by_key.items():
        if kind in everyone:
            return sorted(tracked)
        if kind not in kinds:
            continue
        if kind.startswith("spec-"):
            lost.update(a for a in tracked if a in key.split("/"))
            continue
        shard = shard_index(key)
        lost.update(a for a in tracked if shard_of(a, layout.shards) == shard)
    return sorted(lost)
