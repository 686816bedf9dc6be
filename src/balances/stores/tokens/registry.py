"""Token metadata: kind, asset name, decimals, symbol, name — facts that do not change.

One blob, ``tokens``, holds what is known of every token (see :class:`SharedDocument`);
the chain is asked once per token, by :mod:`balances.sync.catalog`. Entries are
only ever added or completed, never forgotten, so racing writers converge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from balances.blobs import BlobStore, blob_key
from balances.domain.current import STX_KEY, TokenKindName
from balances.stores.document import SharedDocument
from balances.stores.encoding import corrupt, decode_document, encode_document

KIND = "token-registry"
FORMAT = 1
STX_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known of one token. ``decimals`` is None until metadata was read."""

    token_id: str
    kind: TokenKindName
    asset_name: str | None = None
    decimals: int | None = None
    symbol: str | None = None
    name: str | None = None
    token_uri: str | None = None
    total_supply: int | None = None
    fetched_at: float | None = None
    #: Every SIP-010 getter was read (not just decimals and symbol, for display).
    complete: bool = False

    @property
    def has_metadata(self) -> bool:
        return self.decimals is not None

    @property
    def asset_identifier(self) -> str | None:
        return None if self.asset_name is None else f"{self.token_id}::{self.asset_name}"

    def completed_by(self, other: TokenInfo) -> TokenInfo:
        """This entry with the fields ``other`` knows and this one does not."""
        filled = {
            name: getattr(other, name)
            for name in _FIELDS
            if getattr(self, name) is None and getattr(other, name) is not None
        }
        if other.complete:  # a newer full read: the fields that can change follow it
            filled.update(
                {name: getattr(other, name) for name in ("total_supply", "token_uri", "fetched_at")}
            )
            filled["complete"] = True
        return replace(self, **filled) if filled else self

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "kind": self.kind,
            "asset_identifier": self.asset_identifier,
            "decimals": self.decimals,
            "symbol": self.symbol,
            "name": self.name,
            "token_uri": self.token_uri,
            "total_supply": None if self.total_supply is None else str(self.total_supply),
        }


_FIELDS = ("asset_name", "decimals", "symbol", "name", "token_uri", "total_supply", "fetched_at")
STX_INFO = TokenInfo(STX_KEY, "stx", None, STX_DECIMALS, "STX", "Stacks", complete=True)

Registry = Mapping[str, TokenInfo]


def encode_registry(registry: Registry) -> bytes:
    rows = []
    for info in registry.values():
        row = [info.token_id, info.kind, *(getattr(info, name) for name in _FIELDS)]
        row[7] = None if info.total_supply is None else str(info.total_supply)
        rows.append([*row, info.complete])
    return encode_document(KIND, FORMAT, {"tokens": rows})


def decode_registry(data: bytes, where: str) -> Registry:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        registry = {}
        for row in document["tokens"]:
            token_id, kind, asset, decimals, symbol, name, uri, supply, fetched, complete = row
            if kind not in ("native", "map"):
                raise ValueError(f"kind {kind!r}")
            registry[str(token_id)] = TokenInfo(
                str(token_id),
                cast(TokenKindName, kind),
                asset,
                decimals,
                symbol,
                name,
                uri,
                None if supply is None else int(supply),
                fetched,
                bool(complete),
            )
        return registry
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


class TokenRegistry:
    """The stored token metadata, shared by every replica through one blob."""

    def __init__(self, blobs: BlobStore, *, key: str | None = None) -> None:
        self._doc: SharedDocument[Registry] = SharedDocument(
            blobs,
            key or blob_key("tokens"),
            empty=dict,
            encode=encode_registry,
            decode=decode_registry,
            recheck_seconds=3600.0,  # entries only grow; a miss re-reads anyway
        )

    async def get(self, token_id: str) -> TokenInfo | None:
        if token_id == STX_KEY:
            return STX_INFO
        return (await self._doc.current()).get(token_id)

    def peek(self, token_id: str) -> TokenInfo | None:
        """What the copy in memory knows of a token, without I/O (entries only grow,
        so a stale copy can lack a token but never be wrong about one)."""
        if token_id == STX_KEY:
            return STX_INFO
        held = self._doc.peek()
        return None if held is None else held.get(token_id)

    async def all(self) -> Registry:
        return await self._doc.current()

    async def record(self, infos: list[TokenInfo]) -> Registry:
        """Add or complete entries; writes only if something new was learned."""

        def change(registry: Registry) -> Registry:
            updated = dict(registry)
            for info in infos:
                known = updated.get(info.token_id)
                updated[info.token_id] = info if known is None else known.completed_by(info)
            return updated

        return await self._doc.update(change)

    def invalidate(self) -> None:
        self._doc.invalidate()
