"""The published patterns (the OpenAPI schema's) and the parsers accept the same text.

Two directions: whatever a parser accepts matches its pattern (so the schema never
refuses what the service takes, and negative fuzzing cannot be answered 200), and
text that matches a pattern is either accepted or refused with the parser's own
error (a checksum or a range the pattern cannot state), never with anything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balances.chain.c32 import c32_address
from balances.domain import CONTRACT_NAME_RE, Granularity, Period, Principal, TokenId
from balances.domain.principals import PRINCIPAL_PATTERN
from balances.domain.text import ASCII_SPACE
from balances.domain.time import GRANULARITY_PATTERN, PERIOD_PATTERN, TIME_PATTERN, parse_timestamp
from balances.domain.tokens import ASSET_NAME_RE, TOKEN_ID_PATTERN
from balances.errors import (
    InvalidAddressError,
    InvalidGranularityError,
    InvalidPeriodError,
    InvalidTokenIdError,
)

spaces = st.text(alphabet=ASCII_SPACE, max_size=3)
hash160 = st.binary(min_size=20, max_size=20)
addresses = st.builds(c32_address, st.sampled_from([22, 20, 26, 21]), hash160)
contract_names = st.from_regex(CONTRACT_NAME_RE, fullmatch=True)


def _refusal(parse: Callable[[str], object], text: str, error: type[Exception]) -> str | None:
    """None if ``parse`` reads ``text``, else the message of the ``error`` it raised
    (any other exception fails the test)."""
    try:
        parse(text)
    except error as refused:
        return str(refused)
    return None


def _lenient(address: str, lower: bool, look_alikes: bool) -> str:
    """The spellings c32check also reads: lower case after the S, O/I/L for 0/1."""
    body = address[1:]
    if look_alikes:
        body = body.replace("0", "O").replace("1", "I")
    return "S" + (body.lower() if lower else body)


@given(addresses, st.booleans(), st.booleans(), st.none() | contract_names, spaces, spaces)
def test_every_principal_the_parser_accepts_matches_the_pattern(
    address: str, lower: bool, look_alikes: bool, name: str | None, before: str, after: str
) -> None:
    text = _lenient(address, lower, look_alikes) + ("" if name is None else f".{name}")
    spelled = before + text + after
    Principal.parse(spelled)
    assert re.fullmatch(PRINCIPAL_PATTERN, spelled)


@given(st.from_regex(PRINCIPAL_PATTERN))
def test_text_of_the_principal_pattern_parses_or_fails_on_its_checksum(text: str) -> None:
    problem = _refusal(Principal.parse, text, InvalidAddressError)
    assert problem is None or any(word in problem for word in ("checksum", "version", "hash160"))


@given(
    addresses,
    contract_names,
    st.none() | st.from_regex(ASSET_NAME_RE, fullmatch=True),
    spaces,
    spaces,
)
def test_every_token_id_the_parser_accepts_matches_the_pattern(
    address: str, name: str, asset: str | None, before: str, after: str
) -> None:
    text = before + f"{address}.{name}" + ("" if asset is None else f"::{asset}") + after
    TokenId.parse(text)
    assert re.fullmatch(TOKEN_ID_PATTERN, text)


@pytest.mark.parametrize("text", ["stx", " STX", "Stx\n"])
def test_stx_in_any_case_matches_the_token_pattern(text: str) -> None:
    assert TokenId.parse(text).is_stx
    assert re.fullmatch(TOKEN_ID_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("S\u0131" + "P2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"[1:], InvalidAddressError),
        ("\u00a0SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7", InvalidAddressError),
    ],
    ids=["dotless i upper-cases to I", "a no-break space is not ASCII space"],
)
def test_non_ascii_look_alikes_are_refused(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        Principal.parse(text)
    assert not re.fullmatch(PRINCIPAL_PATTERN, text)


def test_a_space_before_the_asset_separator_is_refused() -> None:
    token = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7.charisma-token ::charisma"
    with pytest.raises(InvalidTokenIdError, match="space before '::'"):
        TokenId.parse(token)
    assert not re.fullmatch(TOKEN_ID_PATTERN, token)


@given(st.from_regex(GRANULARITY_PATTERN))
def test_every_granularity_of_the_pattern_parses(text: str) -> None:
    Granularity.parse(text)


@given(st.from_regex(PERIOD_PATTERN))
def test_every_period_of_the_pattern_parses(text: str) -> None:
    Period.parse(text)


@pytest.mark.parametrize("text", ["wee\u212aly", "d\u0430y"], ids=["Kelvin sign", "Cyrillic a"])
def test_case_folding_reads_no_non_ascii_letter_as_ascii(text: str) -> None:
    """The Kelvin sign lower-cases to an ASCII k: 'weeKly' with it is not 'weekly'."""
    with pytest.raises(InvalidGranularityError):
        Granularity.parse(text)
    assert not re.fullmatch(GRANULARITY_PATTERN, text)


@given(st.from_regex(TIME_PATTERN))
def test_text_of_the_time_pattern_is_read_or_refused_as_a_time(text: str) -> None:
    problem = _refusal(parse_timestamp, text, InvalidPeriodError)
    # A date the calendar lacks (2024-02-30), or unix seconds out of range.
    assert problem is None or "cannot read time" in problem or "out of range" in problem


@given(st.datetimes(), spaces, st.sampled_from(["T", " "]), st.sampled_from(["", "Z", "+02:00"]))
def test_every_iso_time_we_write_matches_the_time_pattern(
    moment: object, before: str, separator: str, zone: str
) -> None:
    text = before + moment.isoformat(sep=separator) + zone  # type: ignore[attr-defined]
    parse_timestamp(text)
    assert re.fullmatch(TIME_PATTERN, text)


@pytest.mark.parametrize(
    "text", ["2024-W18-3", "20240501T1200", "2024-05-01+02:00", "2024-05-01t12"]
)
def test_rarer_iso_forms_are_refused(text: str) -> None:
    with pytest.raises(InvalidPeriodError, match="cannot read time"):
        parse_timestamp(text)
    assert not re.fullmatch(TIME_PATTERN, text)
