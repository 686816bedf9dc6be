"""Stacks principals: standard addresses and contract principals."""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field
from typing import Literal

from balances.chain.c32 import c32_address, c32_address_decode
from balances.domain.text import trimmed, whole
from balances.errors import C32Error, InvalidAddressError, quoted

Network = Literal["mainnet", "testnet"]

#: c32check version -> (network, kind). Anything else is not a Stacks address.
ADDRESS_VERSIONS: dict[int, tuple[Network, str]] = {
    22: ("mainnet", "single-sig"),  # SP...
    20: ("mainnet", "multi-sig"),  # SM...
    26: ("testnet", "single-sig"),  # ST...
    21: ("testnet", "multi-sig"),  # SN...
}
HASH160_LENGTH = 20
# A 20-byte hash160 encodes to 28..41 characters (leading zero bytes become '0's).
ADDRESS_MIN_LENGTH, ADDRESS_MAX_LENGTH = 28, 41
#: Up to 128 characters, as the node accepts (new contracts have at most 40; older
#: ones up to 128, and they can hold tokens too).
CONTRACT_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]{0,127}")
_CONTRACT_NAME_RULE = "a letter, then up to 127 letters, digits, '-' or '_'"

# The text Principal.parse can accept, as regular expressions (they are the OpenAPI
# schema's patterns; the parser checks more: the version and the checksum). An
# upper-case S, a version character (M, N, P or T, in any case), then 26 to 39 c32
# characters in any case, with the look-alikes O, I and L.
_ADDRESS_SYNTAX = "S[MNPTmnpt][0-9A-TV-Za-tv-z]{26,39}"
CONTRACT_ID_SYNTAX = f"{_ADDRESS_SYNTAX}\\.{CONTRACT_NAME_RE.pattern}"
ADDRESS_PATTERN = whole(_ADDRESS_SYNTAX)
CONTRACT_ID_PATTERN = whole(CONTRACT_ID_SYNTAX)
PRINCIPAL_PATTERN = whole(f"{CONTRACT_ID_SYNTAX}|{_ADDRESS_SYNTAX}")


def validate_contract_name(name: str) -> str:
    """Return ``name`` if it is a valid Clarity contract name, else raise."""
    if not CONTRACT_NAME_RE.fullmatch(name):
        raise InvalidAddressError(
            f"invalid contract name {quoted(name)}: contract names are {_CONTRACT_NAME_RULE}"
        )
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    """A standard principal (``SP...``) or a contract principal (``SP....name``).

    Parse user text with :meth:`parse`; ``str()`` is the canonical form and the
    storage key. Parsing is as lenient as the reference ``c32check`` library: lower
    case after the leading ``S``, ``O`` for ``0`` and ``I``/``L`` for ``1`` are
    accepted and normalised; surrounding ASCII whitespace is ignored. Only the four
    Stacks address versions are accepted.
    """

    version: int
    hash160: bytes
    contract_name: str | None = None
    # The canonical text, computed once: c32check encoding (two SHA-256) is far too
    # slow to redo on every str(), and principals key every map in the service.
    _address: str = field(init=False, repr=False, compare=False)
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.version not in ADDRESS_VERSIONS:
            raise InvalidAddressError(
                f"address version {self.version} is not a Stacks network version; "
                "accepted: 22 (SP), 20 (SM) on mainnet, 26 (ST), 21 (SN) on testnet"
            )
        if len(self.hash160) != HASH160_LENGTH:
            raise InvalidAddressError(
                f"an address holds a 20-byte hash160, got {len(self.hash160)} bytes"
            )
        if self.contract_name is not None:
            validate_contract_name(self.contract_name)
        address = c32_address(self.version, self.hash160)
        text = address if self.contract_name is None else f"{address}.{self.contract_name}"
        object.__setattr__(self, "_address", sys.intern(address))
        object.__setattr__(self, "_text", sys.intern(text))

    @classmethod
    def parse(cls, text: str) -> Principal:
        """Parse ``ADDR`` or ``ADDR.contract-name`` (results are memoised: decoding
        checks a double SHA-256 checksum, and the same addresses come back all day)."""
        if cls is Principal and isinstance(text, str):
            return _parse_principal(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Principal:
        if not isinstance(text, str):
            raise InvalidAddressError(f"an address must be text, got {type(text).__name__}")
        stripped = trimmed(text)
        if not stripped:
            raise InvalidAddressError("empty address; expected a Stacks address like SP2J6Z...")
        address, dot, name = stripped.partition(".")
        if dot and not name:
            raise InvalidAddressError(
                f"{quoted(text)} ends with '.': contract principals look like ADDR.name"
            )
        version, hash160 = _decode_address(address)
        return cls(version, hash160, name if dot else None)

    @property
    def address(self) -> str:
        """The standard-principal part (``SP...``), also for contract principals."""
        return self._address

    @property
    def network(self) -> Network:
        return ADDRESS_VERSIONS[self.version][0]

    @property
    def is_contract(self) -> bool:
        return self.contract_name is not None

    @property
    def is_multisig(self) -> bool:
        return ADDRESS_VERSIONS[self.version][1] == "multi-sig"

    @property
    def standard(self) -> Principal:
        """This principal without its contract name."""
        return Principal(self.version, self.hash160)

    def __str__(self) -> str:
        return self._text


def _decode_address(address: str) -> tuple[int, bytes]:
    if not ADDRESS_MIN_LENGTH <= len(address) <= ADDRESS_MAX_LENGTH:
        raise InvalidAddressError(
            f"{quoted(address)} has {len(address):,} characters; Stacks addresses have 28 to 41"
        )
    try:
        version, payload = c32_address_decode(address)
    except C32Error as error:
        raise InvalidAddressError(f"invalid Stacks address {quoted(address)}: {error}") from error
    if len(payload) != HASH160_LENGTH:
        raise InvalidAddressError(
            f"invalid Stacks address {quoted(address)}: it encodes {len(payload)} bytes, not 20"
        )
    return version, payload


@functools.lru_cache(maxsize=65_536)
def _parse_principal(text: str) -> Principal:
    return Principal._parse(text)
