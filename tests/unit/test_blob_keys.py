"""Blob key validation and the safe key builder."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balances.blobs import (
    blob_key,
    blob_key_parts,
    escape_key_part,
    unescape_key_part,
    validate_key,
    validate_prefix,
)
from balances.errors import InvalidBlobKeyError


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "balances/SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7/current.json",
        "tokens/SP1.token::asset",
        "series/2024-01.json.zst",
        "with space/ünïcödé",
        "a.b/c..d/e.",
        ("x" * 189 + "/") * 4 + "x" * 190,  # exactly MAX_KEY_BYTES
    ],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/abs", "empty path segment"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        ("..", "start with '.'"),
        ("a/../b", "start with '.'"),
        ("./a", "start with '.'"),
        (".git/config", "start with '.'"),
        ("a\\b", "backslash"),
        ("a\x00", "U+0000"),
        ("a\x1fb", "U+001F"),
        ("a\u0085b", "U+0085"),
        ("a\ud800", "U+D800"),
        ("e\u0301", "NFC"),
        (("x" * 189 + "/") * 4 + "x" * 191, "longer than 950"),
        ("a/" + "b" * 201, "segment is longer"),
    ],
)
def test_invalid_keys_name_the_problem(key: str, reason: str) -> None:
    with pytest.raises(InvalidBlobKeyError, match=re.escape(reason)):
        validate_key(key)


@pytest.mark.parametrize("value", [None, 1, b"bytes", ["a"]])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidBlobKeyError, match="must be a str"):
        validate_key(value)


def test_invalid_keys_are_value_errors_too() -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        validate_key("../x")


@pytest.mark.parametrize("prefix", ["", "a", "a/", "balances/SP1", "a/b/"])
def test_valid_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "a//", "../", ".a", "a\\", "a\n"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        validate_prefix(prefix)


@pytest.mark.parametrize(
    ("parts", "key"),
    [
        (("balances", "SP1ABC", "current.json"), "balances/SP1ABC/current.json"),
        (("tokens", "SP1.token::asset"), "tokens/SP1.token::asset"),
        (("a/b",), "a%2Fb"),
        (("../etc",), "%2E.%2Fetc"),
        ((".",), "%2E"),
        (("100%",), "100%25"),
        (("ü",), "%C3%BC"),
        (("a b",), "a%20b"),
    ],
)
def test_blob_key_escapes_each_part(parts: tuple[str, ...], key: str) -> None:
    assert blob_key(*parts) == key
    assert blob_key_parts(key) == list(parts)


@pytest.mark.parametrize("parts", [(), ("",), ("a", "")])
def test_blob_key_rejects_empty_parts(parts: tuple[str, ...]) -> None:
    with pytest.raises(InvalidBlobKeyError):
        blob_key(*parts)


def test_blob_key_rejects_a_result_that_is_too_long() -> None:
    with pytest.raises(InvalidBlobKeyError, match="longer"):
        blob_key("ü" * 40)  # 40 characters, 240 bytes once escaped


parts_strategy = st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=4)


@given(parts_strategy)
def test_blob_key_is_valid_ascii_and_reversible(parts: list[str]) -> None:
    key = blob_key(*parts)
    assert validate_key(key) == key
    assert key.isascii()
    assert key.count("/") == len(parts) - 1
    assert blob_key_parts(key) == parts


@given(parts_strategy, parts_strategy)
def test_different_parts_never_share_a_key(first: list[str], second: list[str]) -> None:
    if first != second:
        assert blob_key(*first) != blob_key(*second)


@given(st.text(min_size=1, max_size=40))
def test_escaped_part_is_one_segment(part: str) -> None:
    escaped = escape_key_part(part)
    assert "/" not in escaped
    assert not escaped.startswith(".")
    assert unescape_key_part(escaped) == part
