"""The tracked set: which addresses the service keeps fresh, and their extra tokens.

Native tokens need no tracking (the listing finds every one an address holds);
map-based tokens do, because no balance endpoint reveals them. One blob,
``tracked``, holds the set for every replica (see :class:`SharedDocument`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from balances.blobs import BlobStore, blob_key
from balances.domain import Principal, TokenId
from balances.stores.document import SharedDocument
from balances.stores.encoding import corrupt, decode_document, encode_document

KIND = "tracked-set"
FORMAT = 1

Entries = Mapping[str, "TrackedAddress"]


@dataclass(frozen=True, slots=True)
class TrackedAddress:
    """A tracked address: its extra tokens (contract ids) and when tracking began."""

    address: str
    tokens: tuple[str, ...]
    since: float


def encode_tracked(entries: Entries) -> bytes:
    rows = [[entry.address, list(entry.tokens), entry.since] for entry in entries.values()]
    return encode_document(KIND, FORMAT, {"addresses": rows})


def decode_tracked(data: bytes, where: str) -> Entries:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        entries = {}
        for address, tokens, since in document["addresses"]:
            entries[str(address)] = TrackedAddress(
                str(address), tuple(str(t) for t in tokens), float(since)
            )
        return entries
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


class TrackedSet:
    """Track and untrack addresses (and their map-based tokens), shared through blobs."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        key: str | None = None,
        recheck_seconds: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._wall = wall_clock
        self._doc: SharedDocument[Entries] = SharedDocument(
            blobs,
            key or blob_key("tracked"),
            empty=dict,
            encode=encode_tracked,
            decode=decode_tracked,
            recheck_seconds=recheck_seconds,
        )

    async def track(self, address: Principal, tokens: Iterable[TokenId] = ()) -> TrackedAddress:
        """Track ``address`` (again: adds ``tokens`` to its own)."""
        key, added = str(address), [str(token) for token in tokens if not token.is_stx]
        since = self._wall()

        def change(entries: Entries) -> Entries:
            known = entries.get(key)
            merged = tuple(dict.fromkeys([*(known.tokens if known else ()), *added]))
            entry = TrackedAddress(key, merged, known.since if known else since)
            return entries if entry == known else {**entries, key: entry}

        return (await self._doc.update(change))[key]

    async def track_many(self, addresses: Iterable[Principal]) -> int:
        """Track every address in one write (an import of a large set: one document
        update, not one per address); returns how many were not tracked before."""
        keys, since = list(dict.fromkeys(str(address) for address in addresses)), self._wall()
        added: list[int] = []

        def change(entries: Entries) -> Entries:
            new = {key: TrackedAddress(key, (), since) for key in keys if key not in entries}
            added[:] = [len(new)]
            return {**entries, **new} if new else entries

        await self._doc.update(change)
        return added[0]

    async def untrack(self, address: Principal, tokens: Iterable[TokenId] | None = None) -> bool:
        """Stop tracking ``address`` (or only ``tokens`` of it); False if nothing changed."""
        key = str(address)
        dropped = None if tokens is None else {str(token) for token in tokens}

        def change(entries: Entries) -> Entries:
            known = entries.get(key)
            if known is None:
                return entries
            if dropped is None:
                return {k: v for k, v in entries.items() if k != key}
            kept = tuple(t for t in known.tokens if t not in dropped)
            return {**entries, key: TrackedAddress(key, kept, known.since)}

        before = await self._doc.current()
        after = await self._doc.update(change)
        return after != before

    async def get(self, address: Principal) -> TrackedAddress | None:
        return (await self._doc.current()).get(str(address))

    async def entries(self) -> list[TrackedAddress]:
        """Every tracked address, oldest first."""
        return sorted((await self._doc.current()).values(), key=lambda e: (e.since, e.address))

    def invalidate(self) -> None:
        self._doc.invalidate()
