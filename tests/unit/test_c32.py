"""c32 / c32check: lenient input, clear errors, round trips (vectors: test_clarity_vectors)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balances.chain.c32 import (
    C32_ALPHABET,
    c32_address,
    c32_address_decode,
    c32_decode,
    c32_encode,
    c32_normalize,
    c32check_decode,
    c32check_encode,
)
from balances.errors import BalancesError, C32Error

SP2J6 = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
CANONICAL = "SP102V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM"
FAST = settings(max_examples=200, deadline=None)


# --- normalisation ------------------------------------------------------------------


def test_normalize_upper_cases_and_maps_look_alikes() -> None:
    assert c32_normalize("abc") == "ABC"
    assert c32_normalize("oO") == "00"
    assert c32_normalize("iIlL") == "1111"
    assert c32_normalize(C32_ALPHABET.lower()) == C32_ALPHABET


@pytest.mark.parametrize(
    "text",
    [
        "SP1O2V8POF7JX67ARQ77WEA3D3CFB5XW39REDTOAM",  # O for 0
        "Sp102v8p0f7jx67arq77wea3d3cfb5xw39redt0am",  # lower case after S
        "SPL02V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM",  # L for 1
        "SPI02V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM",  # I for 1
    ],
    ids=["O", "lower", "L", "I"],
)
def test_lenient_address_reencodes_to_canonical(text: str) -> None:
    version, hash160 = c32_address_decode(text)
    assert c32_address(version, hash160) == CANONICAL


def test_decode_reads_look_alikes_as_digits() -> None:
    assert c32_decode("o") == c32_decode("0") == b"\x00"
    assert c32_decode("I") == c32_decode("l") == c32_decode("1") == b"\x01"


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: c32_decode("AU"), "invalid c32 character 'U' at position 1"),
        (lambda: c32_decode("A!"), "invalid c32 character '!'"),
        (lambda: c32_decode("A B"), "invalid c32 character ' '"),
        (
            lambda: c32_address_decode("SU2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"),
            "version character",
        ),
        (lambda: c32_address_decode(SP2J6[:-1] + "U"), "invalid c32 character 'U'"),
        (lambda: c32_address_decode("SP"), "too short"),
        (lambda: c32_address_decode(""), "too short"),
        (lambda: c32check_decode("P"), "too short"),
        (lambda: c32check_decode("P000"), "too short to hold a checksum"),
        (lambda: c32_address_decode("X" + SP2J6[1:]), 'must start with an upper-case "S"'),
        (lambda: c32_address_decode(SP2J6.lower()), 'must start with an upper-case "S"'),
        (lambda: c32_address_decode(SP2J6[:-1] + "8"), "checksum mismatch"),
        (lambda: c32_address_decode(SP2J6[:-1]), "checksum mismatch"),
        (lambda: c32_address_decode("ST" + SP2J6[2:]), "checksum mismatch"),
        (lambda: c32check_encode(32, b""), "version must be 0..31"),
        (lambda: c32_address(-1, bytes(20)), "version must be 0..31"),
    ],
    ids=[
        "U",
        "bang",
        "space",
        "bad version char",
        "U in address",
        "two chars",
        "empty",
        "c32check one char",
        "no room for checksum",
        "leading X",
        "leading s",
        "last char",
        "truncated",
        "other version",
        "encode version 32",
        "negative version",
    ],
)
def test_errors(call: Callable[[], object], fragment: str) -> None:
    with pytest.raises(C32Error) as caught:
        call()
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, BalancesError)


# --- round trips ----------------------------------------------------------------------


@FAST
@given(st.binary(max_size=48))
def test_c32_round_trip(data: bytes) -> None:
    text = c32_encode(data)
    assert set(text) <= set(C32_ALPHABET)
    assert c32_decode(text) == data
    assert c32_decode(text.lower()) == data


@FAST
@given(st.integers(0, 31), st.binary(max_size=32))
def test_c32check_round_trip(version: int, payload: bytes) -> None:
    assert c32check_decode(c32check_encode(version, payload)) == (version, payload)


@FAST
@given(st.integers(0, 31), st.binary(min_size=20, max_size=20))
def test_address_round_trip(version: int, hash160: bytes) -> None:
    address = c32_address(version, hash160)
    assert 28 <= len(address) <= 41
    assert c32_address_decode(address) == (version, hash160)
    assert c32_address_decode("S" + address[1:].lower()) == (version, hash160)
