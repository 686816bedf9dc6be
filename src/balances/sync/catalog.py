"""The token catalog: what each token is (kind, asset name) and its SIP-010 metadata.

Facts are learned lazily and once: a native token's kind and asset name come free
with a balance listing; an unknown contract costs one ``/v2/contracts/interface``
read. Kinds go to the :class:`~balances.stores.tokens.registry.TokenRegistry` blob in one
write per batch. Display metadata (decimals, symbol) never holds up an answer:
:meth:`TokenCatalog.display_infos` answers with what is known and has the
:class:`~balances.sync.metadata.MetadataFetcher` fetch the rest in the background,
into the :class:`~balances.stores.tokens.directory.TokenDirectory`. Full metadata
(:meth:`TokenCatalog.info`, for a token's own page) is read when asked. A read that
fails is remembered in memory for a while, so an outage does not cost a request on
every balance read; it is never stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Literal

from balances.chain.models import TokenKind
from balances.chain.protocol import ChainReader
from balances.domain import TokenId
from balances.domain.current import TokenKindName
from balances.errors import BalancesError
from balances.stores.tokens.directory import KnownMetadata, TokenDirectory
from balances.stores.tokens.registry import STX_INFO, TokenInfo, TokenRegistry
from balances.sync.metadata import FetchState, MetadataFetcher

log = logging.getLogger("balances.sync")
#: How much metadata a read wants: none (kind only), display (decimals, symbol), full.
_Metadata = Literal["none", "display", "full"]
DEFAULT_RETRY_AFTER = 300.0
DEFAULT_CONCURRENCY = 8
#: Token metadata hardly ever changes: read again after this long (30 days).
METADATA_REFRESH_SECONDS = 30 * 86_400.0


class TokenCatalog:
    """Token facts from the registry, filled from the chain on first need."""

    def __init__(
        self,
        chain: ChainReader,
        registry: TokenRegistry,
        directory: TokenDirectory,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        retry_after: float = DEFAULT_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._chain = chain
        self.registry = registry
        self._gate = asyncio.Semaphore(concurrency)
        self._retry_after = retry_after
        self._clock = clock
        self._wall = wall_clock
        self._failed: dict[str, tuple[float, str]] = {}  # token id -> (when, why)
        self._inflight: dict[str, asyncio.Task[TokenInfo]] = {}
        self._learned: dict[str, TokenInfo] = {}  # not yet written to the registry
        self.directory = directory
        #: token -> (registry entry, directory entry, their join), for the hot path
        self._joined: dict[str, tuple[TokenInfo, KnownMetadata, TokenInfo]] = {}
        self.fetcher = MetadataFetcher(
            chain, directory, retry_after=retry_after, clock=clock, wall_clock=wall_clock
        )

    async def known(self, token: TokenId) -> TokenInfo | None:
        """What is known of ``token`` without asking the chain."""
        key = str(token)
        stored, learned = await self.registry.get(key), self._learned.get(key)
        found = _merged(stored, learned)
        if found is None:
            return None
        return _with_metadata(found, await self.directory.get(token.contract_id))

    def peek(self, token: TokenId) -> TokenInfo | None:
        """What is known of ``token`` in memory, without I/O; the hot path of reads."""
        if token.is_stx:
            return STX_INFO
        key = str(token)
        found = _merged(self.registry.peek(key), self._learned.get(key))
        if found is None:
            return None
        meta = self.directory.peek(token.contract_id)
        if meta is None:
            return found
        joined = self._joined.get(key)
        if joined is not None and joined[0] is found and joined[1] is meta:
            return joined[2]  # the same entries as last time: no new object per read
        merged = _with_metadata(found, meta)
        self._joined[key] = (found, meta, merged)
        return merged

    def display_ready(self, info: TokenInfo | None, token: TokenId) -> bool:
        """``info`` is enough to show a balance (or metadata failed recently)."""
        return info is not None and (info.has_metadata or self._recently_failed(token))

    async def display_infos(self, tokens: Iterable[TokenId]) -> dict[str, TokenInfo | None]:
        """What is known of each token now, without a chain request; the metadata
        still missing is fetched in the background (:meth:`metadata_state` says so)."""
        found: dict[str, TokenInfo | None] = {}
        lacking = []
        for token in tokens:
            info = self.peek(token)
            if info is None or not info.has_metadata:
                info = await self.known(token)
            found[str(token)] = info
            if not token.is_stx and (info is None or self._refresh_due(info)):
                lacking.append(token.contract_id)
        self.fetcher.want(lacking)
        await self.flush()  # kinds learned by the refresh (one write, when any)
        return found

    def _refresh_due(self, info: TokenInfo) -> bool:
        """Metadata missing, or read so long ago that it is read again (in the
        background; the answer uses what is known)."""
        if not info.has_metadata:
            return True
        read = info.fetched_at
        return read is not None and self._wall() - read > METADATA_REFRESH_SECONDS

    def metadata_state(self, token: TokenId, info: TokenInfo | None) -> FetchState | None:
        """None when ``info`` has its metadata; else ``pending`` (being fetched) or
        ``unknown`` (the last read failed; asked again after a backoff)."""
        if info is not None and info.has_metadata:
            return None
        if self._recently_failed(token) and str(token) in self._failed:
            return "unknown"
        return self.fetcher.state(token.contract_id)

    async def kind(self, token: TokenId) -> TokenKindName:
        """``stx``, ``native`` or ``map``; one interface read for an unknown contract."""
        if token.is_stx:
            return "stx"
        known = await self.known(token)
        if known is not None:
            return known.kind
        return (await self._resolve(token, metadata="none")).kind

    async def asset_identifier(self, token: TokenId) -> str | None:
        """A native token's asset identifier (one interface read if unknown; never
        metadata: a balance read must not wait on it)."""
        known = await self.known(token)
        if known is None:
            known = await self._resolve(token, metadata="none")
        return known.asset_identifier

    async def info(self, token: TokenId, *, full: bool = True) -> TokenInfo:
        """Everything known of ``token``, with metadata unless reading it failed recently
        (``full=False``: decimals and symbol suffice, two requests instead of five).

        Raises when not even the token's kind can be learned; missing metadata does
        not (``decimals`` stays None; :meth:`failure` says why).
        """
        info = await self._info(token, full)
        await self.flush()
        return info

    async def infos(self, tokens: Iterable[TokenId]) -> dict[str, TokenInfo | None]:
        """:meth:`info` (for display: ``full=False``) for many tokens, read concurrently
        and stored in one write; None for a token whose kind could not be learned."""
        wanted = {str(token): token for token in tokens}
        found: dict[str, TokenInfo | None] = {}
        missing = {}
        for key, token in wanted.items():
            info = self.peek(token)
            if self.display_ready(info, token):
                found[key] = info
            else:
                missing[key] = token
        if not missing:
            return found
        results = await asyncio.gather(
            *(self._info(token, False) for token in missing.values()), return_exceptions=True
        )
        await self.flush()
        for key, result in zip(missing, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, BalancesError):
                raise result
            if isinstance(result, BalancesError):
                self._failed[key] = (self._clock(), str(result))
            found[key] = result if isinstance(result, TokenInfo) else None
        return found

    def failure(self, token: TokenId) -> str | None:
        """Why reading ``token``'s metadata failed recently, if it did."""
        failed = self._failed.get(str(token))
        if failed is not None:
            return failed[1]
        return None if token.is_stx else self.fetcher.failure(token.contract_id)

    def learn_native(self, asset_identifiers: Iterable[str]) -> None:
        """Record native tokens seen in a listing (kind and asset name, no request)."""
        for asset in asset_identifiers:
            contract_id, _, asset_name = asset.partition("::")
            if contract_id not in self._learned:
                self._learned[contract_id] = TokenInfo(contract_id, "native", asset_name or None)

    def learn_map(self, tokens: Iterable[TokenId]) -> None:
        """Record configured map-based tokens: their kind is known, no interface read."""
        for token in tokens:
            if not token.is_stx and token.contract_id not in self._learned:
                self._learned[token.contract_id] = TokenInfo(token.contract_id, "map")

    async def close(self) -> None:
        """Stop fetching metadata in the background and write what was learned."""
        await self.fetcher.close()
        await self.flush()

    async def flush(self) -> None:
        """Write what was learned since the last flush (one conditional write)."""
        if not self._learned:
            return
        learned, self._learned = list(self._learned.values()), {}
        try:
            await self.registry.record(learned)
        except BalancesError as error:
            log.warning("token registry not updated (%s); will retry", error)
            self._learned.update((info.token_id, info) for info in learned)

    async def _info(self, token: TokenId, full: bool) -> TokenInfo:
        if token.is_stx:
            return STX_INFO
        known = await self.known(token)
        if known is not None:
            enough = known.complete if full else known.has_metadata
            if enough or self._recently_failed(token):
                return known
        return await self._resolve(token, metadata="full" if full else "display")

    def _recently_failed(self, token: TokenId) -> bool:
        failed = self._failed.get(str(token))
        if failed is not None and self._clock() - failed[0] < self._retry_after:
            return True
        return not token.is_stx and self.fetcher.failed_recently(token.contract_id)

    async def _resolve(self, token: TokenId, *, metadata: _Metadata) -> TokenInfo:
        """One read per token at a time: concurrent callers share the same task."""
        key = f"{token}:{metadata}"
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(token, metadata))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _fetch(self, token: TokenId, metadata: _Metadata) -> TokenInfo:
        known = await self.known(token)
        async with self._gate:
            if known is None:
                interface = await self._chain.get_contract_interface(token.contract_id)
                kind: TokenKindName = "native" if interface.kind is TokenKind.NATIVE else "map"
                known = TokenInfo(token.contract_id, kind, interface.asset_name)
                self._learned[known.token_id] = known
            if metadata == "none":
                return known
            return await self._fetch_metadata(token, known, metadata == "full")

    async def _fetch_metadata(self, token: TokenId, known: TokenInfo, full: bool) -> TokenInfo:
        try:
            meta = await self._chain.get_token_metadata(token.contract_id, full=full)
        except BalancesError as error:
            self._failed[str(token)] = (self._clock(), str(error))
            log.info("metadata of %s unavailable: %s", token, error)
            return known
        self._failed.pop(str(token), None)
        filled = TokenInfo(
            known.token_id,
            known.kind,
            known.asset_name,
            meta.decimals,
            meta.symbol,
            meta.name,
            meta.token_uri,
            meta.total_supply,
            self._wall(),
            full,
        )
        filled = known.completed_by(filled) if not full else filled
        self._learned[filled.token_id] = filled
        return filled


def _merged(stored: TokenInfo | None, learned: TokenInfo | None) -> TokenInfo | None:
    if stored is None or learned is None:
        return stored or learned
    return stored.completed_by(learned)  # a listing must not hide stored metadata


def _with_metadata(info: TokenInfo, meta: KnownMetadata | None) -> TokenInfo:
    """``info`` with the directory's metadata when that is newer (or all there is)."""
    if meta is None:
        return info
    if info.has_metadata and (info.fetched_at or 0.0) >= meta.fetched_at:
        return info
    return replace(
        info,
        decimals=meta.decimals,
        symbol=meta.symbol,
        name=meta.name,
        token_uri=meta.token_uri,
        total_supply=meta.total_supply,
        fetched_at=meta.fetched_at,
    )
