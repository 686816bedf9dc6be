"""The journal: one immutable blob per batch of balance changes (the LSM's level 0).

A sync cycle that saw changes writes *one* segment holding every changed address,
instead of one blob per address: blob stores bill per write. Segments are
created, never overwritten (a fresh unique name with ``Create``), so concurrent
writers cannot conflict; compaction (:mod:`balances.stores.lsm`) folds them into
shard blobs and deletes them.

A segment id is ``<unix ms, 13 digits>-<random>``: ids sort by time, which is the
order compaction and readers fold them in.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from balances.blobs import CREATE, BlobStore, blob_key
from balances.domain import MAX_AMOUNT
from balances.stores.current import Change, Stamp, TokenKindName
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

KIND = "journal-segment"
FORMAT = 1
_KINDS = ("stx", "native", "map")


@dataclass(frozen=True, slots=True)
class Record:
    """What one address's update changed: amounts with the read that saw them, and the
    stamp of a complete native listing (when the update had one)."""

    address: str
    changes: tuple[Change, ...]
    listing: Stamp | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: str
    records: tuple[Record, ...]


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

    records = [
        [
            record.address,
            [[token(c.key, c.kind), str(c.new), stamp(c.stamp)] for c in record.changes],
            None if record.listing is None else stamp(record.listing),
        ]
        for record in segment.records
    ]
    body = {
        "segment": segment.segment_id,
        "stamps": [[s.at, s.block_height] for s in stamps],
        "tokens": [[key, kind] for key, kind in tokens],
        "records": records,
    }
    return encode_document(KIND, FORMAT, body)


def decode_segment(data: bytes, where: str) -> Segment:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        stamps = [Stamp(float(at), height) for at, height in document["stamps"]]
        tokens = [(str(key), _kind(kind)) for key, kind in document["tokens"]]
        records = tuple(
            _record(str(address), changes, listing, stamps, tokens)
            for address, changes, listing in document["records"]
        )
        return Segment(str(document["segment"]), records)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def _record(
    address: str,
    changes: Any,
    listing: Any,
    stamps: list[Stamp],
    tokens: list[tuple[str, TokenKindName]],
) -> Record:
    decoded = []
    for token_index, amount, stamp_index in changes:
        key, kind = tokens[_index(token_index, tokens)]
        decoded.append(
            Change(address, key, kind, None, _amount(amount), stamps[_index(stamp_index, stamps)])
        )
    stamp = None if listing is None else stamps[_index(listing, stamps)]
    return Record(address, tuple(decoded), stamp)


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

    async def append(self, records: Sequence[Record]) -> Segment:
        """Write one new segment holding ``records``."""
        segment = Segment(new_segment_id(self._wall()), tuple(records))
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
