"""The spec's ``BlobBalanceStore``: one blob per address holding every token's balance.

``current/<address>`` is a zstd JSON document (see :func:`encode_balances`). A
refresh is merged into it with a conditional write (create, or if-match the etag
read), retried on conflict, so concurrent writers never lose each other's reads;
it is written only when an amount changed or a token appeared. Reads that only
confirm what is stored update nothing here (the caller keeps the fresher stamps in
memory): writes are what blob storage bills most.
"""

from __future__ import annotations

import asyncio
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from balances.blobs import CREATE, BlobStore, IfMatch, WriteMode, blob_key
from balances.domain import MAX_AMOUNT, Principal
from balances.domain.current import (
    AddressBalances,
    AddressUpdate,
    Merged,
    Stamp,
    TokenKindName,
    TokenState,
    merge,
)
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    PreconditionFailedError,
    WriteConflictError,
)
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

KIND = "current-balances"
FORMAT = 1
_KINDS: tuple[TokenKindName, ...] = ("stx", "native", "map")
DEFAULT_ATTEMPTS = 8
#: Addresses whose last stored version (and etag) is remembered.
SEEN_LIMIT = 10_000


def encode_balances(balances: AddressBalances) -> bytes:
    """Stamps are listed once and referenced by index: one refresh stamps many tokens."""
    stamps: dict[Stamp, int] = {}

    def index(stamp: Stamp) -> int:
        return stamps.setdefault(stamp, len(stamps))

    tokens = [
        [key, str(state.amount), index(state.stamp), state.kind]
        for key, state in sorted(balances.tokens.items())
    ]
    listing = None if balances.listing is None else index(balances.listing)
    body = {
        "address": balances.address,
        "stamps": [[stamp.at, stamp.block_height] for stamp in stamps],
        "tokens": tokens,
        "listing": listing,
    }
    return encode_document(KIND, FORMAT, body)


def decode_balances(data: bytes, where: str) -> AddressBalances:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        stamps = [_stamp(entry) for entry in document["stamps"]]
        tokens = {
            sys.intern(str(key)): TokenState(_amount(amount), _at(stamps, index), _kind(kind))
            for key, amount, index, kind in document["tokens"]
        }
        listing = None if document["listing"] is None else _at(stamps, document["listing"])
        return AddressBalances(str(document["address"]), tokens, listing)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def _stamp(entry: Any) -> Stamp:
    at, height = entry
    if height is not None and not isinstance(height, int):
        raise ValueError(f"block height {height!r}")
    return Stamp(float(at), height)


def _amount(text: Any) -> int:
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()):
        raise ValueError(f"amount {text!r}")
    amount = int(text)
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount {text} exceeds u128")
    return amount


def _at(stamps: list[Stamp], index: Any) -> Stamp:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(stamps):
        raise ValueError(f"stamp index {index!r}")
    return stamps[index]


def _kind(text: Any) -> TokenKindName:
    if text not in _KINDS:
        raise ValueError(f"token kind {text!r}")
    return cast(TokenKindName, text)


class AddressBlobBalanceStore:
    """Current balances, one blob per address, under ``prefix``."""

    def __init__(
        self, blobs: BlobStore, *, prefix: str = "current", attempts: int = DEFAULT_ATTEMPTS
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self._blobs = blobs
        self._prefix = prefix
        self._attempts = attempts
        # The last version read or written per address, so a refresh right after a
        # load merges into it and writes with if-match without reading it again.
        self._seen: OrderedDict[str, tuple[AddressBalances, str]] = OrderedDict()

    def key(self, address: str) -> str:
        return blob_key(*self._prefix.split("/"), address)

    async def load(self, address: Principal) -> AddressBalances | None:
        found = await self._read(str(address))
        return None if found is None else found[0]

    async def load_remembered(self, address: Principal) -> AddressBalances | None:
        """The version this store last read or wrote (no I/O), else :meth:`load`."""
        seen = self._seen.get(str(address))
        return seen[0] if seen is not None else await self.load(address)

    async def load_many(self, addresses: Sequence[Principal]) -> dict[str, AddressBalances | None]:
        unique = list(dict.fromkeys(str(address) for address in addresses))
        loaded = await asyncio.gather(*(self._read(address) for address in unique))
        return {
            address: None if found is None else found[0]
            for address, found in zip(unique, loaded, strict=True)
        }

    async def apply(self, update: AddressUpdate) -> Merged:
        key = self.key(update.address)
        found = self._seen.get(update.address)
        for _ in range(self._attempts):
            if found is None:
                found = await self._read(update.address)
            current, etag = (None, None) if found is None else found
            merged = merge(current, update)
            if not merged.needs_write:
                return merged
            mode: WriteMode = CREATE if etag is None else IfMatch(etag)
            data = encode_balances(merged.balances)
            try:
                info = await self._blobs.put(key, data, mode=mode, content_type=CONTENT_TYPE)
            except PreconditionFailedError:
                found = None  # another writer got there first: merge into what it wrote
                continue
            self._remember(update.address, merged.balances, info.etag)
            return merged
        raise WriteConflictError(
            f"{key}: the conditional write lost {self._attempts} races in a row; nothing was lost, "
            "the refresh was not stored"
        )

    async def apply_many(self, updates: Sequence[AddressUpdate]) -> list[Merged | BalancesError]:
        async def one(update: AddressUpdate) -> Merged | BalancesError:
            try:
                return await self.apply(update)
            except BalancesError as error:
                return error

        return list(await asyncio.gather(*(one(update) for update in updates)))

    async def _read(self, address: str) -> tuple[AddressBalances, str] | None:
        key = self.key(address)
        try:
            blob = await self._blobs.get(key)
        except BlobNotFoundError:
            self._seen.pop(address, None)
            return None
        balances = decode_balances(blob.data, key)
        self._remember(address, balances, blob.etag)
        return balances, blob.etag

    def _remember(self, address: str, balances: AddressBalances, etag: str) -> None:
        # Without in-memory failures: they belong to one refresh, not to the stored state.
        self._seen[address] = (replace(balances, failures={}), etag)
        self._seen.move_to_end(address)
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
