"""Token ids and amounts."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal

from balances.domain.principals import CONTRACT_ID_SYNTAX, Principal
from balances.domain.text import any_case, folded, trimmed, whole
from balances.errors import InvalidAddressError, InvalidAmountError, InvalidTokenIdError, quoted

#: Amounts are Clarity ``uint`` values in base units.
MAX_AMOUNT = 2**128 - 1
STX_ID = "stx"
ASSET_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_!?+<>=/*-]{0,127}")
_ACCEPTED = "'stx', a contract id ADDR.name, or an asset identifier ADDR.name::asset"
#: The text TokenId.parse can accept (the OpenAPI schema's pattern for token ids).
TOKEN_ID_PATTERN = whole(f"{any_case([STX_ID])}|{CONTRACT_ID_SYNTAX}(?:::{ASSET_NAME_RE.pattern})?")


@dataclass(frozen=True, slots=True)
class TokenId:
    """STX, or a fungible-token contract with an optional asset name.

    The Hiro API names tokens by asset identifier (``ADDR.contract::asset``), and
    the asset name is often not the contract name. Both forms parse; the contract
    id is the identity (``str()``, equality, hashing) and the asset name, when
    known, is kept alongside.
    """

    contract: Principal | None
    asset_name: str | None = field(default=None, compare=False)
    # Computed once: token ids key every map on the read path.
    _text: str = field(init=False, repr=False, compare=False)
    _asset: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = STX_ID if self.contract is None else str(self.contract)
        asset = None if self.asset_name is None else f"{text}::{self.asset_name}"
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_asset", asset)
        if self.contract is None:
            if self.asset_name is not None:
                raise InvalidTokenIdError("STX has no asset name")
            return
        if not self.contract.is_contract:
            raise InvalidTokenIdError(f"{self.contract} is not a contract; tokens are {_ACCEPTED}")
        if self.asset_name is not None and not ASSET_NAME_RE.fullmatch(self.asset_name):
            raise InvalidTokenIdError(
                f"invalid asset name {quoted(self.asset_name)}: a letter, then up to 127 "
                "letters, digits or -_!?+<>=/*"
            )

    @classmethod
    def parse(cls, text: str) -> TokenId:
        """``stx``, ``ADDR.name`` or ``ADDR.name::asset`` (memoised, like principals)."""
        if cls is TokenId and isinstance(text, str):
            return _parse_token(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> TokenId:
        if not isinstance(text, str):
            raise InvalidTokenIdError(f"a token id must be text, got {type(text).__name__}")
        if folded(text) == STX_ID:
            return STX
        stripped = trimmed(text)
        contract_id, separator, asset = stripped.partition("::")
        if trimmed(contract_id) != contract_id:
            raise InvalidTokenIdError(f"{quoted(text)} has a space before '::'")
        if separator and not asset:
            raise InvalidTokenIdError(
                f"{quoted(text)} has an empty asset name; tokens are {_ACCEPTED}"
            )
        if "." not in contract_id:
            raise InvalidTokenIdError(f"{quoted(text)} is not a token id; tokens are {_ACCEPTED}")
        try:
            contract = Principal.parse(contract_id)
        except InvalidAddressError as error:
            raise InvalidTokenIdError(f"invalid token id {quoted(text)}: {error}") from error
        return cls(contract, asset if separator else None)

    @property
    def is_stx(self) -> bool:
        return self.contract is None

    @property
    def contract_id(self) -> str:
        return self._text

    @property
    def asset_identifier(self) -> str | None:
        """``ADDR.name::asset`` when the asset name is known (None for STX)."""
        return self._asset

    def with_asset_name(self, asset_name: str) -> TokenId:
        return TokenId(self.contract, asset_name)

    def __str__(self) -> str:
        return self._text


STX = TokenId(None)


def parse_amount(value: int | str) -> int:
    """An amount in base units: an ``int`` or a decimal string, ``0 <= x < 2**128``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidAmountError(
            f"amounts are integers in base units (int or decimal string), got {quoted(value)}"
        )
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise InvalidAmountError(
                f"amount {quoted(value)} is not a decimal string of digits (base units, no sign, "
                "no decimal point)"
            )
        value = int(value)
    if not 0 <= value <= MAX_AMOUNT:
        raise InvalidAmountError(f"amount {value} is outside 0 <= x < 2**128 (a Clarity uint)")
    return value


def to_display_units(amount: int, decimals: int) -> Decimal:
    """``amount / 10**decimals`` exactly, for display and USD value (never floats)."""
    if decimals < 0:
        raise InvalidAmountError(f"decimals must be >= 0, got {decimals}")
    # From text, so no context precision applies: u128 values keep every digit.
    return Decimal(f"{amount}E-{decimals}")


@functools.lru_cache(maxsize=65_536)
def _parse_token(text: str) -> TokenId:
    return TokenId._parse(text)
