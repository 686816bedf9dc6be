"""How the feed lies in blobs: numbered segments and one head document.

- ``<prefix>/feed/segments/<first>-<last>-<written>``: entries ``first..last`` (20
  digits each) written at unix second ``written``. Created, never overwritten; the
  listing alone tells which segment holds a sequence number and how old it is.
- ``<prefix>/feed/head``: the writer's claim (:class:`FeedHead`): who writes, the
  numbers it reserved, the ranges lost in a writer's crash (*holes*) and how far
  retention has deleted. Changed only by conditional writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from balances.blobs import blob_key
from balances.domain.feed import FeedEntry, decode_entry
from balances.stores.encoding import corrupt, decode_document, encode_document

SEGMENT_KIND = "feed-segment"
HEAD_KIND = "feed-head"
FORMAT = 1
_DIGITS = 20


@dataclass(frozen=True, slots=True)
class SegmentName:
    """What a segment's key says: the numbers it holds and when it was written."""

    first: int
    last: int
    written: int

    def key(self, prefix: str) -> str:
        name = f"{self.first:0{_DIGITS}d}-{self.last:0{_DIGITS}d}-{self.written:010d}"
        return blob_key(prefix, "feed", "segments", name)


def segments_prefix(prefix: str) -> str:
    return blob_key(prefix, "feed", "segments") + "/"


def head_key(prefix: str) -> str:
    return blob_key(prefix, "feed", "head")


def parse_segment_key(key: str) -> SegmentName | None:
    """The name in ``key``, or None for a key that is not a segment's."""
    first, _, rest = key.rpartition("/")[2].partition("-")
    last, _, written = rest.partition("-")
    parts = (first, last, written)
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    name = SegmentName(int(first), int(last), int(written))
    return name if name.first <= name.last else None


def encode_segment(entries: Sequence[FeedEntry]) -> bytes:
    return encode_document(SEGMENT_KIND, FORMAT, {"entries": [e.to_json() for e in entries]})


def decode_segment(data: bytes, where: str) -> list[FeedEntry]:
    document = decode_document(data, SEGMENT_KIND, FORMAT, where=where)
    try:
        return [decode_entry(item) for item in document["entries"]]
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


@dataclass(frozen=True, slots=True)
class FeedHead:
    """The feed's shared state. ``reserved_through``: the writer may number entries up
    to it; ``holes``: ranges (inclusive) whose entries were lost; ``pruned_through``:
    the last number retention deleted (0: none)."""

    writer: str | None = None
    reserved_through: int = 0
    holes: tuple[tuple[int, int], ...] = ()
    pruned_through: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def hole_at(self, after: int) -> tuple[int, int] | None:
        """The hole a consumer positioned at ``after`` falls into next, if any."""
        for first, last in self.holes:
            if first - 1 <= after < last:
                return first, last
        return None


def encode_head(head: FeedHead) -> bytes:
    body = {
        "writer": head.writer,
        "reserved_through": head.reserved_through,
        "holes": [list(hole) for hole in head.holes],
        "pruned_through": head.pruned_through,
    }
    return encode_document(HEAD_KIND, FORMAT, body)


def decode_head(data: bytes, where: str) -> FeedHead:
    document = decode_document(data, HEAD_KIND, FORMAT, where=where)
    try:
        holes = tuple((int(a), int(b)) for a, b in document["holes"])
        writer = document["writer"]
        return FeedHead(
            None if writer is None else str(writer),
            int(document["reserved_through"]),
            holes,
            int(document["pruned_through"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def entry_bytes(entry: FeedEntry) -> bytes:
    """One entry as compact JSON (the SSE event's data)."""
    return orjson.dumps(entry.to_json())
