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
from collections.abc import Sequence
from typing import Any, cast

from balances.blobs import CREATE, BlobStore, IfMatch, WriteMode, blob_key
from balances.domain import Principal
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    PreconditionFailedError,
    WriteConflictError,
)
from balances.stores.current import (
    AddressBalances,
    AddressUpdate,
    Merged,
    Stamp,
    TokenKindName,
    TokenState,
    merge,
)
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

KIND = "current-balances"
FORMAT = 1
_KINDS: tuple[TokenKindName, ...] = ("stx", "native", "map")
DEFAULT_ATTEMPTS = 8


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
            str(key): TokenState(_amount(amount), stamps[index], _kind(kind))
            for key, amount, index, kind in document["tokens"]
        }
        listing = None if document["listing"] is None else stamps[document["listing"]]
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
    return int(text)


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

    def key(self, address: str) -> str:
        return blob_key(self._prefix, address)

    async def load(self, address: Principal) -> AddressBalances | None:
        found = await self._read(str(address))
        return None if found is None else found[0]

    async def load_many(self, addresses: Sequence[Principal]) -> dict[str, AddressBalances | None]:
        unique = list(dict.fromkeys(str(address) for address in addresses))
        loaded = await asyncio.gather(*(self._read(address) for address in unique))
        return {
            address: None if found is None else found[0]
            for address, found in zip(unique, loaded, strict=True)
        }

    async def apply(self, update: AddressUpdate) -> Merged:
        key = self.key(update.address)
        for _ in range(self._attempts):
            found = await self._read(update.address)
            current, etag = (None, None) if found is None else found
            merged = merge(current, update)
            if not merged.needs_write:
                return merged
            mode: WriteMode = CREATE if etag is None else IfMatch(etag)
            data = encode_balances(merged.balances)
            try:
                await self._blobs.put(key, data, mode=mode, content_type=CONTENT_TYPE)
            except PreconditionFailedError:
                continue  # another writer got there first: merge into what it wrote
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
            return None
        return decode_balances(blob.data, key), blob.etag
