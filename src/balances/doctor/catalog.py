"""Every kind of blob the service writes: which keys it lives under, how to read it,
and what it must agree with (the cross-checks of ``balances store verify``).

A check decodes the blob with the same function the service reads it with, so a
blob that passes here is one the service can read; then it checks what a decoder
alone cannot see (a shard blob holding an address of another shard, a segment
whose id is not its key's).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from balances.domain import Principal
from balances.errors import ConfigError, ValidationError
from balances.scheduler.lease import decode_lease
from balances.scheduler.state import decode_states
from balances.service.aggregates import FORMAT as AGGREGATE_FORMAT
from balances.service.aggregates import KIND as AGGREGATE_KIND
from balances.stores.encoding import decode_document
from balances.stores.prices import decode_month as decode_price_month
from balances.stores.sharded.documents import decode_current, decode_daily, decode_month
from balances.stores.sharded.journal import decode_segment
from balances.stores.sharded.manifest import decode_manifest
from balances.stores.sharded.parts import shard_of
from balances.stores.spec.address_blobs import decode_balances
from balances.stores.tokens.directory import decode_directory
from balances.stores.tokens.registry import decode_registry
from balances.stores.tracked import decode_tracked
from balances.sync.backfill import decode_checkpoint

#: Reads a blob's bytes (under its key) and returns what is wrong beyond what the
#: decoder refuses; the decoder raises :class:`~balances.errors.CorruptBlobError`.
#: A blob written for another configuration (another shard count) raises
#: :class:`~balances.errors.ConfigError`: that is a setting to fix, not damage.
Check = Callable[[bytes, str], list[str]]


@dataclass(frozen=True, slots=True)
class BlobKind:
    name: str
    pattern: re.Pattern[str]
    check: Check
    #: Whose data is lost when a blob of this kind is quarantined (for the report).
    loses: str


@dataclass(frozen=True, slots=True)
class Layout:
    """The sharded layout's parameters that verification checks against."""

    prefix: str
    shards: int


def _shard_of_key(key: str) -> int:
    return int(key.rsplit("/", 1)[-1], 16)


def _misplaced(addresses: Iterable[str], key: str, layout: Layout) -> list[str]:
    """Addresses stored in a shard blob that the hash puts in another shard."""
    shard = _shard_of_key(key)
    if shard >= layout.shards:
        raise ConfigError(f"shard {shard} is beyond the configured {layout.shards} shards")
    wrong = sorted({a for a in addresses if shard_of(a, layout.shards) != shard})
    if not wrong:
        return []
    return [f"{len(wrong)} address(es) belong to another shard, e.g. {wrong[0]}"]


def _bad_principals(addresses: Iterable[str]) -> list[str]:
    bad = []
    for address in addresses:
        try:
            Principal.parse(address)
        except ValidationError:
            bad.append(address)
    return [f"{len(bad)} invalid address(es), e.g. {bad[0][:60]!r}"] if bad else []


def _manifest(layout: Layout) -> Check:
    def check(data: bytes, key: str) -> list[str]:
        doc = decode_manifest(data, key)
        if doc.shards != layout.shards:
            return [
                f"written with {doc.shards} shards; the service is configured for {layout.shards}"
            ]
        return []

    return check


def _segment(data: bytes, key: str) -> list[str]:
    segment = decode_segment(data, key)
    problems = _bad_principals(record.address for record in segment.records)
    if segment.segment_id != key.rsplit("/", 1)[-1]:
        problems.append(f"holds segment {segment.segment_id!r}, not the one its key names")
    return problems


def _current(layout: Layout) -> Check:
    def check(data: bytes, key: str) -> list[str]:
        doc = decode_current(data, key)
        return _bad_principals(doc.addresses) + _misplaced(doc.addresses, key, layout)

    return check


def _month(layout: Layout) -> Check:
    def check(data: bytes, key: str) -> list[str]:
        doc = decode_month(data, key)
        addresses = {address for address, _ in [*doc.series, *doc.openings]}
        return _misplaced(addresses, key, layout)

    return check


def _daily(layout: Layout) -> Check:
    def check(data: bytes, key: str) -> list[str]:
        doc = decode_daily(data, key)
        return _misplaced({address for address, _ in doc.series}, key, layout)

    return check


def _decoded_by(decode: Callable[[bytes, str], object]) -> Check:
    def check(data: bytes, key: str) -> list[str]:
        decode(data, key)
        return []

    return check


def _price_month(data: bytes, key: str) -> list[str]:
    decode_price_month(data, key.rsplit("/", 1)[-1], key)
    return []


def _aggregate(data: bytes, key: str) -> list[str]:
    document = decode_document(data, AGGREGATE_KIND, AGGREGATE_FORMAT, where=key)
    return [] if isinstance(document.get("history"), dict) else ["no history in it"]


def blob_kinds(layout: Layout) -> list[BlobKind]:
    """Every kind of blob, first match wins."""
    p = re.escape(layout.prefix)
    hexa, month = "[0-9a-f]{3,}", r"\d{4}-\d{2}"
    rows: list[tuple[str, str, Check, str]] = [
        ("manifest", rf"{p}/manifest", _manifest(layout), "nothing (rebuilt from the listing)"),
        ("journal-segment", rf"{p}/journal/\d{{13}}-[0-9a-f]+", _segment, "recent changes"),
        ("shard-current", rf"{p}/current/{hexa}", _current(layout), "current balances"),
        ("series-month", rf"{p}/month/{month}/{hexa}", _month(layout), "a month of history"),
        ("daily-rollup", rf"{p}/daily/{hexa}", _daily(layout), "daily closes"),
        ("spec-current", "spec/current/[^/]+", _decoded_by(decode_balances), "current balances"),
        ("spec-month", rf"spec/series/[^/]+/{month}", _decoded_by(decode_month), "history"),
        (
            "spec-snapshot",
            r"spec/snapshots/[^/]+/\d{4}-\d{2}-\d{2}",
            _decoded_by(decode_balances),
            "a daily snapshot",
        ),
        ("tracked-set", "tracked", _decoded_by(decode_tracked), "the tracked addresses"),
        ("token-registry", "tokens", _decoded_by(decode_registry), "token kinds (re-read)"),
        ("token-metadata", "token-metadata", _decoded_by(decode_directory), "token metadata"),
        ("price-month", rf"prices/{month}", _price_month, "a month of USD prices"),
        ("backfill-checkpoint", "backfill/[^/]+", _decoded_by(decode_checkpoint), "a resume point"),
        ("aggregate", "aggregates/[^/]+/[^/]+", _aggregate, "a precomputed chart"),
        ("scheduler-lease", "scheduler/lease", _decoded_by(decode_lease), "the leader lease"),
        ("scheduler-state", "scheduler/state", _decoded_by(decode_states), "task run records"),
    ]
    return [
        BlobKind(name, re.compile(rf"{pattern}\Z"), check, loses)
        for name, pattern, check, loses in rows
    ]


def kind_of(key: str, kinds: Iterable[BlobKind]) -> BlobKind | None:
    return next((kind for kind in kinds if kind.pattern.match(key)), None)
