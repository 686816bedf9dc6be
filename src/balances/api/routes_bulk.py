"""The spec's bulk routes, and the cache and scheduler admin routes.

Bodies accept the spec's camelCase names (``tokenIds``) and snake_case alike.
Lists are bounded in the schema; the product addresses x tokens is bounded by
``api.max_bulk_items`` (413 over it). Each item that fails carries its own error.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from balances.api.deps import ApiKey, Service
from balances.api.errors import error_body
from balances.api.params import TIME_FORMAT
from balances.api.routes_balances import ERRORS
from balances.api.schemas import BalanceOut
from balances.api.schemas_history import HistoryOut
from balances.domain.time import GRANULARITY_PATTERN, PERIOD_PATTERN, TIME_PATTERN
from balances.service.series import BalanceSeriesAPI, ItemError

MAX_LIST = 1000
#: Longer than any principal or token id with some space around it; a shorter item
#: that is no address or token is answered with its own error, not a 422.
MAX_ITEM_CHARS = 400
Item = Annotated[str, Field(min_length=1, max_length=MAX_ITEM_CHARS)]
router = APIRouter(responses=ERRORS)


def _aliases(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _whole_number(value: Any) -> Any:
    """A JSON integer, written ``136`` or ``136.0`` (both are integers to JSON Schema);
    not a string or a boolean."""
    if isinstance(value, bool | str):
        raise ValueError("at_block is a block height: a whole number, not a string or boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class CurrentIn(_In):
    addresses: list[Item] = Field(min_length=1, max_length=MAX_LIST)
    token_ids: list[Item] | None = Field(
        None, max_length=MAX_LIST, validation_alias=_aliases("token_ids", "tokenIds")
    )
    include_zero: bool = Field(
        False, strict=True, validation_alias=_aliases("include_zero", "includeZero")
    )
    min_balance: str | None = Field(
        None,
        pattern=r"^[0-9]{1,39}$",
        validation_alias=_aliases("min_balance", "minBalance"),
        description="in base units, a decimal string",
    )
    at_block: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        validation_alias=_aliases("at_block", "atBlock"),
        description="every balance as of this block height, from the stored history",
    )

    _at_block_is_whole = field_validator("at_block", mode="before")(_whole_number)


# Stated in the schema and judged by the service, as the query parameters (params.py).
_PERIOD: JsonDict = {"pattern": PERIOD_PATTERN}
_GRANULARITY: JsonDict = {"pattern": GRANULARITY_PATTERN}
_TIME: JsonDict = {"pattern": TIME_PATTERN, "format": TIME_FORMAT}


class SeriesIn(_In):
    addresses: list[Item] = Field(min_length=1, max_length=MAX_LIST)
    token_ids: list[Item] = Field(
        min_length=1, max_length=MAX_LIST, validation_alias=_aliases("token_ids", "tokenIds")
    )
    period: str = Field("30d", json_schema_extra=_PERIOD)
    granularity: str = Field("auto", json_schema_extra=_GRANULARITY)
    start: str | None = Field(
        None, validation_alias=_aliases("from", "start"), json_schema_extra=_TIME
    )
    end: str | None = Field(None, validation_alias=_aliases("to", "end"), json_schema_extra=_TIME)


class PortfolioIn(_In):
    addresses: list[Item] = Field(min_length=1, max_length=MAX_LIST)
    period: str = Field("30d", json_schema_extra=_PERIOD)


class ItemErrorOut(BaseModel):
    address: str
    token_id: str | None
    error: str
    message: str


class CurrentOut(BaseModel):
    block_height: int | None = Field(
        description="the block every balance is as of: at_block, or the one tip all were "
        "read at; null when they were read at different tips (ask with at_block)"
    )
    balances: list[BalanceOut]
    errors: list[ItemErrorOut]


class SeriesOut(BaseModel):
    block_height: int | None = Field(
        description="the block every series' current amount holds at (null: no series)"
    )
    series: dict[str, dict[str, HistoryOut]]
    errors: list[ItemErrorOut]


class PortfolioOut(BaseModel):
    block_height: int | None = Field(
        description="the block every performance's end holds at (null: no performance)"
    )
    performance: dict[str, dict[str, Any]]
    errors: list[ItemErrorOut]


def series_api(request: Request) -> BalanceSeriesAPI:
    found: BalanceSeriesAPI = request.app.state.series_api
    return found


def _errors(items: list[ItemError]) -> list[ItemErrorOut]:
    out = []
    for item in items:
        shown = item.as_dict()  # the item as asked for, cut like any quoted input
        body = error_body(item.error)
        out.append(ItemErrorOut(address=shown["address"], token_id=shown["token_id"], **body))
    return out


@router.post("/balances/bulk/current", tags=["bulk"], summary="Current balances, many addresses")
async def bulk_current(request: Request, body: Annotated[CurrentIn, Body()]) -> CurrentOut:
    answer = await series_api(request).get_current_balances_bulk(body.model_dump())
    return CurrentOut(
        block_height=answer.block_height,
        balances=[BalanceOut.of(b) for b in answer.balances],
        errors=_errors(answer.errors),
    )


@router.post("/balances/bulk/series", tags=["bulk"], summary="Histories, many addresses x tokens")
async def bulk_series(request: Request, body: Annotated[SeriesIn, Body()]) -> SeriesOut:
    answer = await series_api(request).get_balance_series_bulk(body.model_dump())
    series = {
        address: {token: HistoryOut.of(history) for token, history in tokens.items()}
        for address, tokens in answer.series.items()
    }
    return SeriesOut(block_height=answer.block_height, series=series, errors=_errors(answer.errors))


@router.post("/balances/bulk/portfolio", tags=["bulk"], summary="Portfolio performance")
async def bulk_portfolio(request: Request, body: Annotated[PortfolioIn, Body()]) -> PortfolioOut:
    answer = await series_api(request).get_portfolio_performance_bulk(body.addresses, body.period)
    performance = {address: p.as_dict() for address, p in answer.performance.items()}
    return PortfolioOut(
        block_height=answer.block_height, performance=performance, errors=_errors(answer.errors)
    )


@router.get("/cache/stats", tags=["service"], summary="Cache and blob-storage statistics")
async def cache_stats(svc: Service) -> dict[str, Any]:
    return svc.cache_report()


@router.post("/cache/clear", tags=["service"], dependencies=[ApiKey], status_code=204)
async def cache_clear(svc: Service) -> None:
    await svc.clear_cache()


@router.get("/scheduler", tags=["service"], summary="Background tasks: last and next runs")
async def scheduler(request: Request) -> dict[str, Any]:
    running = getattr(request.app.state, "scheduler", None)
    if running is None:
        return {"running": False, "tasks": {}}
    status: dict[str, Any] = running.get_status()
    return {"running": True, **status}
