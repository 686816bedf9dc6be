"""``StacksClient``: balances, contract reads and blocks from the Hiro Stacks API.

The client speaks v3 first. When a balance route answers 404 or 410 (deprecated
routes switched off, or an older self-hosted API without v3) it falls back to v2,
then v1, and remembers the version that worked for the rest of its life, per
family (STX, fungible tokens).

**Unknown is not zero.** Every read either returns a value the API gave, or raises
a :class:`~balances.errors.ChainError` (or a validation error for bad input). The
only zeros are zeros the API answered, including "absent from a complete listing".

HTTP concerns (rate limit, retries, ETags, error mapping) live in
:mod:`balances.chain.transport`; answer shapes in :mod:`balances.chain.wire`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import httpx
from pydantic import SecretStr

from balances.chain import wire
from balances.chain.blocks import BlockFeedMixin
from balances.chain.clarity import expect_uint
from balances.chain.contracts import ContractReadsMixin
from balances.chain.history import HistoryMixin
from balances.chain.inputs import (
    as_asset_identifier,
    as_principal,
    clarity_principal,
)
from balances.chain.models import Block, ChainTip
from balances.chain.networks import default_rate_limit
from balances.chain.ratelimit import Clock, RateLimiter, Sleep
from balances.chain.retry import RetryPolicy
from balances.chain.routes import (
    BALANCES_V1,
    BLOCK,
    BLOCK_BY_TIME,
    FT_LIST_V2,
    FT_LIST_V3,
    FT_ONE_V2,
    FT_ONE_V3,
    LATEST_BLOCK,
    MAINNET_API_URL,
    MAX_PAGES,
    PAGE_SIZE,
    STX_ROUTES,
    VERSIONS,
)
from balances.chain.sip010 import (
    decode_result,
)
from balances.chain.token_metadata import TokenMetadataMixin
from balances.chain.transport import ErrorFactory, Transport
from balances.domain import Principal, parse_timestamp
from balances.errors import (
    EndpointGoneError,
    InvalidPeriodError,
    MalformedResponseError,
    NotFoundError,
)

log = logging.getLogger("balances.chain")
#: The client paces this far below its rate limit (see balances.chain.ratelimit).
HEADROOM = 0.02
T = TypeVar("T")


class StacksClient(ContractReadsMixin, HistoryMixin, BlockFeedMixin, TokenMetadataMixin):
    """Reads the Stacks API at ``base_url`` through an injected ``httpx.AsyncClient``.

    ``requests_per_minute`` is the client-side limit (None: on Hiro's hosts 900 with
    an API key, else 25, as Hiro publishes; elsewhere unlimited; ``float("inf")``:
    unlimited). ``limiter`` shares one
    limiter between clients. ``clock``/``sleep``/``rng`` are injectable for tests.
    History reads (transactions, balance changes, events) come from :class:`HistoryMixin`,
    block-following reads from :class:`~balances.chain.blocks.BlockFeedMixin`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str = MAINNET_API_URL,
        *,
        api_key: str | SecretStr | None = None,
        requests_per_minute: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = 10.0,
        limiter: RateLimiter | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        etag_cache_size: int = 4096,
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if requests_per_minute is None:
            requests_per_minute = default_rate_limit(base_url, key is not None)
        self._transport = Transport(
            http,
            base_url,
            api_key=key,
            limiter=limiter
            or RateLimiter(requests_per_minute, headroom=HEADROOM, clock=clock, sleep=sleep),
            retry=retry,
            timeout=timeout,
            sleep=sleep,
            rng=rng,
            etag_cache_size=etag_cache_size,
        )
        self._versions: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def request_counts(self) -> dict[tuple[str, str], int]:
        """Answers received by (route template, HTTP status or timeout/unreachable)."""
        return dict(self._transport.counts)

    @property
    def limiter(self) -> RateLimiter:
        return self._transport.limiter

    @property
    def retry(self) -> RetryPolicy:
        return self._transport.retry

    @property
    def api_versions(self) -> dict[str, str]:
        """The balance API version learned per family (``{"stx": "v3", "ft": "v2"}``)."""
        return {family: VERSIONS[index] for family, index in self._versions.items()}

    # --- balances ------------------------------------------------------------

    async def get_stx_balance(self, principal: str | Principal) -> int:
        """The STX balance in micro-STX (locked STX included, as the API's ``balance``)."""
        holder = str(as_principal(principal))

        def step(route: str) -> Callable[[], Awaitable[int]]:
            async def read() -> int:
                request = self._transport.request(route, {"principal": holder})
                answer = await self._get(request, wire.StxBalance, conditional=True)
                return answer.balance

            return read

        return await self._versioned("stx", [step(route) for route in STX_ROUTES])

    async def get_ft_balances(self, principal: str | Principal) -> dict[str, int]:
        """Every native FT balance of ``principal``, keyed by asset identifier."""
        holder = str(as_principal(principal))
        return await self._versioned(
            "ft",
            [
                partial(self._ft_pages_v3, holder),
                partial(self._ft_pages_v2, holder),
                partial(self._balances_v1, holder),
            ],
        )

    async def get_ft_balance(self, principal: str | Principal, asset_identifier: str) -> int:
        """One native FT balance; ``asset_identifier`` is ``ADDR.contract::asset``.

        The API answers 0 for a token the principal does not hold; so does the v1
        fallback for a token absent from the complete v1 listing.
        """
        holder = str(as_principal(principal))
        asset = as_asset_identifier(asset_identifier)

        async def one(route: str, name: str) -> int:
            request = self._transport.request(route, {"principal": holder, name: asset})
            return (await self._get(request, wire.FtBalance, conditional=True)).balance

        async def from_v1() -> int:
            return (await self._balances_v1(holder)).get(asset, 0)

        return await self._versioned(
            "ft",
            [
                partial(one, FT_ONE_V3, "asset_identifier"),
                partial(one, FT_ONE_V2, "token"),
                from_v1,
            ],
        )

    async def get_map_token_balance(self, contract_id: str, principal: str | Principal) -> int:
        """A map-based ("subnet") token balance: ``get-balance`` must answer ``(ok uint)``."""
        holder = clarity_principal(as_principal(principal))
        value = await self.call_read(contract_id, "get-balance", [holder])
        return decode_result(contract_id, "get-balance", value, expect_uint)

    async def _ft_pages_v3(self, holder: str) -> dict[str, int]:
        balances: dict[str, int] = {}
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            query: dict[str, str | int] = {"limit": PAGE_SIZE}
            if cursor is not None:
                query["cursor"] = cursor
            request = self._transport.request(FT_LIST_V3, {"principal": holder}, query)
            page = await self._get(request, wire.V3FtPage, conditional=True)
            balances.update((item.asset_identifier, item.balance) for item in page.results)
            cursor = page.cursor.next
            if cursor is None:
                return balances
            if cursor in seen or not page.results or len(seen) >= MAX_PAGES:
                raise MalformedResponseError(
                    f"{FT_LIST_V3} for {holder}: the cursor chain does not end "
                    f"(cursor {cursor[:80]!r} after {len(seen) + 1} pages)"
                )
            seen.add(cursor)

    async def _ft_pages_v2(self, holder: str) -> dict[str, int]:
        balances: dict[str, int] = {}
        offset = 0
        for _ in range(MAX_PAGES):
            query: dict[str, str | int] = {"limit": PAGE_SIZE, "offset": offset}
            request = self._transport.request(FT_LIST_V2, {"principal": holder}, query)
            page = await self._get(request, wire.V2FtPage, conditional=True)
            balances.update((item.token, item.balance) for item in page.results)
            offset += len(page.results)
            if not page.results or offset >= page.total:
                return balances
        raise MalformedResponseError(f"{FT_LIST_V2} for {holder}: more than {MAX_PAGES} pages")

    async def _balances_v1(self, holder: str) -> dict[str, int]:
        request = self._transport.request(BALANCES_V1, {"principal": holder})
        answer = await self._get(request, wire.V1Balances, conditional=True)
        return {asset: entry.balance for asset, entry in answer.fungible_tokens.items()}

    # --- blocks --------------------------------------------------------------

    async def get_chain_tip(self) -> ChainTip:
        """The newest block: height, hash and time."""
        request = self._transport.request(LATEST_BLOCK, {})
        block = await self._get(request, wire.BlockAnswer)
        return ChainTip(block.height, block.hash, _utc(block.block_time))

    async def get_block(self, height: int) -> Block:
        """The block at ``height``; NotFoundError when the chain is not that tall."""
        if isinstance(height, bool) or not isinstance(height, int) or height < 0:
            raise InvalidPeriodError(f"a block height is an integer >= 0, got {height!r}")
        request = self._transport.request(BLOCK, {"height_or_hash": str(height)})
        missing: dict[int, ErrorFactory] = {
            404: lambda message, _: NotFoundError(f"no block at height {height}: {message}")
        }
        return _block(await self._get(request, wire.BlockAnswer, errors=missing))

    async def get_block_at(self, moment: datetime | int | float | str) -> Block:
        """The newest block at or before ``moment`` (a datetime, unix seconds or ISO text)."""
        timestamp = int(parse_timestamp(moment).timestamp())
        if timestamp < 0:
            raise InvalidPeriodError(f"no Stacks block exists before 1970: {moment!r}")
        request = self._transport.request(BLOCK_BY_TIME, {"timestamp": str(timestamp)})
        missing: dict[int, ErrorFactory] = {
            404: lambda message, _: NotFoundError(f"no block at or before: {message}")
        }
        return _block(await self._get(request, wire.BlockAnswer, errors=missing))

    # --- plumbing ------------------------------------------------------------

    async def _versioned(self, family: str, steps: Sequence[Callable[[], Awaitable[T]]]) -> T:
        """Run the first version of ``family`` that is still served; remember it."""
        start = self._versions.get(family, 0)
        gone: list[str] = []
        for index in range(start, len(steps)):
            try:
                value = await steps[index]()
            except EndpointGoneError as error:
                gone.append(str(error))
                continue
            if index != start:
                log.info("%s balances: using %s (%s)", family, VERSIONS[index], "; ".join(gone))
            self._versions[family] = max(self._versions.get(family, 0), index)
            return value
        raise EndpointGoneError(
            f"no version of the {family} balance API answered: {'; '.join(gone)}"
        )


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _block(answer: wire.BlockAnswer) -> Block:
    return Block(
        height=answer.height,
        hash=answer.hash,
        time=_utc(answer.block_time),
        index_block_hash=answer.index_block_hash,
        burn_block_height=answer.burn_block_height,
    )
