"""Many balances in one call: one store read per distinct address, results in the
order asked, and a bad item its own error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from balances.domain import (
    Principal,
    TokenId,
)
from balances.errors import (
    BalancesError,
    ValidationError,
)
from balances.service.reads import CurrentReads
from balances.service.views import (
    BalanceRequest,
    BatchItem,
    parse_request,
)

log = logging.getLogger("balances.service")


class BulkReads(CurrentReads):
    """The batch reads of :class:`~balances.service.BalanceService`."""

    async def get_balances_batch(
        self, requests: Sequence[BalanceRequest | tuple[str, str] | Mapping[str, str]]
    ) -> list[BatchItem]:
        """Many (address, token) balances: one store read per distinct address,
        results in input order, and a bad item gets its own error."""
        if len(requests) > self.config.api.max_batch:
            raise ValidationError(
                f"a batch holds at most {self.config.api.max_batch} requests, got {len(requests)}"
            )
        items: list[BatchItem | None] = [None] * len(requests)
        groups: dict[str, list[tuple[int, TokenId]]] = {}
        principals: dict[str, Principal] = {}
        for index, raw in enumerate(requests):
            try:
                address, token_id = parse_request(raw)
                principal, token = self._principal(address), self._token(token_id)
            except BalancesError as error:
                items[index] = BatchItem.failed(raw, error)
                continue
            principals[str(principal)] = principal
            groups.setdefault(str(principal), []).append((index, token))
        gate = asyncio.Semaphore(self.config.sync_concurrency)

        async def group(key: str) -> None:
            async with gate:
                for index, item in await self._batch_group(principals[key], groups[key]):
                    items[index] = item

        await asyncio.gather(*(group(key) for key in groups))
        return [item for item in items if item is not None]

    async def _batch_group(
        self, principal: Principal, wanted: list[tuple[int, TokenId]]
    ) -> list[tuple[int, BatchItem]]:
        tokens = [token for _, token in wanted]
        try:
            need = await self._views.need(principal, tokens)
            view = await self._view(principal, need)
        except BalancesError as error:
            return [(i, BatchItem.failed((str(principal), str(t)), error)) for i, t in wanted]
        results = await self._views.results(principal, view.balances, need, view.source)
        return [
            (index, BatchItem.of(str(principal), str(token), result))
            for (index, token), result in zip(wanted, results, strict=True)
        ]
