"""The Clarity codec beyond the vectors: bad input, value semantics, repr, helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from balances.chain.c32 import c32check_encode
from balances.chain.clarity import (
    MAX_TYPE_DEPTH,
    MAX_VALUE_SIZE,
    NONE,
    Bool,
    Buffer,
    ClarityResponseError,
    ClarityValue,
    ContractPrincipal,
    Int,
    List,
    OptionalNone,
    ResponseErr,
    ResponseOk,
    Some,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    Tuple,
    UInt,
    decode_ok_uint,
    deserialize,
    expect_optional,
    expect_string,
    expect_uint,
    principal_from_text,
    serialize,
    to_hex,
    to_repr,
    unwrap_ok,
)
from balances.errors import BalancesError, ClarityDecodeError, ClarityError, ClarityValueError

H160 = bytes(range(20))
ZERO_H160 = "00" * 20
SP2J6 = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"


def _nested_some(depth: int) -> ClarityValue:
    """A value ``depth`` levels deep: (some (some ... none))."""
    value: ClarityValue = NONE
    for _ in range(depth - 1):
        value = Some(value)
    return value


# --- garbage in -> ClarityDecodeError ----------------------------------------

BAD_SERIALIZATIONS: list[tuple[str, bytes | str, str]] = [
    ("empty str", "", "unexpected end of data at byte 0: a value's type id needs 1 byte"),
    ("empty hex", "0x", "unexpected end of data at byte 0"),
    ("empty bytes", b"", "unexpected end of data at byte 0"),
    ("unknown type id", "0x0f", "unknown Clarity type id 0x0f at byte 0"),
    ("type id ff", "0xff00", "unknown Clarity type id 0xff at byte 0"),
    ("truncated uint", "0x01" + "00" * 15, "at byte 1: uint needs 16 bytes, 15 left"),
    ("truncated int", "0x00000000", "at byte 1: int needs 16 bytes"),
    ("trailing bytes", "0x01" + "00" * 17, "trailing data at byte 17"),
    ("two values", "0x0303", "trailing data at byte 1: the value ends there but 1 byte follow"),
    ("bad hex digit", "0xzz", "invalid hex"),
    ("odd hex", "0x123", "invalid hex"),
    ("hex with space", "0x01 00", "invalid hex: whitespace"),
    ("non-ASCII string-ascii", "0x0d0000000180", "non-ASCII byte 0x80 in string-ascii at byte 5"),
    ("NUL in string-ascii", "0x0d0000000100", "string-ascii accepts printable ASCII"),
    ("bad UTF-8", "0x0e00000001ff", "invalid UTF-8 in string-utf8 at byte 5"),
    ("UTF-8 surrogate", "0x0e00000003eda080", "invalid UTF-8"),
    ("truncated UTF-8", "0x0e00000002c3", "string-utf8 at byte 1 declares length 2, but only 1"),
    ("huge list", "0x0bffffffff", "list at byte 1 declares length 4294967295, over Clarity"),
    ("list longer than data", "0x0b00100000", "list at byte 1 declares length 1048576, but only 0"),
    ("list short by one", "0x0b00000002" + "09", "declares length 2, but only 1 byte left"),
    ("buffer longer than data", "0x020000001000", "buffer at byte 1 declares length 16"),
    ("huge buffer", "0x02ffffffff", "over Clarity's limit of 1048576"),
    ("huge string", "0x0d7fffffff", "string-ascii at byte 1 declares length 2147483647"),
    ("tuple longer than data", "0x0c000000020161" + "09", "tuple at byte 1 declares length 2"),
    ("truncated length", "0x0b0000", "list length prefix needs 4 bytes, 2 left"),
    ("some without value", "0x0a", "unexpected end of data at byte 1: a value's type id"),
    ("ok of garbage", "0x070f", "unknown Clarity type id 0x0f at byte 1"),
    ("too deep: some", "0x" + "0a" * MAX_TYPE_DEPTH + "09", "value at byte 32 nests deeper"),
    ("too deep: lists", "0x" + "0b00000001" * MAX_TYPE_DEPTH + "09", "max type depth (32)"),
    ("duplicate key", "0x0c00000002" + "016109" * 2, "duplicate tuple key 'a' at byte 8"),
    ("digit key", "0x0c00000001013109", "at byte 5: invalid tuple key '1'"),
    ("empty key", "0x0c00000001000909", "tuple key at byte 5 has length 0"),
    ("long key", "0x0c0000000181" + "61" * 129 + "09", "has length 129; names are 1..128"),
    ("non-ASCII key", "0x0c0000000101e909", "non-ASCII byte 0xe9 in tuple key at byte 6"),
    ("version 32", "0x0520" + ZERO_H160, "principal version must be an int in 0..31"),
    ("short principal", "0x0516" + "00" * 19, "principal (version + hash160) needs 21 bytes"),
    ("no contract name", "0x0616" + ZERO_H160, "contract name length needs 1 byte"),
    ("empty contract name", "0x0616" + ZERO_H160 + "00", "contract name at byte 22 has length 0"),
    ("bad contract name", "0x0616" + ZERO_H160 + "0131", "at byte 22: invalid contract name '1'"),
    ("short contract name", "0x0616" + ZERO_H160 + "056162", "contract name needs 5 bytes"),
]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(data, fragment) for _, data, fragment in BAD_SERIALIZATIONS],
    ids=[name for name, _, _ in BAD_SERIALIZATIONS],
)
def test_garbage_raises_clarity_decode_error(data: bytes | str, fragment: str) -> None:
    with pytest.raises(ClarityDecodeError) as caught:
        deserialize(data)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, BalancesError)


def test_deserialize_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="bytes or a hex str"):
        deserialize(17)  # type: ignore[arg-type]


def test_max_depth_is_accepted() -> None:
    deepest = _nested_some(MAX_TYPE_DEPTH)
    encoded = "0x" + "0a" * (MAX_TYPE_DEPTH - 1) + "09"
    assert to_hex(deepest) == encoded
    assert deserialize(encoded) == deepest


def test_largest_buffer_round_trips() -> None:
    value = Buffer(bytes(MAX_VALUE_SIZE))
    assert deserialize(serialize(value)) == value


# --- invalid construction -> ClarityValueError ----------------------------------

BAD_CONSTRUCTIONS: list[tuple[str, Callable[[], object], str]] = [
    ("uint -1", lambda: UInt(-1), "uint must be in 0..2**128-1, got -1"),
    ("uint 2**128", lambda: UInt(2**128), "uint must be in 0..2**128-1"),
    ("uint bool", lambda: UInt(True), "uint must be an int"),
    ("uint str", lambda: UInt("1"), "uint must be an int"),  # type: ignore[arg-type]
    ("int too big", lambda: Int(2**127), "int must be in -2**127..2**127-1"),
    ("int too small", lambda: Int(-(2**127) - 1), "int must be in -2**127..2**127-1"),
    ("bool int", lambda: Bool(1), "bool must be True or False"),  # type: ignore[arg-type]
    ("buffer str", lambda: Buffer("ab"), "buffer data must be bytes"),  # type: ignore[arg-type]
    ("buffer too big", lambda: Buffer(bytes(MAX_VALUE_SIZE + 1)), "at most 1048576 bytes"),
    ("ascii é", lambda: StringAscii("caf\u00e9"), "got 'é' at position 3"),
    ("ascii NUL", lambda: StringAscii("a\x00"), "string-ascii accepts printable ASCII"),
    ("ascii bytes", lambda: StringAscii(b"x"), "must be a str"),  # type: ignore[arg-type]
    ("utf8 surrogate", lambda: StringUtf8("\ud800"), "no lone surrogates"),
    ("utf8 too big", lambda: StringUtf8("\u00e9" * MAX_VALUE_SIZE), "at most 1048576 bytes"),
    ("version 32", lambda: StandardPrincipal(32, H160), "version must be an int in 0..31"),
    ("version -1", lambda: StandardPrincipal(-1, H160), "version must be an int in 0..31"),
    ("short hash160", lambda: StandardPrincipal(22, H160[:19]), "exactly 20 bytes, got 19"),
    (
        "empty name",
        lambda: ContractPrincipal(22, H160, ""),
        "contract name must be a str of 1..128",
    ),
    ("long name", lambda: ContractPrincipal(22, H160, "a" * 129), "1..128 characters"),
    ("digit name", lambda: ContractPrincipal(22, H160, "1token"), "invalid contract name"),
    ("dotted name", lambda: ContractPrincipal(22, H160, "a.b"), "invalid contract name"),
    ("name newline", lambda: ContractPrincipal(22, H160, "ab\n"), "invalid contract name"),
    ("some int", lambda: Some(5), "a some value must be a Clarity value, got int"),  # type: ignore[arg-type]
    ("ok None", lambda: ResponseOk(None), "an ok value must be a Clarity value"),  # type: ignore[arg-type]
    ("list item", lambda: List([UInt(1), 2]), "a list item must be a Clarity value"),  # type: ignore[list-item]
    ("empty key", lambda: Tuple({"": UInt(1)}), "tuple key must be a str of 1..128"),
    ("digit key", lambda: Tuple({"1a": UInt(1)}), "invalid tuple key '1a'"),
    ("space key", lambda: Tuple({"a b": UInt(1)}), "invalid tuple key"),
    ("int key", lambda: Tuple({1: UInt(1)}), "tuple key must be a str"),  # type: ignore[dict-item]
    ("pairs", lambda: Tuple([("a", UInt(1))]), "must be a mapping"),  # type: ignore[arg-type]
    ("too deep", lambda: Some(_nested_some(MAX_TYPE_DEPTH)), "nest at most 32 levels"),
    ("bad checksum", lambda: StandardPrincipal.from_address(SP2J6[:-1] + "8"), "checksum mismatch"),
    ("lower-case s", lambda: principal_from_text(SP2J6.lower()), 'upper-case "S"'),
    ("empty address", lambda: principal_from_text(""), "too short"),
    ("not 20 bytes", lambda: principal_from_text("S" + c32check_encode(22, H160[:19])), "20-byte"),
    ("no dot", lambda: ContractPrincipal.from_contract_id(SP2J6), "ADDRESS.contract-name"),
    (
        "bad contract",
        lambda: ContractPrincipal.from_contract_id(SP2J6 + ".a b"),
        "invalid contract",
    ),
    ("address int", lambda: StandardPrincipal.from_address(5), "must be a str"),  # type: ignore[arg-type]
    ("serialize int", lambda: serialize(5), "not a Clarity value: int"),  # type: ignore[arg-type]
    ("repr str", lambda: to_repr("u1"), "not a Clarity value: str"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("factory", "fragment"),
    [(factory, fragment) for _, factory, fragment in BAD_CONSTRUCTIONS],
    ids=[name for name, _, _ in BAD_CONSTRUCTIONS],
)
def test_invalid_construction_raises_clarity_value_error(
    factory: Callable[[], object], fragment: str
) -> None:
    with pytest.raises(ClarityValueError) as caught:
        factory()
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, BalancesError)
    assert isinstance(caught.value, ClarityError)


# --- value semantics ---------------------------------------------------------------


def test_tuple_equality_and_hash_ignore_insertion_order() -> None:
    first = Tuple({"b": UInt(2), "a": UInt(1), "B": NONE})
    second = Tuple({"a": UInt(1), "B": NONE, "b": UInt(2)})
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert list(first.fields) == ["B", "a", "b"]
    assert first["a"] == UInt(1)
    assert first != Tuple({"a": UInt(1), "b": UInt(2)})
    assert repr(first) == "Tuple({'B': OptionalNone(), 'a': UInt(value=1), 'b': UInt(value=2)})"


def test_tuple_does_not_follow_its_source_mapping() -> None:
    source = {"a": UInt(1)}
    value = Tuple(source)
    source["b"] = UInt(2)
    assert list(value.fields) == ["a"]
    with pytest.raises(TypeError):
        value.fields["c"] = UInt(3)  # type: ignore[index]


def test_values_are_frozen_and_typed() -> None:
    value = UInt(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.value = 2  # type: ignore[misc]
    assert UInt(1) != Int(1)
    assert Bool(True) != UInt(1)
    assert ResponseOk(UInt(1)) != ResponseErr(UInt(1))
    assert OptionalNone() == NONE
    assert hash(OptionalNone()) == hash(NONE)
    assert hash(Some(List([UInt(1)]))) == hash(Some(List((UInt(1),))))


def test_bytes_like_inputs_are_copied_to_bytes() -> None:
    data = bytearray(b"\x01\x02")
    value = Buffer(data)  # type: ignore[arg-type]
    data[0] = 9
    assert value.data == b"\x01\x02"
    assert type(value.data) is bytes
    principal = StandardPrincipal(22, memoryview(H160))  # type: ignore[arg-type]
    assert type(principal.hash160) is bytes


def test_list_behaves_like_a_sequence() -> None:
    value = List([UInt(1), UInt(2)])  # a list is stored as a tuple
    assert value.items == (UInt(1), UInt(2))
    assert len(value) == 2
    assert list(value) == [UInt(1), UInt(2)]


def test_principal_text_forms() -> None:
    principal = StandardPrincipal.from_address(SP2J6)
    assert str(principal) == SP2J6
    contract = ContractPrincipal.from_contract_id(SP2J6 + ".my-token_v2")
    assert str(contract) == SP2J6 + ".my-token_v2"
    assert contract.issuer == principal
    assert principal_from_text(str(contract)) == contract
    # Lenient input (O -> 0, lower case after S) gives the canonical address back.
    lenient = "SP1O2V8POF7JX67ARQ77WEA3D3CFB5XW39REDTOAM"
    assert str(principal_from_text(lenient)) == "SP102V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM"


def test_odd_but_valid_names_round_trip() -> None:
    keys = ["-", "+", "<", "<=", ">=", "*", "/", "=", "is-ok?", "a!", "_private", "x" * 128]
    value = Tuple({key: UInt(index) for index, key in enumerate(keys)})
    assert deserialize(serialize(value)) == value
    contract = ContractPrincipal(22, H160, "a" + "-" * 127)
    assert deserialize(to_hex(contract)) == contract


def test_deserialize_accepts_upper_case_and_prefix_forms() -> None:
    assert deserialize("0X0703") == ResponseOk(Bool(True))
    assert deserialize("0x0E0000000568656C6C6F") == StringUtf8("hello")
    assert deserialize(bytearray(b"\x03")) == Bool(True)  # type: ignore[arg-type]


# --- repr ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Int(-5), "-5"),
        (StringAscii('say "hi"\\\n\t\r\x0c'), '"say \\"hi\\"\\\\\\n\\t\\r\\u{c}"'),
        (StringUtf8("\u00e9\x00\u0085"), 'u"\u00e9\\u{0}\\u{85}"'),
        (List([Tuple({"b": NONE, "a": Some(Int(1))})]), "(list (tuple (a (some 1)) (b none)))"),
        (ContractPrincipal(22, bytes(20), "pox-4"), "SP000000000000000000002Q6VF78.pox-4"),
        (ResponseErr(Buffer(b"")), "(err 0x)"),
    ],
    ids=["negative int", "ascii escapes", "utf8 escapes", "nested", "contract", "err buffer"],
)
def test_repr(value: ClarityValue, text: str) -> None:
    assert to_repr(value) == text


# --- helpers ------------------------------------------------------------------------


def test_unwrap_ok() -> None:
    assert unwrap_ok(ResponseOk(UInt(1))) == UInt(1)
    with pytest.raises(ClarityResponseError, match=r"answered \(err u3\)") as caught:
        unwrap_ok(ResponseErr(UInt(3)))
    assert caught.value.err_value == UInt(3)
    assert isinstance(caught.value, ClarityValueError)
    with pytest.raises(ClarityValueError, match="expected a response") as not_response:
        unwrap_ok(UInt(1))
    assert not isinstance(not_response.value, ClarityResponseError)


def test_expect_helpers() -> None:
    assert expect_uint(UInt(5)) == 5
    assert expect_string(StringAscii("STX")) == "STX"
    assert expect_string(StringUtf8("\u00e9")) == "\u00e9"
    assert expect_optional(Some(UInt(1))) == UInt(1)
    assert expect_optional(NONE) is None
    with pytest.raises(ClarityValueError, match="expected a uint, got 5"):
        expect_uint(Int(5))
    with pytest.raises(ClarityValueError, match="expected a string-ascii or string-utf8"):
        expect_string(Buffer(b"STX"))
    with pytest.raises(ClarityValueError, match="expected an optional"):
        expect_optional(UInt(1))


def test_error_messages_stay_short_for_big_values() -> None:
    with pytest.raises(ClarityValueError) as caught:
        expect_uint(Buffer(bytes(10_000)))
    assert len(str(caught.value)) < 120
    assert str(caught.value).endswith("...")


OK_U123456789 = "0x0701000000000000000000000000075bcd15"


@pytest.mark.parametrize(
    "data",
    [
        OK_U123456789,
        OK_U123456789[2:],
        OK_U123456789.upper().replace("0X", "0x"),
        bytes.fromhex(OK_U123456789[2:]),
    ],
    ids=["0x hex", "bare hex", "upper-case hex", "bytes"],
)
def test_decode_ok_uint(data: bytes | str) -> None:
    assert decode_ok_uint(data) == 123_456_789


@pytest.mark.parametrize(
    ("data", "error", "fragment"),
    [
        ("0x080100000000000000000000000000000001", ClarityResponseError, "(err u1)"),
        ("0x070000000000000000000000000000000001", ClarityValueError, "expected a uint, got 1"),
        ("0x0703", ClarityValueError, "expected a uint, got true"),
        ("0x0100000000000000000000000000000001", ClarityValueError, "expected a response"),
        ("0x0701" + " " * 32, ClarityDecodeError, "invalid hex"),
        ("0x0701-" + "0" * 31, ClarityDecodeError, "invalid hex"),
        ("0x0701" + "00" * 16 + "00", ClarityDecodeError, "trailing data at byte 18"),
        ("0x0701" + "00" * 15, ClarityDecodeError, "uint needs 16 bytes, 15 left"),
        (b"\x07\x01" + bytes(15), ClarityDecodeError, "uint needs 16 bytes"),
    ],
    ids=["err", "ok int", "ok bool", "bare uint", "spaces", "sign", "trailing", "short", "bytes"],
)
def test_decode_ok_uint_errors(data: bytes | str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as caught:
        decode_ok_uint(data)
    assert fragment in str(caught.value)
