"""Property tests for the Clarity codec: round trips, determinism, fuzzing."""

from __future__ import annotations

import contextlib
import copy
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balances.chain.clarity import (
    NONE,
    Bool,
    Buffer,
    ClarityValue,
    ContractPrincipal,
    Int,
    List,
    ResponseErr,
    ResponseOk,
    Some,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    Tuple,
    UInt,
    deserialize,
    serialize,
    to_hex,
    to_repr,
)
from balances.errors import ClarityDecodeError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every character string-ascii accepts.
ASCII_ALPHABET = "".join(chr(code) for code in range(0x20, 0x7F)) + "\t\n\x0c\r"

clarity_names = st.one_of(
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_!?+<>=/*-]{0,12}", fullmatch=True),
    st.sampled_from(["-", "+", "=", "/", "*", "<", ">", "<=", ">="]),
)
contract_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,40}", fullmatch=True)
versions = st.integers(0, 31)
hash160s = st.binary(min_size=20, max_size=20)

leaves: st.SearchStrategy[ClarityValue] = st.one_of(
    st.integers(0, 2**128 - 1).map(UInt),
    st.integers(-(2**127), 2**127 - 1).map(Int),
    st.booleans().map(Bool),
    st.binary(max_size=24).map(Buffer),
    st.builds(StandardPrincipal, versions, hash160s),
    st.builds(ContractPrincipal, versions, hash160s, contract_names),
    st.just(NONE),
    st.text(ASCII_ALPHABET, max_size=16).map(StringAscii),
    st.text(max_size=16).map(StringUtf8),
)


def _extend(children: st.SearchStrategy[ClarityValue]) -> st.SearchStrategy[ClarityValue]:
    return st.one_of(
        children.map(ResponseOk),
        children.map(ResponseErr),
        children.map(Some),
        st.lists(children, max_size=4).map(List),
        st.dictionaries(clarity_names, children, max_size=4).map(Tuple),
    )


clarity_values = st.recursive(leaves, _extend, max_leaves=12)


@FAST
@given(clarity_values)
def test_round_trip_through_bytes_and_hex(value: ClarityValue) -> None:
    assert deserialize(serialize(value)) == value
    assert deserialize(to_hex(value)) == value
    assert isinstance(to_repr(value), str)


@FAST
@given(clarity_values)
def test_values_pickle_and_copy(value: ClarityValue) -> None:
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value
    assert hash(copy.copy(value)) == hash(value)


@FAST
@given(clarity_values)
def test_serialize_is_deterministic(value: ClarityValue) -> None:
    assert serialize(value) == serialize(value)
    assert to_hex(value) == "0x" + serialize(value).hex()


@FAST
@given(st.dictionaries(clarity_names, leaves, min_size=1, max_size=8), st.data())
def test_serialize_ignores_tuple_insertion_order(
    fields: dict[str, ClarityValue], data: st.DataObject
) -> None:
    keys = data.draw(st.permutations(list(fields)))
    shuffled = Tuple({key: fields[key] for key in keys})
    original = Tuple(fields)
    assert shuffled == original
    assert serialize(shuffled) == serialize(original)
    assert list(deserialize(serialize(shuffled)).fields) == sorted(fields)  # type: ignore[union-attr]


def _decodes_or_raises_clarity_error(data: bytes) -> None:
    try:
        value = deserialize(data)
    except ClarityDecodeError:
        return
    # Not always ``serialize(value) == data``: tuple keys may come in any order.
    assert deserialize(serialize(value)) == value


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_clarity_decode_error(data: bytes) -> None:
    _decodes_or_raises_clarity_error(data)


@FAST
@given(clarity_values, st.data())
def test_mutated_serializations_decode_or_raise(value: ClarityValue, data: st.DataObject) -> None:
    encoded = bytearray(serialize(value))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    _decodes_or_raises_clarity_error(bytes(encoded))


@FAST
@given(st.text(max_size=40))
def test_arbitrary_text_decodes_or_raises(text: str) -> None:
    with contextlib.suppress(ClarityDecodeError):
        deserialize(text)


@FAST
@given(clarity_values)
def test_every_truncation_raises(value: ClarityValue) -> None:
    encoded = serialize(value)
    for cut in range(len(encoded)):
        with pytest.raises(ClarityDecodeError):
            deserialize(encoded[:cut])
