"""Plumbing shared by the stand-in's routes: replies, errors, validation, paging."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.datastructures import Headers, QueryParams

from balances.domain import Principal
from balances.errors import InvalidAddressError

if TYPE_CHECKING:
    from balances.testing.fake_chain.ledger import FakeChain

T = TypeVar("T")

_C32 = "[0123456789ABCDEFGHJKMNPQRSTVWXYZ]"
ADDRESS_RE = re.compile(f"{_C32}{{28,41}}")
CONTRACT_RE = re.compile(f"{_C32}{{28,41}}\\.[a-zA-Z][a-zA-Z0-9_-]{{0,127}}")
ASSET_RE = re.compile(
    f"{_C32}{{28,41}}\\.[a-zA-Z][a-zA-Z0-9_-]{{0,127}}::[a-zA-Z][a-zA-Z0-9_!?+<>=/*-]{{0,127}}"
)
TX_ID_RE = re.compile(r"(0x)?[a-fA-F0-9]{64}")


@dataclass(slots=True)
class Reply:
    """A route's answer before faults and headers are applied."""

    status: int = 200
    body: Any = None  # a JSON value, unless ``text`` is set
    text: str | None = None  # a text/plain body (the node's error style)
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a route to answer with ``reply`` instead."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def api_error(status: int, error: str, message: str | None = None) -> HttpError:
    """The Hiro API's error shape: ``{"error", "message"?}``."""
    body: dict[str, Any] = {"error": error, "statusCode": status}
    if message is not None:
        body["message"] = message
    return HttpError(Reply(status, body))


def bad_request(message: str) -> HttpError:
    return api_error(400, "Bad Request", message)


def plain_error(status: int, text: str) -> HttpError:
    """The node's error shape: a text/plain body."""
    return HttpError(Reply(status, text=text))


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a route sees of one request."""

    chain: FakeChain
    params: Mapping[str, str]
    query: QueryParams
    headers: Headers
    body: bytes


def path_principal(ctx: Ctx, name: str = "principal") -> str:
    """The path's principal, validated like the API (pattern) and by checksum."""
    text = ctx.params[name]
    if not (ADDRESS_RE.fullmatch(text) or CONTRACT_RE.fullmatch(text)):
        raise bad_request(
            f"params/{name} must be a Stacks address or contract id "
            f"(pattern ^{ADDRESS_RE.pattern}(\\.<contract-name>)?$), got {text!r}"
        )
    try:
        principal = Principal.parse(text)
    except InvalidAddressError as error:
        raise bad_request(f"params/{name}: {error}") from error
    return str(principal)


def query_limit(ctx: Ctx, default: int, maximum: int) -> int:
    raw = ctx.query.get("limit")
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw):
        raise bad_request(f"querystring/limit must be integer, got {raw!r}")
    value = int(raw)
    if value < 1:
        raise bad_request("querystring/limit must be >= 1")
    if value > maximum:
        raise bad_request(f"querystring/limit must be <= {maximum}")
    return value


def query_offset(ctx: Ctx) -> int:
    raw = ctx.query.get("offset", "0")
    if not re.fullmatch(r"\d{1,9}", raw):
        raise bad_request(f"querystring/offset must be a non-negative integer, got {raw!r}")
    return int(raw)


def query_cursor(ctx: Ctx, pattern: str) -> re.Match[str] | None:
    """The ``cursor`` parameter matched against ``pattern`` (400 when it does not match)."""
    raw = ctx.query.get("cursor")
    if raw is None:
        return None
    match = re.fullmatch(pattern, raw)
    if match is None:
        raise bad_request(f"querystring/cursor must match pattern ^{pattern}$, got {raw!r}")
    return match


def cursor_page(
    items: Sequence[T],
    keys: Sequence[tuple[Any, ...]],
    limit: int,
    start: tuple[Any, ...] | None,
    cursor_of: Callable[[T], str],
) -> tuple[Sequence[T], dict[str, Any]]:
    """One v3 page: items from ``start`` (a sort key; the first item's when None).

    ``keys`` are the items' sort keys, ascending. A cursor names the first item of
    a page, so ``next`` is the first item after this page and ``previous`` the
    first item of the page before.
    """
    begin = 0 if start is None else bisect.bisect_left(keys, start)
    end = begin + limit
    page = items[begin:end]
    envelope = {
        "limit": limit,
        "total": len(items),
        "cursor": {
            "next": cursor_of(items[end]) if end < len(items) else None,
            "previous": cursor_of(items[max(0, begin - limit)]) if begin > 0 else None,
            "current": cursor_of(items[begin]) if begin < len(items) else None,
        },
    }
    return page, envelope
