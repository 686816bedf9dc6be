"""Reading price answers: ``{"token_id", "usd": "1.23", "at": <unix seconds>}``.

Prices travel as plain decimal strings. Anything else is refused with a message
that says what was wrong, because a price read wrongly is worse than no price:
a JSON number has already been through a float, and exponent forms (``"1e400"``),
``NaN`` or ``Infinity`` are not prices anyone quotes.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from balances.domain import parse_timestamp
from balances.errors import InvalidPeriodError, PriceSourceError
from balances.prices.source import PricePoint

#: Digits, optionally a fraction; a sign only so that negatives get their own message.
_DECIMAL_RE = re.compile(r"(-?)(\d{1,40})(?:\.(\d{1,40}))?")


def parse_price(body: Any, token_id: str, where: str) -> PricePoint:
    """The current price in ``body``, which ``where`` (route and token) answered."""
    if not isinstance(body, dict):
        raise malformed(where, f"expected a JSON object, got {_kind(body)}")
    check_token(body, token_id, where)
    return parse_point(body, where)


def parse_history(body: Any, token_id: str, where: str) -> list[PricePoint]:
    """The points of a history answer ``{"token_id", "prices": [{"at", "usd"}, ...]}``."""
    if not isinstance(body, dict):
        raise malformed(where, f"expected a JSON object, got {_kind(body)}")
    check_token(body, token_id, where)
    rows = body.get("prices")
    if not isinstance(rows, list):
        raise malformed(where, f"'prices' must be a list, got {_kind(rows)}")
    points: list[PricePoint] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise malformed(where, f"prices[{index}] must be an object, got {_kind(row)}")
        points.append(parse_point(row, f"{where} prices[{index}]"))
    return sorted(points, key=lambda point: point.at)


def parse_point(row: dict[str, Any], where: str) -> PricePoint:
    if "usd" not in row:
        raise malformed(where, "no 'usd' field")
    if "at" not in row:
        raise malformed(where, "no 'at' field")
    return PricePoint(parse_at(row["at"], where), parse_usd(row["usd"], where))


def parse_usd(value: Any, where: str) -> Decimal:
    """A non-negative plain decimal string as a Decimal."""
    if not isinstance(value, str):
        raise malformed(where, f"'usd' must be a decimal string such as \"1.23\", got {value!r}")
    match = _DECIMAL_RE.fullmatch(value)
    if match is None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise malformed(where, f"'usd' is not a plain decimal number: {shown!r}")
    if match[1] and Decimal(value) != 0:
        raise malformed(where, f"'usd' is negative: {value}")
    return abs(Decimal(value))  # "-0" is zero


def parse_at(value: Any, where: str) -> datetime:
    """Unix seconds (an integer, or a finite non-negative number) as a UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(where, f"'at' must be unix seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise malformed(where, f"'at' is not a valid time: {value!r}")
    try:
        return parse_timestamp(value)
    except InvalidPeriodError as error:
        raise malformed(where, f"'at' is out of range: {value!r}") from error


def check_token(body: dict[str, Any], token_id: str, where: str) -> None:
    """An echoed ``token_id`` must name the token asked for (asset names aside)."""
    echoed = body.get("token_id")
    if echoed is None:
        return
    if not isinstance(echoed, str) or _contract(echoed) != _contract(token_id):
        raise malformed(where, f"answered for token {echoed!r}, not {token_id!r}")


def _contract(token_id: str) -> str:
    return token_id.strip().partition("::")[0].lower()


def malformed(where: str, what: str) -> PriceSourceError:
    return PriceSourceError(f"{where}: malformed price answer: {what}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
