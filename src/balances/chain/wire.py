"""The shapes of the API answers we read, checked strictly at the edge.

Only the fields we use are declared; extra fields are ignored. Types are strict
(an amount must be a decimal string, a height an integer), so a mistyped or
missing field, a negative or non-numeric amount, becomes one
:class:`~balances.errors.MalformedResponseError` naming the route and the field,
instead of a wrong number further in.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator
from pydantic import ValidationError as PydanticValidationError

from balances.domain import parse_amount
from balances.errors import MalformedResponseError


def _amount(value: object) -> int:
    if not isinstance(value, str):  # the API sends amounts as decimal strings
        raise ValueError(f"an amount must be a decimal string, got {type(value).__name__}")
    return parse_amount(value)  # InvalidAmountError is a ValueError: reported as malformed


#: A base-unit amount: a decimal string on the wire, a non-negative int here.
Amount = Annotated[int, PlainValidator(_amount)]

# The API's own pattern for asset identifiers (ADDR.contract::asset).
_ASSET_IDENTIFIER = re.compile(
    r"[0-9A-Z]{28,41}\.[a-zA-Z][a-zA-Z0-9_-]{0,127}::[a-zA-Z][a-zA-Z0-9_!?+<>=/*-]{0,127}"
)


def _asset_identifier(value: str) -> str:
    if not _ASSET_IDENTIFIER.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not an asset identifier ADDR.contract::asset")
    return value


AssetIdentifier = Annotated[str, AfterValidator(_asset_identifier)]


class Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class StxBalance(Wire):
    """v3 ``balances/stx``, v2 ``balances/stx`` and v1 ``/stx`` all carry ``balance``."""

    balance: Amount


class FtPosition(Wire):
    asset_identifier: AssetIdentifier
    balance: Amount


class Cursor(Wire):
    next: str | None


class V3FtPage(Wire):
    total: int
    limit: int
    cursor: Cursor
    results: list[FtPosition]


class V2FtEntry(Wire):
    token: AssetIdentifier
    balance: Amount


class V2FtPage(Wire):
    total: int
    limit: int
    offset: int
    results: list[V2FtEntry]


class FtBalance(Wire):
    """v3 and v2 single-token balance."""

    balance: Amount


class V1FtEntry(Wire):
    balance: Amount


class V1Balances(Wire):
    fungible_tokens: dict[AssetIdentifier, V1FtEntry]


class CallReadAnswer(Wire):
    okay: bool
    result: str | None = None
    cause: str | None = None


class AbiFunction(Wire):
    name: str
    access: str


class AbiFungibleToken(Wire):
    name: str


class ContractAbi(Wire):
    functions: list[AbiFunction]
    fungible_tokens: list[AbiFungibleToken]


def _hex_u128(value: object) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError("an account amount is 0x-prefixed hex")
    amount = int(value[2:] or "0", 16)
    if amount >= 2**128:
        raise ValueError("an account amount exceeds u128")
    return amount


HexAmount = Annotated[int, PlainValidator(_hex_u128)]


class NodeAccount(Wire):
    """``/v2/accounts/{principal}``: amounts as big-endian u128 hex."""

    balance: HexAmount
    locked: HexAmount


class BlockAnswer(Wire):
    height: int
    hash: str
    block_time: int
    index_block_hash: str
    burn_block_height: int


ModelT = TypeVar("ModelT", bound=Wire)


def parse(model: type[ModelT], data: Any, route: str) -> ModelT:
    """Validate ``data`` as ``model`` or raise MalformedResponseError naming the problem."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors()[:3]
        )
        raise MalformedResponseError(f"{route} answered an unexpected shape: {problems}") from error
