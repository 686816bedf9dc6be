"""Metering by key group and phase, and scaling a small run's counts to the fleet.

A run drives a layout over ``GroupedMeter(MeteredBlobStore(MemoryBlobStore()))``:
every operation passes a :class:`~balances.blobs.MeteredBlobStore` of its (phase,
key group), one of its key group, and the shared one, which meters the whole run.
Phases are what the run was doing: the sync (``apply_many`` and ``maintain``) or a
kind of read (reads are sampled, so each read phase scales by its own factor).
Key groups (the sharded layout's journal, manifest and shard blobs; the spec
layout's current, series and snapshot blobs) exist because the sync's counts scale
differently:

- what one address (or one shard of ~39 addresses) causes scales with the number
  of addresses: ``x factor`` (operations and bytes);
- the journal writes one segment per ``apply_many`` with any change, however many
  addresses changed (production has ~69 changes a cycle, so a segment nearly every
  cycle; a run of 117 addresses has ~0.8): its puts, gets and deletes scale to the
  production segment count, its listings (one per cycle and per compaction, one
  page either way) not at all, its bytes (the records) with the addresses;
- the manifest is one small blob per store: nothing scales;
- the spec layout lists its current blobs in pages of 1,000 addresses: its
  listings scale by pages.

Scaling every count by ``factor`` would bill the journal's 8,640 segments a month
85 times over (about $3.70 of puts that production never makes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from balances.blobs import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobPage,
    BlobStore,
    MeteredBlobStore,
    WriteMode,
)
from balances.blobs.base import keys_of
from balances.blobs.metering import BILLING_CLASS, MeterSnapshot
from balances.errors import BlobNotFoundError

OPERATIONS = tuple(BILLING_CLASS)


class GroupedMeter(BlobStore):
    """A blob store that meters each key group apart, over one shared ``total`` meter.

    ``groups`` maps key prefixes to group names (the longest matching prefix wins;
    keys matching none belong to ``default``). Operations and transfer are counted
    per (``phase``, group): the run sets :attr:`phase` to say what it is doing
    (syncing, or which kind of read), because reads are sampled and scale apart.
    Bytes stored are counted per group (:meth:`stored`). ``phantom`` (settable)
    marks keys whose GET misses stand for blobs a complete pre-population would
    have written; they are counted per (phase, group) so their bytes can be billed.
    """

    def __init__(
        self,
        total: MeteredBlobStore,
        groups: Mapping[str, str],
        default: str,
        phases: Sequence[str] = ("sync",),
    ) -> None:
        self.total = total
        self._prefixes = sorted(groups.items(), key=lambda item: -len(item[0]))
        names = list(dict.fromkeys([*groups.values(), default]))
        self._stores = {name: MeteredBlobStore(total) for name in names}
        self.meters = {
            (phase, name): MeteredBlobStore(self._stores[name])
            for phase in phases
            for name in names
        }
        self._default = default
        self.phase = phases[0]
        self.phantom: Callable[[str], bool] = lambda _key: False
        self.phantom_misses: Counter[tuple[str, str]] = Counter()

    def group(self, key: str) -> str:
        for prefix, name in self._prefixes:
            if key.startswith(prefix):
                return name
        return self._default

    def _meter(self, key: str) -> MeteredBlobStore:
        return self.meters[(self.phase, self.group(key))]

    async def get(self, key: str) -> Blob:
        try:
            return await self._meter(key).get(key)
        except BlobNotFoundError:
            if self.phantom(key):
                self.phantom_misses[(self.phase, self.group(key))] += 1
            raise

    async def head(self, key: str) -> BlobInfo:
        return await self._meter(key).head(key)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        return await self._meter(key).put(key, data, mode=mode, content_type=content_type)

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        return await self._meter(prefix).list(prefix, cursor=cursor, limit=limit)

    async def delete(self, keys: str | Iterable[str]) -> None:
        by_group: dict[str, list[str]] = {}
        for key in keys_of(keys):
            by_group.setdefault(self.group(key), []).append(key)
        for name, group_keys in by_group.items():
            await self.meters[(self.phase, name)].delete(group_keys)

    async def close(self) -> None:
        await self.total.close()

    def reset(self) -> None:
        """Zero every counter (bytes stored stays: it is state, not traffic)."""
        self.total.reset()
        for meter in [*self._stores.values(), *self.meters.values()]:
            meter.reset()
        self.phantom_misses.clear()

    def snapshots(self) -> dict[tuple[str, str], MeterSnapshot]:
        """Operations and transfer per (phase, group)."""
        return {key: meter.snapshot() for key, meter in self.meters.items()}

    def stored(self) -> dict[str, MeterSnapshot]:
        """Per group; of these, only bytes and blobs stored are meant."""
        return {name: store.snapshot() for name, store in self._stores.items()}


@dataclass(frozen=True, slots=True)
class ScaleRule:
    """How one group's counts grow from the run to the fleet: ``ops`` per operation
    (``default`` for the others) and ``data`` for bytes and blobs."""

    default: float
    data: float
    ops: Mapping[str, float] = field(default_factory=dict)

    def op(self, name: str) -> float:
        return self.ops.get(name, self.default)


@dataclass(frozen=True, slots=True)
class Extra:
    """What a shortened pre-population left out, added back (see the notes)."""

    bytes_stored: float = 0.0
    blobs_stored: float = 0.0
    bytes_downloaded: float = 0.0


def scale_traffic(
    snapshot: MeterSnapshot, rule: ScaleRule, extra: Extra = Extra()
) -> MeterSnapshot:
    """The operations and transfer of ``snapshot`` (plus ``extra``) at fleet size."""
    operations = {op: round(snapshot.operations.get(op, 0) * rule.op(op)) for op in OPERATIONS}
    return build_snapshot(
        operations,
        uploaded=snapshot.bytes_uploaded * rule.data,
        downloaded=(snapshot.bytes_downloaded + extra.bytes_downloaded) * rule.data,
        stored=0,
        blobs=0,
    )


def scale_storage(
    snapshot: MeterSnapshot, rule: ScaleRule, extra: Extra = Extra()
) -> MeterSnapshot:
    """The bytes and blobs stored of ``snapshot`` (plus ``extra``) at fleet size."""
    return build_snapshot(
        dict.fromkeys(OPERATIONS, 0),
        uploaded=0,
        downloaded=0,
        stored=(snapshot.bytes_stored + extra.bytes_stored) * rule.data,
        blobs=(snapshot.blobs_stored + extra.blobs_stored) * rule.data,
    )


def build_snapshot(
    operations: Mapping[str, int],
    *,
    uploaded: float,
    downloaded: float,
    stored: float,
    blobs: float,
) -> MeterSnapshot:
    classes = dict.fromkeys(("simple", "advanced", "free"), 0)
    for op, count in operations.items():
        classes[BILLING_CLASS[op]] += count
    return MeterSnapshot(
        operations=dict(operations),
        simple=classes["simple"],
        advanced=classes["advanced"],
        free=classes["free"],
        bytes_uploaded=round(uploaded),
        bytes_downloaded=round(downloaded),
        bytes_stored=round(stored),
        blobs_stored=round(blobs),
    )


def add_snapshots(snapshots: Sequence[MeterSnapshot]) -> MeterSnapshot:
    operations = {op: sum(s.operations.get(op, 0) for s in snapshots) for op in OPERATIONS}
    return build_snapshot(
        operations,
        uploaded=sum(s.bytes_uploaded for s in snapshots),
        downloaded=sum(s.bytes_downloaded for s in snapshots),
        stored=sum(s.bytes_stored for s in snapshots),
        blobs=sum(s.blobs_stored for s in snapshots),
    )


def operations_between(before: MeterSnapshot, after: MeterSnapshot) -> dict[str, int]:
    """The operations counted from ``before`` to ``after`` (for one probe)."""
    return {op: after.operations.get(op, 0) - before.operations.get(op, 0) for op in OPERATIONS}
