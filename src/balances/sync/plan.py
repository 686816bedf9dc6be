"""The refresh plan: the fewest requests that read one address's tracked tokens.

A refresh costs (DESIGN.md 6):

- one STX balance request (if STX is wanted);
- the paged list of *all* native FT balances, one logical step however many
  native tokens are tracked (200 per page: 450 tokens are 3 requests);
- one ``call-read get-balance`` per tracked map-based token, which no balance
  endpoint lists.

Never one request per native token. :func:`build_plan` is pure;
:func:`execute_plan` runs a plan against any :class:`ChainReader` concurrently and
returns one result per token: a value or that token's error. A failing step loses
only its own tokens.

A native token absent from a *complete* listing reads as 0: the API listed
everything the address holds. If the listing fails, every native token gets the
error: unknown, not zero.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from balances.chain.models import TokenKind
from balances.chain.protocol import ChainReader
from balances.chain.routes import PAGE_SIZE
from balances.domain import STX, Principal, TokenId
from balances.errors import BalancesError, InvalidTokenIdError

StepKind = Literal["stx", "ft-list", "call-read"]


@dataclass(frozen=True, slots=True)
class TrackedToken:
    """A token an address tracks, with how its balance is read."""

    token: TokenId
    kind: TokenKind = TokenKind.NATIVE

    @classmethod
    def native(cls, token: str | TokenId) -> TrackedToken:
        return cls(_token(token), TokenKind.NATIVE)

    @classmethod
    def map_based(cls, token: str | TokenId) -> TrackedToken:
        return cls(_token(token), TokenKind.MAP)


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One logical step: ``stx``, ``ft-list`` (all pages) or one ``call-read``."""

    kind: StepKind
    token: TokenId | None = None


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """What to read for one address. Build it with :func:`build_plan`."""

    principal: Principal
    stx: bool
    native: tuple[TokenId, ...]
    map_tokens: tuple[TokenId, ...]
    list_native: bool

    @property
    def steps(self) -> tuple[PlanStep, ...]:
        steps = [PlanStep("stx", STX)] if self.stx else []
        if self.list_native:
            steps.append(PlanStep("ft-list"))
        steps += [PlanStep("call-read", token) for token in self.map_tokens]
        return tuple(steps)

    def request_count(self, held_native: int, page_size: int = PAGE_SIZE) -> int:
        """HTTP requests this plan costs when the address holds ``held_native`` FTs."""
        pages = max(1, math.ceil(held_native / page_size)) if self.list_native else 0
        return int(self.stx) + pages + len(self.map_tokens)

    def naive_request_count(self) -> int:
        """What one request per tracked token would cost."""
        return int(self.stx) + len(self.native) + len(self.map_tokens)


def build_plan(
    address: str | Principal,
    tokens: Iterable[TrackedToken],
    *,
    include_stx: bool = True,
    discover: bool = False,
) -> RefreshPlan:
    """The minimal plan for ``address``'s ``tokens``.

    ``discover`` lists native balances even when none is tracked (to find what the
    address holds). Tracking STX among ``tokens`` also reads STX. A contract tracked
    as both native and map-based is rejected.
    """
    principal = address if isinstance(address, Principal) else Principal.parse(address)
    stx = include_stx
    chosen: dict[TokenId, TrackedToken] = {}  # by contract id (TokenId equality)
    for tracked in tokens:
        if tracked.token.is_stx:
            stx = True
            continue
        known = chosen.setdefault(tracked.token, tracked)
        if known.kind is not tracked.kind:
            raise InvalidTokenIdError(
                f"{tracked.token} is tracked both as {known.kind.value} and {tracked.kind.value}"
            )
        if known.token.asset_name is None and tracked.token.asset_name is not None:
            chosen[tracked.token] = tracked  # the asset name makes listing lookups exact
    native = tuple(t.token for t in chosen.values() if t.kind is TokenKind.NATIVE)
    mapped = tuple(t.token for t in chosen.values() if t.kind is TokenKind.MAP)
    return RefreshPlan(principal, stx, native, mapped, list_native=bool(native) or discover)


# --- execution ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenRead:
    """One token's outcome: ``amount`` when read, else the ``error`` (never both)."""

    token: TokenId
    source: StepKind
    amount: int | None = None
    error: BalancesError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """Everything one plan read; ``reads`` is keyed by contract id (``stx`` for STX)."""

    principal: Principal
    reads: dict[str, TokenRead]
    #: Every native balance the listing returned (asset identifier -> amount).
    held: dict[str, int] = field(default_factory=dict)
    #: True when the native listing ran and succeeded: ``held`` is then complete.
    listed: bool = False
    #: Why the native listing failed (None: it succeeded, or the plan did not list).
    listing_error: BalancesError | None = None

    @property
    def values(self) -> dict[str, int]:
        return {key: read.amount for key, read in self.reads.items() if read.amount is not None}

    @property
    def errors(self) -> dict[str, BalancesError]:
        return {key: read.error for key, read in self.reads.items() if read.error is not None}


async def execute_plan(plan: RefreshPlan, reader: ChainReader) -> RefreshResult:
    """Run every step of ``plan`` concurrently; collect per-token values and errors."""
    holder = plan.principal
    listing: dict[str, int] = {}

    async def stx() -> list[TokenRead]:
        amount = await reader.get_stx_balance(holder)
        return [TokenRead(STX, "stx", amount)]

    listing_outcome: list[BalancesError | None] = []

    async def ft_list() -> list[TokenRead]:
        try:
            listing.update(await reader.get_ft_balances(holder))
        except BalancesError as error:
            listing_outcome.append(error)
            raise
        listing_outcome.append(None)
        return native_reads(plan.native, listing)

    def map_read(token: TokenId) -> Callable[[], Awaitable[list[TokenRead]]]:
        async def read() -> list[TokenRead]:
            amount = await reader.get_map_token_balance(token.contract_id, holder)
            return [TokenRead(token, "call-read", amount)]

        return read

    jobs: list[tuple[Callable[[], Awaitable[list[TokenRead]]], list[TokenRead]]] = []
    if plan.stx:
        jobs.append((stx, [TokenRead(STX, "stx")]))
    if plan.list_native:
        jobs.append((ft_list, [TokenRead(token, "ft-list") for token in plan.native]))
    jobs += [(map_read(token), [TokenRead(token, "call-read")]) for token in plan.map_tokens]
    outcomes = await asyncio.gather(*(_guarded(run, pending) for run, pending in jobs))
    reads = {str(read.token): read for outcome in outcomes for read in outcome}
    listing_error = listing_outcome[0] if listing_outcome else None
    listed = bool(listing_outcome) and listing_error is None
    return RefreshResult(holder, reads, listing, listed, listing_error)


async def _guarded(
    run: Callable[[], Awaitable[list[TokenRead]]], pending: list[TokenRead]
) -> list[TokenRead]:
    """``run()``, or each pending token carrying the step's error (unknown, not zero)."""
    try:
        return await run()
    except BalancesError as error:
        return [TokenRead(read.token, read.source, error=error) for read in pending]


def native_reads(tokens: Sequence[TokenId], listing: dict[str, int]) -> list[TokenRead]:
    """Each tracked native token's amount from a complete listing.

    A token known by contract id only matches the listing's single asset of that
    contract; a contract with several assets needs the asset name.
    """
    by_contract: dict[str, list[int]] = {}
    for asset, amount in listing.items():
        by_contract.setdefault(asset.partition("::")[0], []).append(amount)
    reads = []
    for token in tokens:
        if token.asset_identifier is not None:
            reads.append(TokenRead(token, "ft-list", listing.get(token.asset_identifier, 0)))
            continue
        found = by_contract.get(token.contract_id, [0])
        if len(found) == 1:
            reads.append(TokenRead(token, "ft-list", found[0]))
        else:
            error = InvalidTokenIdError(
                f"{token} defines {len(found)} fungible tokens; track it as ADDR.contract::asset"
            )
            reads.append(TokenRead(token, "ft-list", error=error))
    return reads


async def execute_plans(
    plans: Sequence[RefreshPlan], reader: ChainReader, *, concurrency: int = 10
) -> list[RefreshResult]:
    """Run many plans, at most ``concurrency`` addresses at a time, in order."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    gate = asyncio.Semaphore(concurrency)

    async def one(plan: RefreshPlan) -> RefreshResult:
        async with gate:
            return await execute_plan(plan, reader)

    return list(await asyncio.gather(*(one(plan) for plan in plans)))


def _token(token: str | TokenId) -> TokenId:
    return token if isinstance(token, TokenId) else TokenId.parse(token)
