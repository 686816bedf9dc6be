"""History routes: the spec's ``GET /balances/{address}/history/{tokenId}``, the
portfolio, balances at a time or block, and backfill."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from balances.api.deps import ApiKey, Service
from balances.api.routes_balances import ADDRESS, ERRORS, TOKEN
from balances.api.schemas_history import BackfillOut, BalanceAtOut, HistoryOut, PortfolioOut

router = APIRouter(tags=["history"], responses=ERRORS)

PERIOD = Query(description="1h, 24h (1d), 7d, 30d, 90d, 1y or all; ignored with from/to")
GRANULARITY = Query(description="5m, hour, day, week, month or auto")
FROM = Query(alias="from", description="explicit range start: ISO 8601 or unix seconds")
TO = Query(alias="to", description="explicit range end: ISO 8601 or unix seconds")


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
    at: Annotated[str | None, Query(description="a time: ISO 8601 or unix seconds")] = None,
    height: Annotated[int | None, Query(ge=0, description="a block height")] = None,
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
    token: Annotated[str | None, Query(description="only this token")] = None,
    since: Annotated[str | None, Query(description="not before: ISO 8601 or unix")] = None,
) -> BackfillOut:
    """Walks the address's transactions (resumable; a finished backfill is a no-op)."""
    report = await svc.backfill(address, token, since)
    return BackfillOut.model_validate(asdict(report))
