"""What :class:`~balances.service.BalanceService` answers, and how it decides freshness.

A :class:`Need` is what one call asks of one address: some tokens (with their
kinds) or the whole address, and how old an answer may be. :class:`ViewBuilder`
checks stored balances against a need and turns them into :class:`Balance` answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from balances.domain import STX, Balance, MetadataState, Principal, Source, TokenId
from balances.domain.current import AddressBalances, Stamp, TokenKindName, TokenState
from balances.errors import (
    BalanceNotFoundError,
    BalancesError,
    InvalidAddressError,
    InvalidTokenIdError,
    ValidationError,
    quoted,
)
from balances.ingest.pending import PendingAmounts
from balances.stores.tokens.registry import TokenInfo
from balances.sync.catalog import TokenCatalog

# Measured with tracemalloc by benchmarks/bench_service.py (cache memory row).
_BYTES_PER_ADDRESS = 550
_BYTES_PER_TOKEN = 120


def size_of_balances(balances: AddressBalances) -> int:
    """An estimate of the memory one cached address takes."""
    return _BYTES_PER_ADDRESS + _BYTES_PER_TOKEN * len(balances.tokens)


@dataclass(frozen=True, slots=True)
class BalanceRequest:
    """One item of :meth:`~balances.service.BalanceService.get_balances_batch`."""

    address: str
    token_id: str


def parse_request(raw: object) -> tuple[str, str]:
    """(address, token_id) from a BalanceRequest, a pair, or a mapping."""
    if isinstance(raw, BalanceRequest):
        return raw.address, raw.token_id
    if isinstance(raw, Mapping):
        address, token = raw.get("address"), raw.get("token_id", raw.get("tokenId"))
        if isinstance(address, str) and isinstance(token, str):
            return address, token
    elif isinstance(raw, tuple | list) and len(raw) == 2:
        address, token = raw
        if isinstance(address, str) and isinstance(token, str):
            return address, token
    raise ValidationError(
        f"a batch item is {{'address': ..., 'token_id': ...}} or (address, token_id); "
        f"got {str(raw)[:80]!r}"
    )


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One answer of a batch: the balance, or this item's own error."""

    address: str
    token_id: str
    balance: Balance | None = None
    error: BalancesError | None = None

    @classmethod
    def failed(cls, raw: object, error: BalancesError) -> BatchItem:
        try:
            address, token = parse_request(raw)
        except ValidationError:
            address, token = "", ""
        return cls(address, token, None, error)

    @classmethod
    def of(cls, address: str, token_id: str, result: Balance | BalancesError) -> BatchItem:
        if isinstance(result, Balance):
            return cls(address, token_id, result)
        return cls(address, token_id, None, result)


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What :meth:`~balances.service.BalanceService.sync_on_demand` did."""

    address: str
    refreshed: bool
    balances: list[Balance]

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "refreshed": self.refreshed,
            "balances": [balance.as_dict() for balance in self.balances],
        }


@dataclass(frozen=True, slots=True)
class Need:
    """What one call asks of one address. ``tokens`` None: the whole address."""

    tokens: tuple[TokenId, ...] | None
    kinds: dict[str, TokenKindName]
    max_age: float
    errors: dict[str, BalancesError] = field(default_factory=dict)
    #: What was already known of each token (saves a second look-up when answering).
    infos: dict[str, TokenInfo] = field(default_factory=dict)

    @property
    def map_tokens(self) -> list[TokenId]:
        return [t for t in self.tokens or () if self.kinds.get(str(t)) == "map"]


class ViewBuilder:
    """Freshness checks and answers, with the staleness limit and the clock."""

    def __init__(
        self, catalog: TokenCatalog, stale_after: float, wall_clock: Callable[[], float]
    ) -> None:
        self._catalog = catalog
        self._stale_after = stale_after
        self._wall = wall_clock
        #: Block ingestion's word on an address: the stamp (its cursor) every balance of
        #: it is confirmed at, or None (then each amount's own read time counts).
        self.coverage: Callable[[str, AddressBalances], Stamp | None] = _no_coverage
        #: Pending (mempool) amounts of (address, token), where a source gives them.
        self.pending: Callable[[str, str], PendingAmounts | None] = _no_pending

    @staticmethod
    def check_network(principal: Principal, expected: str, network: str) -> None:
        if principal.network != expected:
            raise InvalidAddressError(
                f"{principal} is a {principal.network} address; this service reads the "
                f"{network} network, which holds {expected} addresses"
            )

    async def need(
        self,
        principal: Principal,
        tokens: Sequence[TokenId] | None,
        max_age: float | None = None,
    ) -> Need:
        """The need for ``tokens`` (kinds learned from the catalog)."""
        age = self._stale_after if max_age is None else max_age
        if age < 0:
            raise ValidationError(f"max_age must be >= 0 seconds, got {max_age}")
        if tokens is None:
            return Need(None, {}, age)
        found: dict[str, TokenKindName] = {}
        infos: dict[str, TokenInfo] = {}
        unknown = []
        for token in dict.fromkeys(tokens):
            info = self._catalog.peek(token)  # known kinds cost no await: the hot path
            if info is None:
                unknown.append(token)
            else:
                found[str(token)] = info.kind
                infos[str(token)] = info
        kinds = await asyncio.gather(
            *(self._catalog.kind(token) for token in unknown), return_exceptions=True
        )
        errors: dict[str, BalancesError] = {}
        for token, kind in zip(unknown, kinds, strict=True):
            if isinstance(kind, BalancesError):
                errors[str(token)] = kind
            elif isinstance(kind, BaseException):
                raise kind
            else:
                found[str(token)] = kind
        for token in tokens:
            wrong = self._wrong_asset(token)
            if wrong is not None:
                errors[str(token)] = wrong
                found.pop(str(token), None)
        return Need(tuple(tokens), found, age, errors, infos)

    def _wrong_asset(self, token: TokenId) -> InvalidTokenIdError | None:
        """An asset name that is not the one the contract defines (refused, not read
        as the contract's real asset)."""
        if token.asset_name is None:
            return None
        info = self._catalog.peek(token)
        if info is None or info.kind != "native" or info.asset_name in (None, token.asset_name):
            return None
        return InvalidTokenIdError(
            f"{token.contract_id} defines the asset {info.asset_name!r}, "
            f"not {quoted(token.asset_name)}: use {token.contract_id}::{info.asset_name}"
        )

    def covers(self, balances: AddressBalances, need: Need) -> bool:
        """Every needed amount is known (fresh or not)."""
        return all(state is not None for state in self._states(balances, need))

    def satisfies(self, balances: AddressBalances, need: Need, *, with_errors: bool) -> bool:
        """Known and fresh enough; ``with_errors``: a recent failed refresh also
        satisfies (its error is served until the cache lets it go)."""
        states = self._states(balances, need)
        if any(state is None for state in states):
            return False
        if with_errors and balances.failures:
            return True
        oldest = self._wall() - need.max_age
        covered = self.coverage(balances.address, balances)
        if covered is not None and covered.at >= oldest and not balances.failures:
            return True
        return all(state is not None and state.stamp.at >= oldest for state in states)

    def _states(self, balances: AddressBalances, need: Need) -> list[TokenState | None]:
        if need.tokens is None:
            listing = (
                None if balances.listing is None else TokenState(0, balances.listing, "native")
            )
            return [balances.state(STX, "stx"), listing, *balances.tokens.values()]
        return [balances.state(t, need.kinds[str(t)]) for t in need.tokens if str(t) in need.kinds]

    async def balances(
        self, principal: Principal, balances: AddressBalances, need: Need, source: Source
    ) -> list[Balance]:
        """The answers for ``need``; the first unknown or failed token raises."""
        answers = []
        for result in await self.results(principal, balances, need, source):
            if isinstance(result, BalancesError):
                raise result
            answers.append(result)
        return answers

    async def results(
        self, principal: Principal, balances: AddressBalances, need: Need, source: Source
    ) -> list[Balance | BalancesError]:
        """One answer per needed token, in order: a Balance, or why there is none."""
        pairs = self._wanted(balances, need)
        infos: dict[str, TokenInfo | None] = dict(need.infos)
        missing = [
            token
            for token, kind in pairs
            if kind is not None and not self._catalog.display_ready(infos.get(str(token)), token)
        ]
        if missing:
            infos.update(await self._catalog.display_infos(missing))
        results: list[Balance | BalancesError] = []
        times: dict[float, datetime] = {}  # one refresh stamps many tokens
        address = str(principal)
        for token, kind in pairs:
            if kind is None:  # the token's kind could not be learned
                results.append(need.errors[str(token)])
            else:
                info = infos.get(str(token))
                results.append(self._answer(address, balances, token, kind, source, info, times))
        return results

    def answer(
        self,
        principal: Principal,
        balances: AddressBalances,
        token: TokenId,
        info: TokenInfo,
        source: Source,
    ) -> Balance | BalancesError:
        """One token's answer (see :meth:`results`)."""
        return self._answer(str(principal), balances, token, info.kind, source, info, {})

    @staticmethod
    def _wanted(
        balances: AddressBalances, need: Need
    ) -> list[tuple[TokenId, TokenKindName | None]]:
        if need.tokens is not None:
            return [(t, need.kinds.get(str(t))) for t in need.tokens]
        keys = sorted(balances.tokens, key=lambda key: (key != "stx", key))
        pairs: list[tuple[TokenId, TokenKindName | None]] = [
            (TokenId.parse(key), balances.tokens[key].kind) for key in keys
        ]
        if "stx" not in balances.tokens:
            pairs.insert(0, (STX, "stx"))
        return pairs

    def _answer(
        self,
        principal: str,
        balances: AddressBalances,
        token: TokenId,
        kind: TokenKindName,
        source: Source,
        info: TokenInfo | None,
        times: dict[float, datetime],
    ) -> Balance | BalancesError:
        state = balances.state(token, kind)
        error = balances.error(token, kind) if balances.failures else None
        if state is None:
            return error or BalanceNotFoundError(
                f"the {token} balance of {principal} has not been read yet"
            )
        stamp = state.stamp
        covered = self.coverage(principal, balances) if error is None else None
        if covered is not None and covered.at >= stamp.at:
            stamp = covered  # ingestion confirms the amount up to its cursor
        at = stamp.at
        updated = times.get(at)
        if updated is None:
            updated = times[at] = datetime.fromtimestamp(at, UTC)
        age = self._wall() - at
        decimals = None if info is None else info.decimals
        if source == "chain" and error is not None:
            source = "store"  # the refresh failed: this amount is what was stored before
        pending = self.pending(principal, str(token))
        return Balance(
            address=principal,
            token_id=_shown_id(token, balances),
            amount=state.amount,
            decimals=decimals,  # None while unknown: said so, never guessed
            updated_at=updated,
            block_height=stamp.block_height,
            source=source,
            stale=error is not None or age > self._stale_after,
            error=None if error is None else str(error),
            symbol=None if info is None else info.symbol,
            pending_inbound=None if pending is None else pending.inbound,
            pending_outbound=None if pending is None else pending.outbound,
            metadata=self._metadata_state(token, info),
        )

    def _metadata_state(self, token: TokenId, info: TokenInfo | None) -> MetadataState:
        return self._catalog.metadata_state(token, info) or "known"


def _no_coverage(address: str, balances: AddressBalances) -> Stamp | None:
    return None


def _no_pending(address: str, token: str) -> PendingAmounts | None:
    return None


def _shown_id(token: TokenId, balances: AddressBalances) -> str:
    """The contract id, or the asset identifier for a multi-asset contract's token."""
    key = token.asset_identifier
    return key if key is not None and key in balances.tokens else str(token)
