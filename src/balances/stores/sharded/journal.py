"""The journal: one immutable blob per batch of balance changes (the LSM's level 0).

A sync cycle that saw changes writes *one* segment holding every changed address,
instead of one blob per address: blob stores bill per write. Segments are
created, never overwritten (a fresh unique name with ``Create``), so concurrent
writers cannot conflict; compaction (:mod:`balances.stores.sharded.compact`) folds them into
shard blobs and deletes them.

A segment id is ``<unix ms, 13 digits>-<random>``: ids sort by time, which is the
order compaction and readers fold them in.

Format 2 adds what block ingestion writes: a record's *retractions* (changes a
reorg voided, :mod:`balances.domain.retractions`) and the segment's ingest *mark*
(the last block folded when it was written: the cursor a restart resumes from).
Segments without either are still written as format 1.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from balances.blobs import CREATE, BlobStore, blob_key
from balances.domain import MAX_AMOUNT
from balances.domain.current import Change, Stamp, TokenKindName, TokenState
from balances.domain.retractions import Retraction
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

KIND = "journal-segment"
FORMAT = 2
_KINDS = ("stx", "native", "map")


@dataclass(frozen=True, slots=True)
class Record:
    """What one address's update changed: amounts with the read that saw them, the
    stamp of a complete native listing (when the update had one), and the changes a
    reorg voided (folded after ``changes``)."""

    address: str
    changes: tuple[Change, ...]
    listing: Stamp | None = None
    retracted: tuple[Retraction, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestMark:
    """The last block ingestion had folded when a segment was written."""

    height: int
    block_hash: str | None
    index_hash: str | None
    block_time: float
    #: Ingestion has folded every block since this height without a gap.
    anchored_from: int
    source: str


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: str
    records: tuple[Record, ...]
    mark: IngestMark | None = None


def segment_time(segment_id: str) -> float:
    """The unix time (seconds) a segment was written, from its id."""
    return int(segment_id.partition("-")[0]) / 1000


def new_segment_id(now: float) -> str:
    return f"{int(now * 1000):013d}-{secrets.token_hex(4)}"


def encode_segment(segment: Segment) -> bytes:
    stamps: dict[Stamp, int] = {}
    tokens: dict[tuple[str, TokenKindName], int] = {}

    def stamp(value: Stamp) -> int:
        return stamps.setdefault(value, len(stamps))

    def token(key: str, kind: TokenKindName) -> int:
        return tokens.setdefault((key, kind), len(tokens))

    def retraction(r: Retraction) -> list[object]:
        restored = r.restored
        return [
            token(r.key, r.kind),
            str(r.amount),
            stamp(r.stamp),
            None if restored is None else str(restored.amount),
            None if restored is None else stamp(restored.stamp),
        ]

    records: list[list[object]] = []
    for record in segment.records:
        row: list[object] = [
            record.address,
            [[token(c.key, c.kind), str(c.new), stamp(c.stamp)] for c in record.changes],
            None if record.listing is None else stamp(record.listing),
        ]
        if record.retracted:
            row.append([retraction(r) for r in record.retracted])
        records.append(row)
    body: dict[str, object] = {
        "segment": segment.segment_id,
        "stamps": [[s.at, s.block_height] for s in stamps],
        "tokens": [[key, kind] for key, kind in tokens],
        "records": records,
    }
    if segment.mark is not None:
        body["ingest"] = mark_json(segment.mark)
    plain = segment.mark is None and not any(r.retracted for r in segment.records)
    return encode_document(KIND, 1 if plain else FORMAT, body)


def mark_json(mark: IngestMark) -> dict[str, object]:
    return {
        "height": mark.height,
        "block_hash": mark.block_hash,
        "index_hash": mark.index_hash,
        "block_time": mark.block_time,
        "anchored_from": mark.anchored_from,
        "source": mark.source,
    }


def decode_mark(data: object) -> IngestMark:
    """An ingest mark from its JSON form (segments and the manifest share it)."""
    if not isinstance(data, dict):
        raise ValueError("an ingest mark is an object")
    height, anchored = data["height"], data["anchored_from"]
    if not isinstance(height, int) or not isinstance(anchored, int):
        raise ValueError("an ingest mark's heights are integers")
    hashes = [data.get("block_hash"), data.get("index_hash")]
    if any(h is not None and not isinstance(h, str) for h in hashes):
        raise ValueError("an ingest mark's hashes are strings")
    return IngestMark(
        height, hashes[0], hashes[1], float(data["block_time"]), anchored, str(data["source"])
    )


def decode_segment(data: bytes, where: str) -> Segment:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        stamps = [Stamp(float(at), height) for at, height in document["stamps"]]
        tokens = [(str(key), _kind(kind)) for key, kind in document["tokens"]]
        records = tuple(_record(row, stamps, tokens) for row in document["records"])
        mark = None if document.get("ingest") is None else decode_mark(document["ingest"])
        return Segment(str(document["segment"]), records, mark)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def _record(row: Any, stamps: list[Stamp], tokens: list[tuple[str, TokenKindName]]) -> Record:
    if not isinstance(row, list) or len(row) not in (3, 4):
        raise ValueError("a record is [address, changes, listing, retractions?]")
    address, changes, listing = str(row[0]), row[1], row[2]
    retracted = tuple(
        _retraction(item, stamps, tokens) for item in (row[3] if len(row) == 4 else ())
    )
    decoded = []
    for token_index, amount, stamp_index in changes:
        key, kind = tokens[_index(token_index, tokens)]
        decoded.append(
            Change(address, key, kind, None, _amount(amount), stamps[_index(stamp_index, stamps)])
        )
    stamp = None if listing is None else stamps[_index(listing, stamps)]
    return Record(address, tuple(decoded), stamp, retracted)


def _retraction(
    item: Any, stamps: list[Stamp], tokens: list[tuple[str, TokenKindName]]
) -> Retraction:
    token_index, amount, stamp_index, restored_amount, restored_stamp = item
    key, kind = tokens[_index(token_index, tokens)]
    restored = None
    if restored_amount is not None:
        restored_at = stamps[_index(restored_stamp, stamps)]
        restored = TokenState(_amount(restored_amount), restored_at, kind)
    return Retraction(key, kind, _amount(amount), stamps[_index(stamp_index, stamps)], restored)


def _index(value: Any, table: Sequence[object]) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < len(table):
        raise ValueError(f"index {value!r}")
    return value


def _amount(text: Any) -> int:
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()):
        raise ValueError(f"amount {text!r}")
    amount = int(text)
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount {text} exceeds u128")
    return amount


def _kind(text: Any) -> TokenKindName:
    if text not in _KINDS:
        raise ValueError(f"token kind {text!r}")
    return cast(TokenKindName, text)


class Journal:
    """Segments under ``<prefix>/journal/``."""

    def __init__(
        self, blobs: BlobStore, prefix: str, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self._blobs = blobs
        self._prefix = f"{prefix}/journal/"
        self._wall = wall_clock

    def key(self, segment_id: str) -> str:
        return blob_key(*self._prefix.strip("/").split("/"), segment_id)

    async def append(self, records: Sequence[Record], mark: IngestMark | None = None) -> Segment:
        """Write one new segment holding ``records`` (and ingestion's mark)."""
        segment = Segment(new_segment_id(self._wall()), tuple(records), mark)
        data = encode_segment(segment)
        await self._blobs.put(
            self.key(segment.segment_id), data, mode=CREATE, content_type=CONTENT_TYPE
        )
        return segment

    async def list_ids(self, after: str | None = None) -> list[str]:
        """Every segment id (after ``after``), oldest first. Cursors are opaque to
        every backend but one, so this lists the whole journal: compaction keeps it
        to about a day of segments."""
        ids = [key[len(self._prefix) :] async for key in self._blobs.iter_keys(self._prefix)]
        return sorted(i for i in ids if after is None or i > after)

    async def read(self, segment_id: str) -> Segment:
        key = self.key(segment_id)
        blob = await self._blobs.get(key)
        return decode_segment(blob.data, key)

    async def delete(self, segment_ids: Iterable[str]) -> None:
        keys = [self.key(segment_id) for segment_id in segment_ids]
        if keys:
            await self._blobs.delete(keys)
