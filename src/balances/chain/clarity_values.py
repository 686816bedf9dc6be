"""Clarity values (SIP-005): immutable classes that can only hold what Clarity can.

Every constructor validates, so a value that exists here can be serialized and the
node would accept it. The limits follow stacks-core's ``clarity-types``:

- buffers and strings hold at most ``MAX_VALUE_SIZE`` (1 MiB) bytes;
- string-ascii allows letters, digits, punctuation, space and ``\\t \\n \\x0c \\r``;
- contract names match ``[a-zA-Z][a-zA-Z0-9_-]*``, 1..128 bytes (new deployments
  stop at 40, but values may carry older names up to 128);
- tuple keys are Clarity names (1..128 bytes); values nest at most
  ``MAX_TYPE_DEPTH`` (32) levels deep, counting the value itself.

Import these from :mod:`balances.chain.clarity`, which re-exports them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import get_args

from balances.chain.c32 import c32_address, c32_address_decode
from balances.domain.text import trimmed
from balances.errors import C32Error, ClarityValueError, quoted

MAX_VALUE_SIZE = 1024 * 1024
MAX_TYPE_DEPTH = 32
MAX_NAME_LENGTH = 128
HASH160_LENGTH = 20
UINT_LIMIT = 1 << 128
INT_MIN = -(1 << 127)
INT_LIMIT = 1 << 127

_CONTRACT_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")
# Current stacks-core also accepts a leading "_" (Clarity 6); so do we, for decoding.
_CLARITY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_!?+<>=/*-]*|[-+=/*]|[<>]=?")
# What stacks-core accepts in string-ascii: alphanumeric, punctuation, whitespace.
_ASCII_BAD = re.compile(r"[^\x20-\x7e\t\n\x0c\r]")


def check_contract_name(name: object, what: str = "contract name") -> str:
    """Return ``name`` if it is a valid contract name, else raise ClarityValueError."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ClarityValueError(
            f"{what} must be a str of 1..{MAX_NAME_LENGTH} characters, got {name!r}"
        )
    if not _CONTRACT_NAME.fullmatch(name):
        raise ClarityValueError(f"invalid {what} {name!r}: a letter, then letters, digits, - or _")
    return name


def check_clarity_name(name: object, what: str = "Clarity name") -> str:
    """Return ``name`` if it is a valid Clarity name (tuple key, function ...), else raise."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ClarityValueError(
            f"{what} must be a str of 1..{MAX_NAME_LENGTH} characters, got {name!r}"
        )
    if not _CLARITY_NAME.fullmatch(name):
        raise ClarityValueError(
            f"invalid {what} {name!r}: a letter or '_', then letters, digits or "
            "-_!?+<>=/*; or one of - + = / * < > <= >="
        )
    return name


def _check_int(value: object, kind: str, low: int, limit: int, bounds: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ClarityValueError(f"{kind} must be an int in {bounds}, got {value!r}")
    if not low <= value < limit:
        raise ClarityValueError(f"{kind} must be in {bounds}, got {value}")


def _check_size(kind: str, size: int) -> None:
    if size > MAX_VALUE_SIZE:
        raise ClarityValueError(
            f"{kind} must be at most {MAX_VALUE_SIZE} bytes (Clarity's limit), got {size}"
        )


def _as_bytes(data: object, kind: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ClarityValueError(f"{kind} must be bytes, got {type(data).__name__}")
    return bytes(data)


def _check_issuer(version: object, hash160: object) -> bytes:
    """Validate a principal's version and hash160; return the hash160 as bytes."""
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 32:
        raise ClarityValueError(
            f"principal version must be an int in 0..31 (one c32 character), got {version!r}"
        )
    raw = _as_bytes(hash160, "hash160")
    if len(raw) != HASH160_LENGTH:
        raise ClarityValueError(f"hash160 must be exactly 20 bytes, got {len(raw)}")
    return raw


def _decode_address(text: object) -> tuple[int, bytes]:
    if not isinstance(text, str):
        raise ClarityValueError(f"an address must be a str, got {type(text).__name__}")
    try:
        version, payload = c32_address_decode(text)
    except C32Error as error:
        raise ClarityValueError(f"invalid Stacks address {text!r}: {error}") from error
    if len(payload) != HASH160_LENGTH:
        raise ClarityValueError(
            f"invalid Stacks address {text!r}: it holds {len(payload)} bytes, not a 20-byte hash160"
        )
    return version, payload


def _check_value(value: object, where: str) -> int:
    """Validate a nested value; return its depth."""
    if isinstance(value, _CONTAINERS):
        return value._depth
    if isinstance(value, CLARITY_TYPES):
        return 1
    raise ClarityValueError(f"{where} must be a Clarity value, got {type(value).__name__}")


def _limit_depth(depth: int) -> int:
    if depth > MAX_TYPE_DEPTH:
        raise ClarityValueError(
            f"values nest at most {MAX_TYPE_DEPTH} levels deep (Clarity's max type depth), "
            f"this one nests {depth}"
        )
    return depth


def _wrapper_depth(child: object, where: str) -> int:
    """Depth of ok/err/some around ``child`` (the common case, kept cheap)."""
    return _limit_depth(1 + _check_value(child, where))


def _nested_depth(children: Iterable[object], where: str) -> int:
    return _limit_depth(1 + max((_check_value(child, where) for child in children), default=0))


# --- atoms -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UInt:
    """``uint``: an unsigned 128-bit integer."""

    value: int

    def __post_init__(self) -> None:
        _check_int(self.value, "uint", 0, UINT_LIMIT, "0..2**128-1")


@dataclass(frozen=True, slots=True)
class Int:
    """``int``: a signed 128-bit integer."""

    value: int

    def __post_init__(self) -> None:
        _check_int(self.value, "int", INT_MIN, INT_LIMIT, "-2**127..2**127-1")


@dataclass(frozen=True, slots=True)
class Bool:
    """``bool``."""

    value: bool

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool):
            raise ClarityValueError(f"bool must be True or False, got {self.value!r}")


@dataclass(frozen=True, slots=True)
class Buffer:
    """``(buff n)``: raw bytes (bytearray and memoryview are copied to bytes)."""

    data: bytes

    def __post_init__(self) -> None:
        raw = _as_bytes(self.data, "buffer data")
        _check_size("a buffer", len(raw))
        object.__setattr__(self, "data", raw)


@dataclass(frozen=True, slots=True)
class StringAscii:
    """``(string-ascii n)``."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ClarityValueError(f"string-ascii must be a str, got {type(self.text).__name__}")
        bad = _ASCII_BAD.search(self.text)
        if bad:
            raise ClarityValueError(
                "string-ascii accepts printable ASCII, tab, newline, form feed and carriage "
                f"return; got {bad.group()!r} at position {bad.start()}"
            )
        _check_size("a string-ascii", len(self.text))


@dataclass(frozen=True, slots=True)
class StringUtf8:
    """``(string-utf8 n)``; its serialized length counts UTF-8 bytes."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ClarityValueError(f"string-utf8 must be a str, got {type(self.text).__name__}")
        try:
            size = len(self.text.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise ClarityValueError(
                f"string-utf8 must be encodable as UTF-8 (no lone surrogates): {error}"
            ) from error
        _check_size("a string-utf8", size)


@dataclass(frozen=True, slots=True)
class StandardPrincipal:
    """A standard principal; ``str()`` gives its c32check address."""

    version: int
    hash160: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash160", _check_issuer(self.version, self.hash160))

    @classmethod
    def from_address(cls, text: str) -> StandardPrincipal:
        """Parse an address (leniently, as c32check does); ``str()`` is canonical."""
        version, hash160 = _decode_address(text)
        return cls(version, hash160)

    def __str__(self) -> str:
        return c32_address(self.version, self.hash160)


@dataclass(frozen=True, slots=True)
class ContractPrincipal:
    """A contract principal; ``str()`` gives ``ADDRESS.name``."""

    version: int
    hash160: bytes
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash160", _check_issuer(self.version, self.hash160))
        check_contract_name(self.name)

    @classmethod
    def from_contract_id(cls, text: str) -> ContractPrincipal:
        """Parse ``ADDRESS.contract-name``."""
        if not isinstance(text, str) or "." not in text:
            raise ClarityValueError(f"a contract id is ADDRESS.contract-name, got {quoted(text)}")
        address, name = trimmed(text).split(".", 1)  # as Principal.parse
        version, hash160 = _decode_address(address)
        return cls(version, hash160, check_contract_name(name))

    @property
    def issuer(self) -> StandardPrincipal:
        """The deployer."""
        return StandardPrincipal(self.version, self.hash160)

    def __str__(self) -> str:
        return f"{c32_address(self.version, self.hash160)}.{self.name}"


@dataclass(frozen=True, slots=True)
class OptionalNone:
    """``none``; all instances are equal, and :data:`NONE` is the usual one."""


NONE = OptionalNone()


# --- containers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseOk:
    """``(ok value)``."""

    value: ClarityValue
    _depth: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_depth", _wrapper_depth(self.value, "an ok value"))


@dataclass(frozen=True, slots=True)
class ResponseErr:
    """``(err value)``."""

    value: ClarityValue
    _depth: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_depth", _wrapper_depth(self.value, "an err value"))


@dataclass(frozen=True, slots=True)
class Some:
    """``(some value)``."""

    value: ClarityValue
    _depth: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_depth", _wrapper_depth(self.value, "a some value"))


@dataclass(frozen=True, slots=True)
class List:
    """``(list ...)``; any iterable of values is stored as a tuple.

    Clarity lists are homogeneous; that is a type-checker rule, not a codec one,
    so it is not enforced here (the node's decoder does not enforce it either).
    """

    items: tuple[ClarityValue, ...]
    _depth: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = tuple(self.items)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "_depth", _nested_depth(items, "a list item"))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ClarityValue]:
        return iter(self.items)


@dataclass(frozen=True, slots=True)
class Tuple:
    """``(tuple (key value) ...)``: a read-only mapping kept in byte order of its keys.

    Byte order is the node's (BTreeMap) order, so iteration, ``to_repr`` and
    serialization agree with it; equality and hash ignore construction order.
    """

    fields: Mapping[str, ClarityValue]
    _depth: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.fields, Mapping):
            raise ClarityValueError(
                f"tuple fields must be a mapping of name -> value, got {type(self.fields).__name__}"
            )
        names = sorted(check_clarity_name(key, "tuple key") for key in self.fields)
        ordered = {name: self.fields[name] for name in names}
        object.__setattr__(self, "fields", MappingProxyType(ordered))
        object.__setattr__(self, "_depth", _nested_depth(ordered.values(), "a tuple value"))

    def __hash__(self) -> int:
        return hash(tuple(self.fields.items()))

    def __repr__(self) -> str:
        return f"Tuple({dict(self.fields)!r})"

    def __reduce__(self) -> tuple[type[Tuple], tuple[dict[str, ClarityValue]]]:
        return Tuple, (dict(self.fields),)  # a mappingproxy cannot be pickled or copied

    def __getitem__(self, key: str) -> ClarityValue:
        return self.fields[key]


ClarityValue = (
    UInt
    | Int
    | Bool
    | Buffer
    | StandardPrincipal
    | ContractPrincipal
    | ResponseOk
    | ResponseErr
    | OptionalNone
    | Some
    | List
    | Tuple
    | StringAscii
    | StringUtf8
)
CLARITY_TYPES: tuple[type, ...] = get_args(ClarityValue)
_CONTAINERS = (ResponseOk, ResponseErr, Some, List, Tuple)


def principal_from_text(text: str) -> StandardPrincipal | ContractPrincipal:
    """Parse ``ADDRESS`` or ``ADDRESS.contract-name``."""
    if isinstance(text, str) and "." in text:
        return ContractPrincipal.from_contract_id(text)
    return StandardPrincipal.from_address(text)
