"""History routes: the spec's ``GET /balances/{address}/history/{tokenId}``, the
portfolio, balances at a time or block, and backfill."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter

from balances.api.deps import ApiKey, Service
from balances.api.params import (
    ADDRESS,
    AT,
    FROM,
    GRANULARITY,
    HEIGHT,
    ONLY_TOKEN,
    PERIOD,
    SINCE,
    TO,
    TOKEN,
)
from balances.api.routes_balances import ERRORS
from balances.api.routing import LiteralFirstRoute
from balances.api.schemas_history import BackfillOut, BalanceAtOut, HistoryOut, PortfolioOut

router = APIRouter(tags=["history"], responses=ERRORS, route_class=LiteralFirstRoute)


@router.get("/balances/{address}/history/{tokenId:path}", summary="A token's balance chart")
async def history(
    address: Annotated[str, ADDRESS],
    token_id: Annotated[str, TOKEN],
    svc: Service,
    period: Annotated[str, PERIOD] = "30d",
    granularity: Annotated[str, GRANULARITY] = "auto",
    start: Annotated[str | None, FROM] = None,
    end: Annotated[str | None, TO] = None,
) -> HistoryOut:
    answer = await svc.get_balance_history(address, token_id, period, granularity, start, end)
    return HistoryOut.of(answer)


@router.get("/balances/{address}/portfolio", summary="Every token per bucket, with USD values")
async def portfolio(
    address: Annotated[str, ADDRESS],
    svc: Service,
    period: Annotated[str, PERIOD] = "30d",
    granularity: Annotated[str, GRANULARITY] = "auto",
    start: Annotated[str | None, FROM] = None,
    end: Annotated[str | None, TO] = None,
) -> PortfolioOut:
    answer = await svc.get_portfolio_history(address, period, granularity, start, end)
    return PortfolioOut.of(answer)


@router.get("/balances/{address}/at/{tokenId:path}", summary="A balance at a time or block")
async def balance_at(
    address: Annotated[str, ADDRESS],
    token_id: Annotated[str, TOKEN],
    svc: Service,
    at: Annotated[str | None, AT] = None,
    height: Annotated[int | None, HEIGHT] = None,
) -> BalanceAtOut:
    return BalanceAtOut.of(await svc.get_balance_at(address, token_id, at, block_height=height))


@router.post(
    "/balances/{address}/backfill",
    summary="Fill history from before tracking began",
    dependencies=[ApiKey],
)
async def backfill(
    address: Annotated[str, ADDRESS],
    svc: Service,
    token: Annotated[str | None, ONLY_TOKEN] = None,
    since: Annotated[str | None, SINCE] = None,
) -> BackfillOut:
    """Walks the address's transactions (resumable; a finished backfill is a no-op)."""
    report = await svc.backfill(address, token, since)
    return BackfillOut.model_validate(asdict(report))
