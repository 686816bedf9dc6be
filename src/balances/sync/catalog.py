"""The token catalog: what each token is (kind, asset name) and its SIP-010 metadata.

Facts are learned lazily and once: a native token's kind and asset name come free
with a balance listing; an unknown contract costs one ``/v2/contracts/interface``
read; metadata costs the SIP-010 getters once per token. Everything learned goes
to the :class:`~balances.stores.tokens.TokenRegistry` blob in one write per batch.
A metadata read that fails is remembered in memory for ``retry_after`` seconds,
so an outage or a contract without ``get-decimals`` does not cost a request on
every balance read; it is never stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Literal

from balances.chain.models import TokenKind
from balances.chain.protocol import ChainReader
from balances.domain import TokenId
from balances.errors import BalancesError
from balances.stores.current import TokenKindName
from balances.stores.tokens import STX_INFO, TokenInfo, TokenRegistry

log = logging.getLogger("balances.sync")
#: How much metadata a read wants: none (kind only), display (decimals, symbol), full.
_Metadata = Literal["none", "display", "full"]
DEFAULT_RETRY_AFTER = 300.0
DEFAULT_CONCURRENCY = 8


class TokenCatalog:
    """Token facts from the registry, filled from the chain on first need."""

    def __init__(
        self,
        chain: ChainReader,
        registry: TokenRegistry,
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

    async def known(self, token: TokenId) -> TokenInfo | None:
        """What is known of ``token`` without asking the chain."""
        key = str(token)
        stored, learned = await self.registry.get(key), self._learned.get(key)
        if stored is None or learned is None:
            return stored or learned
        return stored.completed_by(learned)  # a listing must not hide stored metadata

    def peek(self, token: TokenId) -> TokenInfo | None:
        """What is known of ``token`` in memory, without I/O; the hot path of reads."""
        if token.is_stx:
            return STX_INFO
        key = str(token)
        stored, learned = self.registry.peek(key), self._learned.get(key)
        if stored is None or learned is None:
            return stored or learned
        return stored.completed_by(learned)

    def display_ready(self, info: TokenInfo | None, token: TokenId) -> bool:
        """``info`` is enough to show a balance (or metadata failed recently)."""
        return info is not None and (info.has_metadata or self._recently_failed(token))

    async def kind(self, token: TokenId) -> TokenKindName:
        """``stx``, ``native`` or ``map``; one interface read for an unknown contract."""
        if token.is_stx:
            return "stx"
        known = await self.known(token)
        if known is not None:
            return known.kind
        return (await self._resolve(token, metadata="none")).kind

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
        return None if failed is None else failed[1]

    def learn_native(self, asset_identifiers: Iterable[str]) -> None:
        """Record native tokens seen in a listing (kind and asset name, no request)."""
        for asset in asset_identifiers:
            contract_id, _, asset_name = asset.partition("::")
            if contract_id not in self._learned:
                self._learned[contract_id] = TokenInfo(contract_id, "native", asset_name or None)

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
        return failed is not None and self._clock() - failed[0] < self._retry_after

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
