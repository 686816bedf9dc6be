"""Current-balance routes: the spec's ``GET /balances/{address}/{tokenId}`` and friends."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from balances.api.deps import ApiKey, Service
from balances.api.errors import ERROR_TABLE
from balances.api.params import ADDRESS, TOKEN
from balances.api.routing import LiteralFirstRoute
from balances.api.schemas import (
    BalanceOut,
    BalancesOut,
    ErrorOut,
    RefreshOut,
    TokenOut,
    TrackedOut,
    TrackIn,
)

# Every status an error can have: the table's, the API key guard's (401, 403) and a
# body that does not validate (422).
_STATUSES = sorted(
    {status for _, status, _ in ERROR_TABLE if status < 500} | {401, 403, 422, 502, 503}
)
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in _STATUSES}

router = APIRouter(tags=["balances"], responses=ERRORS, route_class=LiteralFirstRoute)


@router.get("/balances/{address}", summary="Every balance of an address")
async def all_balances(
    address: Annotated[str, ADDRESS],
    svc: Service,
    include_zero: Annotated[bool, Query(description="also tokens now at zero")] = False,
) -> BalancesOut:
    balances = await (svc.get_balances(address) if include_zero else svc.get_all_balances(address))
    return BalancesOut(address=address, balances=[BalanceOut.of(b) for b in balances])


# Before the catch-all below: a path both match is this route's (its 405 names POST).
@router.post(
    "/balances/{address}/refresh",
    summary="Read an address from the chain now",
    dependencies=[ApiKey],
)
async def refresh(address: Annotated[str, ADDRESS], svc: Service) -> RefreshOut:
    balances = await svc.refresh_address_balances(address)
    read = any(balance.source == "chain" for balance in balances)  # not when every read failed
    return RefreshOut(
        address=address, balances=[BalanceOut.of(b) for b in balances], refreshed=read
    )


@router.get("/balances/{address}/{tokenId:path}", summary="One token balance (the spec's route)")
async def one_balance(
    address: Annotated[str, ADDRESS], token_id: Annotated[str, TOKEN], svc: Service
) -> BalanceOut:
    return BalanceOut.of(await svc.get_balance(address, token_id))


@router.get("/tokens/{tokenId:path}", summary="What a token is", tags=["tokens"])
async def token(token_id: Annotated[str, TOKEN], svc: Service) -> TokenOut:
    return TokenOut.of(await svc.get_token(token_id))


@router.get("/tracked", summary="The addresses kept fresh", tags=["tracking"])
async def tracked(svc: Service) -> list[TrackedOut]:
    return [TrackedOut.of(entry) for entry in await svc.tracked_addresses()]


@router.put("/tracked/{address}", tags=["tracking"], dependencies=[ApiKey])
async def track(
    address: Annotated[str, ADDRESS], svc: Service, body: Annotated[TrackIn, Body()]
) -> TrackedOut:
    """Keep an address fresh; ``tokens`` lists map-based tokens to read for it."""
    return TrackedOut.of(await svc.track(address, body.tokens))


@router.delete("/tracked/{address}", tags=["tracking"], dependencies=[ApiKey], status_code=204)
async def untrack(address: Annotated[str, ADDRESS], svc: Service) -> None:
    await svc.untrack(address)
