"""What every resolver of one GraphQL request shares: the service, and dataloaders.

The loaders gather what one operation asks for before reading: every
(address, token) pair of the operation is read in one batch per address (one store
read per distinct address, as the REST bulk route), every address's holdings once,
and each token's metadata once, however the query nests or aliases them.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence

from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from balances.api.deps import API_KEY_HEADER
from balances.api.errors import ApiError
from balances.domain import Balance
from balances.errors import BalancesError
from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI
from balances.stores.tokens.registry import TokenInfo

Pair = tuple[str, str]
#: Addresses read at once by one loader batch (the service's own sync concurrency
#: bounds the chain reads beneath).
READ_CONCURRENCY = 16


class GraphContext(BaseContext):
    """The context of one operation (a query, a mutation, or one subscription)."""

    def __init__(self, service: BalanceService, series: BalanceSeriesAPI) -> None:
        super().__init__()
        self.service = service
        self.series = series
        self.pairs: DataLoader[Pair, Balance | BalancesError] = DataLoader(self._load_pairs)
        self.holdings: DataLoader[str, list[Balance] | BalancesError] = DataLoader(
            self._load_holdings
        )
        self.tokens: DataLoader[str, TokenInfo | BalancesError] = DataLoader(self._load_tokens)

    def require_key(self) -> None:
        """Admit a write only with the REST API key (ApiError 403 or 401)."""
        configured = self.service.config.api.key
        if configured is None:
            raise ApiError(
                403, "disabled", "writes are disabled: no API key is configured (BALANCES_API__KEY)"
            )
        given = _key_of(self.request)
        if given is None or not hmac.compare_digest(
            given.encode(), configured.get_secret_value().encode()
        ):
            raise ApiError(401, "unauthorized", f"this mutation needs a valid {API_KEY_HEADER}")

    async def _load_pairs(self, keys: Sequence[Pair]) -> list[Balance | BalancesError]:
        by_address: dict[str, list[str]] = {}
        for address, token in keys:
            by_address.setdefault(address, []).append(token)
        found: dict[Pair, Balance | BalancesError] = {}
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(address: str, tokens: list[str]) -> None:
            async with gate:
                items = await self.service.get_balances_batch([(address, t) for t in tokens])
            for token, item in zip(tokens, items, strict=True):
                outcome = item.balance if item.balance is not None else item.error
                assert outcome is not None
                found[(address, token)] = outcome

        await asyncio.gather(*(read(a, tokens) for a, tokens in by_address.items()))
        return [found[key] for key in keys]

    async def _load_holdings(self, addresses: Sequence[str]) -> list[list[Balance] | BalancesError]:
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(address: str) -> list[Balance] | BalancesError:
            async with gate:
                try:
                    return await self.service.get_balances(address)
                except BalancesError as error:
                    return error

        return list(await asyncio.gather(*(read(a) for a in addresses)))

    async def _load_tokens(self, token_ids: Sequence[str]) -> list[TokenInfo | BalancesError]:
        async def read(token_id: str) -> TokenInfo | BalancesError:
            try:
                return await self.service.get_token(token_id)
            except BalancesError as error:
                return error

        return list(await asyncio.gather(*(read(t) for t in token_ids)))


def _key_of(connection: HTTPConnection | None) -> str | None:
    if connection is None:
        return None
    return connection.headers.get(API_KEY_HEADER)
