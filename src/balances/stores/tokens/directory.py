"""Token metadata by contract id: decimals, symbol and name, learned once per token.

One blob, ``token-metadata``, shared by every replica (a :class:`SharedDocument`).
It holds what the background fetcher (:mod:`balances.sync.metadata`) and the bulk
seed (``balances tokens sync``) learned, for tokens whose kind may not be known yet
(the Token Metadata API lists every SIP-010 token; it does not say which are
``define-fungible-token`` tokens and which map-based). The catalog completes a
:class:`~balances.stores.tokens.registry.TokenInfo` from it. Entries are only added or
refreshed, never forgotten, so racing writers converge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from balances.blobs import BlobStore, blob_key
from balances.stores.document import SharedDocument
from balances.stores.encoding import corrupt, decode_document, encode_document

KIND = "token-metadata"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class KnownMetadata:
    """What a token's metadata says (``fetched_at``: unix seconds)."""

    decimals: int
    symbol: str | None
    name: str | None
    token_uri: str | None
    total_supply: int | None
    fetched_at: float


Directory = Mapping[str, KnownMetadata]


def encode_directory(directory: Directory) -> bytes:
    rows = [
        [
            contract,
            m.decimals,
            m.symbol,
            m.name,
            m.token_uri,
            None if m.total_supply is None else str(m.total_supply),
            m.fetched_at,
        ]
        for contract, m in directory.items()
    ]
    return encode_document(KIND, FORMAT, {"tokens": rows})


def decode_directory(data: bytes, where: str) -> Directory:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        directory = {}
        for contract, decimals, symbol, name, uri, supply, fetched in document["tokens"]:
            if not isinstance(decimals, int) or isinstance(decimals, bool):
                raise TypeError(f"decimals {decimals!r}")
            directory[str(contract)] = KnownMetadata(
                decimals, symbol, name, uri, None if supply is None else int(supply), float(fetched)
            )
        return directory
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


class TokenDirectory:
    """The stored metadata of every token learned so far, keyed by contract id."""

    def __init__(self, blobs: BlobStore, *, key: str | None = None) -> None:
        self._doc: SharedDocument[Directory] = SharedDocument(
            blobs,
            key or blob_key("token-metadata"),
            empty=dict,
            encode=encode_directory,
            decode=decode_directory,
            recheck_seconds=3600.0,  # entries only grow; a miss re-reads anyway
        )

    async def get(self, contract_id: str) -> KnownMetadata | None:
        return (await self._doc.current()).get(contract_id)

    async def all(self) -> Directory:
        return await self._doc.current()

    def peek(self, contract_id: str) -> KnownMetadata | None:
        """What the copy in memory knows, without I/O (None also when not loaded)."""
        held = self._doc.peek()
        return None if held is None else held.get(contract_id)

    async def record(self, found: Mapping[str, KnownMetadata]) -> Directory:
        """Add or refresh entries (the newer read wins); writes only on a change."""

        def change(directory: Directory) -> Directory | None:
            fresh = {
                contract: meta
                for contract, meta in found.items()
                if (known := directory.get(contract)) is None or known.fetched_at < meta.fetched_at
            }
            return {**directory, **fresh} if fresh else None

        return await self._doc.update(change)
