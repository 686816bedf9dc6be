"""Current balances of one address: read through the cache, the store and the
chain (:meth:`~balances.service.core.ServiceCore._view`), or refreshed from the
chain now; every answer carries its freshness."""

from __future__ import annotations

from collections.abc import Sequence

from balances.domain import (
    Balance,
)
from balances.errors import (
    BalancesError,
)
from balances.service.core import ServiceCore
from balances.service.views import (
    Need,
    SyncReport,
)


class CurrentReads(ServiceCore):
    """The current-balance reads of :class:`~balances.service.BalanceService`."""

    async def get_balance(self, address: str, token_id: str) -> Balance:
        """One token balance of ``address``."""
        principal, token = self._principal(address), self._token(token_id)
        need = await self._views.need(principal, [token])
        view = await self._view(principal, need)
        return (await self._views.balances(principal, view.balances, need, view.source))[0]

    def cached_balance(self, address: str, token_id: str) -> Balance | None:
        """The answer :meth:`get_balance` would give from the cache, without any I/O, or
        None when the cache cannot answer alone (then call :meth:`get_balance`). The
        REST API's hot path: a cached balance costs no await at all."""
        try:
            principal, token = self._principal(address), self._token(token_id)
        except BalancesError:
            return None  # the full path gives the error
        key = str(principal)
        info = self.catalog.peek(token)
        if key not in self.cache or info is None or not self.catalog.display_ready(info, token):
            return None
        view = self.cache.get(key)
        need = Need(
            (token,), {str(token): info.kind}, self.config.stale_after, {}, {str(token): info}
        )
        if view is None or not self._views.satisfies(view, need, with_errors=True):
            return None
        answer = self._views.answer(principal, view, token, info, "cache")
        return answer if isinstance(answer, Balance) else None

    async def get_balances(
        self, address: str, token_ids: Sequence[str] | None = None
    ) -> list[Balance]:
        """``token_ids``' balances (None: every token the address is known to hold,
        zeros included), in the order asked."""
        principal = self._principal(address)
        tokens = None if token_ids is None else [self._token(t) for t in token_ids]
        need = await self._views.need(principal, tokens)
        view = await self._view(principal, need)
        return await self._views.balances(principal, view.balances, need, view.source)

    async def get_all_balances(self, address: str) -> list[Balance]:
        """Every non-zero balance of ``address``."""
        return [b for b in await self.get_balances(address) if b.amount > 0]

    async def refresh_balance(self, address: str, token_id: str) -> Balance:
        """Read one token of ``address`` from the chain now (one request)."""
        principal, token = self._principal(address), self._token(token_id)
        need = await self._views.need(principal, [token])
        if need.kinds[str(token)] == "map":
            await self._track_tokens(principal, [token])
        outcome = await self.syncer.refresh_token(principal, token)
        view = self._after_refresh(principal, outcome)
        return (await self._views.balances(principal, view, need, "chain"))[0]

    async def refresh_address_balances(self, address: str) -> list[Balance]:
        """Read every tracked token of ``address`` from the chain now."""
        principal = self._principal(address)
        outcome = await self.syncer.refresh(principal)
        view = self._after_refresh(principal, outcome)
        need = await self._views.need(principal, None)
        return await self._views.balances(principal, view, need, "chain")

    async def sync_on_demand(
        self, address: str, token_id: str | None = None, max_age: float | None = None
    ) -> SyncReport:
        """Refresh only what is older than ``max_age`` seconds (default ``stale_after``)."""
        principal = self._principal(address)
        tokens = None if token_id is None else [self._token(token_id)]
        need = await self._views.need(principal, tokens, max_age=max_age)
        view = await self._view(principal, need, sync="stale")
        balances = await self._views.balances(principal, view.balances, need, view.source)
        return SyncReport(str(principal), view.source == "chain", balances)
