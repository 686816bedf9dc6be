"""Token ids and amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from balances.domain import MAX_AMOUNT, STX, TokenId, parse_amount, to_display_units
from balances.errors import InvalidAmountError, InvalidTokenIdError

CHARISMA = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token"


def test_stx_parses_case_insensitively() -> None:
    assert TokenId.parse("stx") is STX
    assert TokenId.parse(" STX ") is STX
    assert STX.is_stx
    assert str(STX) == "stx"
    assert STX.asset_identifier is None


def test_contract_id_and_asset_identifier_name_the_same_token() -> None:
    by_contract = TokenId.parse(CHARISMA)
    by_asset = TokenId.parse(f"{CHARISMA}::charisma")
    assert by_contract == by_asset
    assert hash(by_contract) == hash(by_asset)
    assert str(by_asset) == CHARISMA
    assert by_asset.asset_name == "charisma"
    assert by_asset.asset_identifier == f"{CHARISMA}::charisma"
    assert by_contract.asset_identifier is None
    assert by_contract.with_asset_name("charisma").asset_identifier == f"{CHARISMA}::charisma"


def test_contract_part_is_normalised() -> None:
    lenient = TokenId.parse("SP1O2V8POF7JX67ARQ77WEA3D3CFB5XW39REDTOAM.token-wstx-v2")
    assert str(lenient) == "SP102V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM.token-wstx-v2"


def test_asset_names_allow_clarity_punctuation() -> None:
    token = TokenId.parse(f"{CHARISMA}::a-b_c!?+<>=/*")
    assert token.asset_name == "a-b_c!?+<>=/*"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not a token id"),
        ("SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS", "not a token id"),
        (f"{CHARISMA}::", "empty asset name"),
        (f"{CHARISMA}::1abc", "invalid asset name"),
        ("SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KX.charisma-token", "checksum mismatch"),
        ("SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.-bad", "invalid contract name"),
        ("ustx", "not a token id"),
    ],
)
def test_bad_token_ids_say_what_is_accepted(text: str, fragment: str) -> None:
    with pytest.raises(InvalidTokenIdError, match=fragment) as caught:
        TokenId.parse(text)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        ("0", 0),
        ("123456789", 123456789),
        (MAX_AMOUNT, MAX_AMOUNT),
        (str(MAX_AMOUNT), MAX_AMOUNT),
    ],
)
def test_amounts_accept_ints_and_decimal_strings(value: int | str, expected: int) -> None:
    assert parse_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (-1, "outside 0 <= x < 2\\*\\*128"),
        (MAX_AMOUNT + 1, "outside 0 <= x < 2\\*\\*128"),
        (str(2**128), "outside"),
        ("-1000000", "not a decimal string"),
        ("1.5", "not a decimal string"),
        ("1e6", "not a decimal string"),
        (" 12", "not a decimal string"),
        ("", "not a decimal string"),
        ("١٢", "not a decimal string"),  # Arabic-Indic digits are digits, but not ours
        (1.0, "integers in base units"),
        (True, "integers in base units"),
        (None, "integers in base units"),
    ],
)
def test_bad_amounts_are_rejected(value: object, fragment: str) -> None:
    with pytest.raises(InvalidAmountError, match=fragment):
        parse_amount(value)  # type: ignore[arg-type]


def test_display_units_are_exact_decimals() -> None:
    assert to_display_units(123456789, 6) == Decimal("123.456789")
    assert to_display_units(MAX_AMOUNT, 0) == Decimal(MAX_AMOUNT)
    assert str(to_display_units(1, 8)) == "1E-8"
    with pytest.raises(InvalidAmountError):
        to_display_units(1, -1)
