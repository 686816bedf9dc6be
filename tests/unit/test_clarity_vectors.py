"""Our Clarity codec and c32 against clarity-vectors.json (made by the reference JS libs).

Every entry of every section runs as its own test case (see ``clarity_vectors`` in
conftest.py). Expected values are written out here by hand, independently of the
decoder, so a vector proves both directions.
"""

from __future__ import annotations

from typing import Any

import pytest

from balances.chain.c32 import (
    c32_address,
    c32_address_decode,
    c32_checksum,
    c32_decode,
    c32_encode,
    c32check_decode,
    c32check_encode,
)
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
    decode_ok_uint,
    deserialize,
    principal_from_text,
    serialize,
    to_hex,
    to_repr,
)
from balances.errors import C32Error

SP2J6 = StandardPrincipal(22, bytes.fromhex("a46ff88886c2ef9762d970b4d2c63678835bd39d"))
CHARISMA_TOKEN = ContractPrincipal(
    22, bytes.fromhex("bf584905755be35f11b96c2691fd9c3fc64f4b16"), "charisma-token"
)

EXPECTED_VALUES: dict[str, ClarityValue] = {
    "uint 0": UInt(0),
    "uint 100": UInt(100),
    "uint 1000000": UInt(1_000_000),
    "uint 2^64": UInt(2**64),
    "uint max (2^128-1)": UInt(2**128 - 1),
    "int 0": Int(0),
    "int 1": Int(1),
    "int -1": Int(-1),
    "int -100": Int(-100),
    "int min (-2^127)": Int(-(2**127)),
    "int max (2^127-1)": Int(2**127 - 1),
    "true": Bool(True),
    "false": Bool(False),
    "none": NONE,
    "some u1": Some(UInt(1)),
    "some standard principal": Some(SP2J6),
    "(ok u100)": ResponseOk(UInt(100)),
    "(err u1)": ResponseErr(UInt(1)),
    "(ok true)": ResponseOk(Bool(True)),
    "(err u2)": ResponseErr(UInt(2)),
    "(err none)": ResponseErr(NONE),
    "(ok (some u5))": ResponseOk(Some(UInt(5))),
    "buffer empty": Buffer(b""),
    "buffer deadbeef": Buffer(bytes.fromhex("deadbeef")),
    "string-ascii empty": StringAscii(""),
    "string-ascii STX": StringAscii("STX"),
    "string-utf8 ascii-only": StringUtf8("hello"),
    "string-utf8 multibyte": StringUtf8("h\u00e9llo \U0001f30d"),
    "list empty": List(()),
    "list u1 u2 u3": List((UInt(1), UInt(2), UInt(3))),
    "tuple {amount: u100, owner: SP2J6...}": Tuple({"owner": SP2J6, "amount": UInt(100)}),
    "tuple empty": Tuple({}),
    "tuple keys a-b / a_b / ab": Tuple({"ab": UInt(3), "a_b": UInt(2), "a-b": UInt(1)}),
    "SIP-010 get-balance (ok u123456789)": ResponseOk(UInt(123456789)),
    "SIP-010 get-decimals (ok u6)": ResponseOk(UInt(6)),
    'SIP-010 get-symbol (ok "CHA")': ResponseOk(StringAscii("CHA")),
    'SIP-010 get-name (ok "Charisma")': ResponseOk(StringAscii("Charisma")),
    'SIP-010 get-token-uri (ok (some u"https://example.com/token.json"))': ResponseOk(
        Some(StringUtf8("https://example.com/token.json"))
    ),
    "SIP-010 get-token-uri (ok none)": ResponseOk(NONE),
    "SIP-010 get-total-supply (ok u10000000000000000)": ResponseOk(UInt(10**16)),
    "contract principal as arg": CHARISMA_TOKEN,
}

# Non-empty tuples: stacks.js prints fields in construction order, we (like the node)
# print them in byte order, so their repr is checked against these instead.
BYTE_ORDER_REPRS = {
    "tuple {amount: u100, owner: SP2J6...}": (
        "(tuple (amount u100) (owner SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7))"
    ),
    "tuple keys a-b / a_b / ab": "(tuple (a-b u1) (a_b u2) (ab u3))",
}


def _stacks_js_order_case(vectors: dict[str, Any], hex_text: str) -> dict[str, Any] | None:
    """The tuple_key_order case with this stacks.js hex, if it differs from the node's."""
    for case in vectors["tuple_key_order"]["cases"]:
        if case["stacks_js_hex"] == hex_text and case["node_canonical_hex"] != hex_text:
            return dict(case)
    return None


# --- addresses ----------------------------------------------------------------


@pytest.mark.clarity_vectors("addresses", "address")
def test_address_encodes(vector: dict[str, Any]) -> None:
    assert c32_address(vector["version"], bytes.fromhex(vector["hash160"])) == vector["address"]


@pytest.mark.clarity_vectors("addresses", "address")
def test_address_decodes(vector: dict[str, Any]) -> None:
    version, hash160 = c32_address_decode(vector["address"])
    assert (version, hash160.hex()) == (vector["version"], vector["hash160"])


@pytest.mark.clarity_vectors("addresses", "address")
def test_address_checksum(vector: dict[str, Any]) -> None:
    checksum = c32_checksum(vector["version"], bytes.fromhex(vector["hash160"]))
    assert checksum.hex() == vector["checksum"]


@pytest.mark.clarity_vectors("addresses", "address")
def test_address_as_standard_principal(vector: dict[str, Any]) -> None:
    principal = StandardPrincipal.from_address(vector["address"])
    assert principal == StandardPrincipal(vector["version"], bytes.fromhex(vector["hash160"]))
    assert str(principal) == vector["address"]
    assert principal_from_text(vector["address"]) == principal
    if "principal_cv_hex" in vector:  # absent for the version 0 / 31 c32 edge cases
        assert serialize(principal).hex() == vector["principal_cv_hex"]
        assert deserialize(vector["principal_cv_hex"]) == principal
    assert deserialize(serialize(principal)) == principal


# --- contract principals --------------------------------------------------------


@pytest.mark.clarity_vectors("contract_principals", "contract_id")
def test_contract_principal(vector: dict[str, Any]) -> None:
    expected = ContractPrincipal(
        vector["version"], bytes.fromhex(vector["hash160"]), vector["contract_name"]
    )
    assert ContractPrincipal.from_contract_id(vector["contract_id"]) == expected
    assert principal_from_text(vector["contract_id"]) == expected
    assert str(expected) == vector["contract_id"]
    assert str(expected.issuer) == vector["address"]
    assert len(expected.name.encode("ascii")) == vector["contract_name_length"]
    assert serialize(expected).hex() == vector["principal_cv_hex"]
    assert deserialize(vector["principal_cv_hex"]) == expected


# --- values ---------------------------------------------------------------------


def test_every_value_vector_has_an_expected_value(clarity_vectors: dict[str, Any]) -> None:
    labels = [vector["label"] for vector in clarity_vectors["values"]]
    assert sorted(labels) == sorted(EXPECTED_VALUES)


@pytest.mark.clarity_vectors("values", "label")
def test_value_deserializes(vector: dict[str, Any]) -> None:
    decoded = deserialize(vector["hex"])
    assert decoded == EXPECTED_VALUES[vector["label"]]
    assert deserialize(bytes.fromhex(vector["hex"][2:])) == decoded
    assert deserialize(vector["hex"][2:]) == decoded


@pytest.mark.clarity_vectors("values", "label")
def test_value_serializes(vector: dict[str, Any], clarity_vectors: dict[str, Any]) -> None:
    value = EXPECTED_VALUES[vector["label"]]
    stacks_js_case = _stacks_js_order_case(clarity_vectors, vector["hex"])
    if stacks_js_case is None:
        assert to_hex(value) == vector["hex"]
    else:
        # This vector holds stacks.js's localeCompare key order; we write the node's.
        assert to_hex(value) == stacks_js_case["node_canonical_hex"]
        assert to_hex(value) != vector["hex"]


@pytest.mark.clarity_vectors("values", "label")
def test_value_repr(vector: dict[str, Any]) -> None:
    value = EXPECTED_VALUES[vector["label"]]
    expected = BYTE_ORDER_REPRS.get(vector["label"], vector["repr"])
    assert to_repr(value) == expected


def test_values_include_a_stacks_js_order_tuple(clarity_vectors: dict[str, Any]) -> None:
    """Guard: the special case above must really be exercised."""
    hexes = [vector["hex"] for vector in clarity_vectors["values"]]
    assert any(_stacks_js_order_case(clarity_vectors, h) for h in hexes)


# --- c32 decode edge cases, c32check and raw c32 -----------------------------------

# The JS library's error text -> a regex for ours.
C32_ERROR_FRAGMENTS = {
    'must start with "S"': 'must start with an upper-case "S"',
    "checksum mismatch": "checksum mismatch",
    "Invalid byte sequence": "invalid c32 (version )?character",
}


@pytest.mark.clarity_vectors("decode_cases", "input")
def test_decode_case(vector: dict[str, Any]) -> None:
    expected = vector["c32check_decode"]
    if expected["ok"]:
        version, hash160 = c32_address_decode(vector["input"])
        assert (version, hash160.hex()) == (expected["version"], expected["hash160"])
        canonical = StandardPrincipal.from_address(vector["input"])
        assert str(canonical) == c32_address(version, hash160)
    else:
        [fragment] = [ours for js, ours in C32_ERROR_FRAGMENTS.items() if js in expected["error"]]
        with pytest.raises(C32Error, match=fragment):
            c32_address_decode(vector["input"])
    accepted = True
    try:
        principal_from_text(vector["input"])
    except ValueError:
        accepted = False
    assert accepted == vector["stacks_js_validateStacksAddress"]


@pytest.mark.clarity_vectors("c32check_encode", "c32check")
def test_c32check_encode(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["data"])
    assert c32check_encode(vector["version"], data) == vector["c32check"]
    assert c32check_decode(vector["c32check"]) == (vector["version"], data)


@pytest.mark.clarity_vectors("c32_encode_raw", "hex")
def test_c32_encode_raw(vector: dict[str, Any]) -> None:
    assert c32_encode(bytes.fromhex(vector["hex"])) == vector["c32"]
    assert c32_decode(vector["c32"]).hex() == vector["hex"]


# --- tuple key order ----------------------------------------------------------------


def test_tuple_key_order_is_byte_order(clarity_vectors: dict[str, Any]) -> None:
    order = clarity_vectors["tuple_key_order"]
    keys = order["stacks_js_localeCompare"]
    value = Tuple({key: UInt(index) for index, key in enumerate(keys)})
    assert list(value.fields) == order["byte_order"]
    assert deserialize(serialize(value)) == value
    assert keys != order["byte_order"]  # the vectors do show a difference


@pytest.mark.clarity_vectors("tuple_key_order.cases", "value")
def test_tuple_key_order_case(vector: dict[str, Any]) -> None:
    from_stacks_js = deserialize(vector["stacks_js_hex"])
    from_node = deserialize(vector["node_canonical_hex"])
    assert from_stacks_js == from_node
    assert hash(from_stacks_js) == hash(from_node)
    assert to_hex(from_stacks_js) == vector["node_canonical_hex"]


# --- the call-read example --------------------------------------------------------


def test_call_read_example(clarity_vectors: dict[str, Any]) -> None:
    example = clarity_vectors["call_read_example"]
    body = example["request"]["body"]
    # get-balance asks about one principal: here the sender's own balance.
    [argument] = body["arguments"]
    sender = principal_from_text(body["sender"])
    assert to_hex(sender) == argument
    assert deserialize(argument) == sender
    _, _, _, _, deployer, contract, function = example["request"]["path"].split("/")
    token = ContractPrincipal.from_contract_id(f"{deployer}.{contract}")
    assert (str(token), function) == (str(CHARISMA_TOKEN), "get-balance")
    result = example["response_ok"]["result"]
    assert deserialize(result) == ResponseOk(UInt(123_456_789))
    assert decode_ok_uint(result) == 123_456_789
    assert decode_ok_uint(bytes.fromhex(result[2:])) == 123_456_789
