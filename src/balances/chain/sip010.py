"""Reading SIP-010 answers: ``(ok ...)`` results into Python values.

A contract that answers ``(err ...)`` or a value of the wrong type did run: the
call failed at the contract level, which is a ContractCallError (cause: the
answer), never a transport error and never a default value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from balances.chain.clarity import (
    ClarityResponseError,
    ClarityValue,
    expect_optional,
    expect_string,
    expect_uint,
    to_repr,
    unwrap_ok,
)
from balances.chain.models import TokenMetadata
from balances.errors import ClarityValueError, ContractCallError

T = TypeVar("T")
Decoder = Callable[[ClarityValue], Any]
MAX_DECIMALS = 255


def decode_result(
    contract: str, function: str, value: ClarityValue, decode: Callable[[ClarityValue], T]
) -> T:
    """``decode(unwrap_ok(value))``; an ``(err ...)`` or a wrong type is a ContractCallError."""
    try:
        return decode(unwrap_ok(value))
    except ClarityResponseError as error:
        answer = to_repr(value)
        raise ContractCallError(f"{contract}.{function} answered {answer}", cause=answer) from error
    except ClarityValueError as error:
        raise ContractCallError(f"{contract}.{function}: {error}", cause=str(error)) from error


def decimals(value: ClarityValue) -> int:
    found = expect_uint(value)
    if found > MAX_DECIMALS:  # no display can use more; a larger value is a broken contract
        raise ClarityValueError(f"decimals {found} is out of range 0..{MAX_DECIMALS}")
    return found


def optional_string(value: ClarityValue) -> str | None:
    inner = expect_optional(value)
    return None if inner is None else expect_string(inner)


#: The SIP-010 getters read for metadata, decimals first (it is the required one).
METADATA_GETTERS: tuple[tuple[str, Decoder], ...] = (
    ("get-decimals", decimals),
    ("get-symbol", expect_string),
    ("get-name", expect_string),
    ("get-total-supply", expect_uint),
    ("get-token-uri", optional_string),
)


#: What a balance display needs; the rest is read when the token itself is asked for.
DISPLAY_GETTERS = METADATA_GETTERS[:2]


def build_metadata(
    contract: str,
    outcomes: Sequence[object],
    getters: Sequence[tuple[str, Decoder]] = METADATA_GETTERS,
) -> TokenMetadata:
    """TokenMetadata from the ``getters``' outcomes (values or exceptions), in order
    (``get-decimals`` first); getters not read leave their fields None.

    Transport errors and a failed ``get-decimals`` raise; a ContractCallError from
    an optional getter leaves its field None and records the cause in ``unavailable``.
    """
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, ContractCallError):
            raise outcome
    if isinstance(outcomes[0], BaseException):
        raise outcomes[0]
    values: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for (name, _), outcome in zip(getters, outcomes, strict=True):
        if isinstance(outcome, ContractCallError):
            unavailable[name] = outcome.cause or str(outcome)
        else:
            values[name] = outcome
    return TokenMetadata(
        contract_id=contract,
        decimals=values["get-decimals"],
        symbol=values.get("get-symbol"),
        name=values.get("get-name"),
        total_supply=values.get("get-total-supply"),
        token_uri=values.get("get-token-uri"),
        unavailable=unavailable,
    )
