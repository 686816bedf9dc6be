"""Principal parsing: canonical forms, leniency, and clear errors."""

from __future__ import annotations

import pytest

from balances.chain.clarity_values import ContractPrincipal
from balances.domain import Principal
from balances.errors import BalancesError, InvalidAddressError

ALICE = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
ALICE_HASH = bytes.fromhex("a46ff88886c2ef9762d970b4d2c63678835bd39d")


def test_standard_principal_exposes_its_parts() -> None:
    principal = Principal.parse(ALICE)
    assert principal.version == 22
    assert principal.hash160 == ALICE_HASH
    assert principal.contract_name is None
    assert principal.network == "mainnet"
    assert not principal.is_contract
    assert str(principal) == ALICE


def test_contract_principal_keeps_its_name() -> None:
    principal = Principal.parse(f"{ALICE}.charisma-token-subnet-v1")
    assert principal.contract_name == "charisma-token-subnet-v1"
    assert principal.is_contract
    assert principal.address == ALICE
    assert principal.standard == Principal.parse(ALICE)
    assert str(principal) == f"{ALICE}.charisma-token-subnet-v1"


@pytest.mark.parametrize(
    ("text", "network", "multisig"),
    [
        ("SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7", "mainnet", False),
        ("SM2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKQVX8X0G", "mainnet", True),
        ("ST2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKQYAC0RQ", "testnet", False),
        ("SN2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKP6D2ZK9", "testnet", True),
    ],
)
def test_network_and_kind_follow_the_version(text: str, network: str, multisig: bool) -> None:
    principal = Principal.parse(text)
    assert principal.network == network
    assert principal.is_multisig is multisig


@pytest.mark.parametrize(
    "text",
    [
        "Sp102v8p0f7jx67arq77wea3d3cfb5xw39redt0am",  # lower case after the S
        "SP1O2V8POF7JX67ARQ77WEA3D3CFB5XW39REDTOAM",  # O for 0
        "SPL02V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM",  # L for 1
        "  SP102V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM\n",  # pasted with whitespace
    ],
)
def test_lenient_input_normalises_to_the_canonical_form(text: str) -> None:
    assert str(Principal.parse(text)) == "SP102V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM"


def test_equal_principals_are_equal_and_hash_alike() -> None:
    lenient = Principal.parse("SP1O2V8POF7JX67ARQ77WEA3D3CFB5XW39REDTOAM")
    canonical = Principal.parse("SP102V8P0F7JX67ARQ77WEA3D3CFB5XW39REDT0AM")
    assert lenient == canonical
    assert len({lenient, canonical}) == 1


def test_shortest_and_longest_addresses_parse() -> None:
    assert str(Principal.parse("SM0000000000000000000062QV6X")) == "SM0000000000000000000062QV6X"
    longest = "SP3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZW9P3P0G"
    assert len(longest) == 41
    assert Principal.parse(longest).hash160 == b"\xff" * 20


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty address"),
        ("SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ8", "checksum mismatch"),
        ("SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ", "checksum mismatch"),
        ("XP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7", 'start with an upper-case "S"'),
        ("sp2j6zy48gv1ez5v2v5rb9mp66sw86pykknrv9ej7", 'start with an upper-case "S"'),
        ("SU2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7", "invalid c32 version character"),
        ("SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EU7", "invalid c32 character 'U'"),
        ("S0000000000000000000002AA028H", "not a Stacks network version"),
        ("SZ3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZXE11ZC0", "not a Stacks network version"),
        ("SP03KS41ND", "Stacks addresses have 28 to 41"),
        ("SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7X" * 2, "Stacks addresses have 28 to 41"),
        (f"{ALICE}.", "contract principals look like ADDR.name"),
        (f"{ALICE}.9lives", "invalid contract name"),
        (f"{ALICE}.has space", "invalid contract name"),
        (f"{ALICE}.{'a' * 129}", "invalid contract name"),
        (f"{ALICE}.a.b", "invalid contract name"),
    ],
)
def test_bad_principals_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidAddressError, match=fragment) as caught:
        Principal.parse(text)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, BalancesError)


def test_non_text_is_rejected() -> None:
    with pytest.raises(InvalidAddressError, match="must be text"):
        Principal.parse(42)  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidAddressError, match="20-byte hash160"):
        Principal(22, b"\x00" * 19)
    with pytest.raises(InvalidAddressError, match="not a Stacks network version"):
        Principal(0, b"\x00" * 20)


def test_principals_are_immutable() -> None:
    principal = Principal.parse(ALICE)
    with pytest.raises(AttributeError):
        principal.version = 26  # type: ignore[misc]


def test_contract_names_of_up_to_128_characters_are_accepted_as_the_node_does() -> None:
    legacy = "a" * 128
    principal = Principal.parse(f"{ALICE}.{legacy}")
    assert principal.contract_name == legacy
    assert str(ContractPrincipal.from_contract_id(f" {ALICE}.{legacy} ")) == str(principal)
    assert str(Principal.parse(f" {ALICE}.{legacy} ")) == str(principal)  # same space rule
