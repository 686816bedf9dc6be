"""Decoding serialized Clarity values; use :func:`balances.chain.clarity.deserialize`.

Untrusted bytes meet this code, so every read is bounds-checked and every
declared length is compared with the bytes that remain *before* anything is
allocated; nesting is capped at Clarity's max type depth, which also bounds the
recursion. The only exception that escapes is :class:`ClarityDecodeError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from balances.chain.clarity_values import (
    MAX_NAME_LENGTH,
    MAX_TYPE_DEPTH,
    MAX_VALUE_SIZE,
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
    check_clarity_name,
    check_contract_name,
)
from balances.errors import ClarityDecodeError, ClarityValueError

_T = TypeVar("_T")
_MIN_TUPLE_FIELD_SIZE = 3  # name length byte, a 1-byte name, a 1-byte value


def _bytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


class _Reader:
    """A cursor over the input; every read checks that the bytes are there."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining():
            raise ClarityDecodeError(
                f"unexpected end of data at byte {self.pos}: {what} needs {_bytes(size)}, "
                f"{self.remaining()} left"
            )
        start = self.pos
        self.pos = start + size
        return self.data[start : self.pos]

    def byte(self, what: str) -> int:
        position = self.pos
        if position >= len(self.data):
            self.take(1, what)  # raises with the usual message
        self.pos = position + 1
        return self.data[position]

    def count(self, what: str, unit_size: int) -> int:
        """A u32 length prefix, refused if ``count * unit_size`` bytes cannot follow."""
        start = self.pos
        count = int.from_bytes(self.take(4, f"{what} length prefix"), "big")
        if count > MAX_VALUE_SIZE:
            raise ClarityDecodeError(
                f"{what} at byte {start} declares length {count}, over Clarity's "
                f"limit of {MAX_VALUE_SIZE}"
            )
        if count * unit_size > self.remaining():
            raise ClarityDecodeError(
                f"{what} at byte {start} declares length {count}, but only "
                f"{_bytes(self.remaining())} left"
            )
        return count


def _build(start: int, factory: Callable[..., _T], *args: object) -> _T:
    """Construct or check a value; a ClarityValueError becomes a ClarityDecodeError."""
    try:
        return factory(*args)
    except ClarityValueError as error:
        raise ClarityDecodeError(f"at byte {start}: {error}") from error


def _read_ascii(reader: _Reader, size: int, what: str) -> str:
    start = reader.pos
    raw = reader.take(size, what)
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as error:
        raise ClarityDecodeError(
            f"non-ASCII byte 0x{raw[error.start]:02x} in {what} at byte {start + error.start}"
        ) from error


def _read_name(reader: _Reader, what: str, check: Callable[[str, str], str]) -> str:
    """A length-prefixed name (contract name or tuple key), validated by ``check``."""
    start = reader.pos
    size = reader.byte(f"{what} length")
    if not 1 <= size <= MAX_NAME_LENGTH:
        raise ClarityDecodeError(
            f"{what} at byte {start} has length {size}; names are 1..{MAX_NAME_LENGTH} bytes"
        )
    return _build(start, check, _read_ascii(reader, size, what), what)


def _read_int(reader: _Reader, depth: int) -> ClarityValue:
    return Int(int.from_bytes(reader.take(16, "int"), "big", signed=True))


def _read_uint(reader: _Reader, depth: int) -> ClarityValue:
    return UInt(int.from_bytes(reader.take(16, "uint"), "big"))


def _read_buffer(reader: _Reader, depth: int) -> ClarityValue:
    return Buffer(reader.take(reader.count("buffer", 1), "buffer"))


def _read_true(reader: _Reader, depth: int) -> ClarityValue:
    return Bool(True)


def _read_false(reader: _Reader, depth: int) -> ClarityValue:
    return Bool(False)


def _read_issuer(reader: _Reader) -> tuple[int, bytes]:
    body = reader.take(21, "principal (version + hash160)")
    return body[0], body[1:]


def _read_standard(reader: _Reader, depth: int) -> ClarityValue:
    start = reader.pos
    version, hash160 = _read_issuer(reader)
    return _build(start, StandardPrincipal, version, hash160)


def _read_contract(reader: _Reader, depth: int) -> ClarityValue:
    start = reader.pos
    version, hash160 = _read_issuer(reader)
    name = _read_name(reader, "contract name", check_contract_name)
    return _build(start, ContractPrincipal, version, hash160, name)


def _read_ok(reader: _Reader, depth: int) -> ClarityValue:
    return ResponseOk(_read_value(reader, depth + 1))


def _read_err(reader: _Reader, depth: int) -> ClarityValue:
    return ResponseErr(_read_value(reader, depth + 1))


def _read_none(reader: _Reader, depth: int) -> ClarityValue:
    return NONE


def _read_some(reader: _Reader, depth: int) -> ClarityValue:
    return Some(_read_value(reader, depth + 1))


def _read_list(reader: _Reader, depth: int) -> ClarityValue:
    count = reader.count("list", 1)
    return List(tuple(_read_value(reader, depth + 1) for _ in range(count)))


def _read_tuple(reader: _Reader, depth: int) -> ClarityValue:
    count = reader.count("tuple", _MIN_TUPLE_FIELD_SIZE)
    fields: dict[str, ClarityValue] = {}
    for _ in range(count):
        start = reader.pos
        name = _read_name(reader, "tuple key", check_clarity_name)
        if name in fields:
            raise ClarityDecodeError(f"duplicate tuple key {name!r} at byte {start}")
        fields[name] = _read_value(reader, depth + 1)
    return Tuple(fields)


def _read_string_ascii(reader: _Reader, depth: int) -> ClarityValue:
    start = reader.pos
    text = _read_ascii(reader, reader.count("string-ascii", 1), "string-ascii")
    return _build(start, StringAscii, text)


def _read_string_utf8(reader: _Reader, depth: int) -> ClarityValue:
    size = reader.count("string-utf8", 1)
    start = reader.pos
    raw = reader.take(size, "string-utf8")
    try:
        return StringUtf8(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ClarityDecodeError(
            f"invalid UTF-8 in string-utf8 at byte {start + error.start}: {error.reason}"
        ) from error


# Indexed by type id (SIP-005); the position is the id.
_READERS: tuple[Callable[[_Reader, int], ClarityValue], ...] = (
    _read_int,  # 0x00
    _read_uint,
    _read_buffer,
    _read_true,
    _read_false,
    _read_standard,
    _read_contract,
    _read_ok,
    _read_err,
    _read_none,
    _read_some,
    _read_list,
    _read_tuple,
    _read_string_ascii,
    _read_string_utf8,  # 0x0e
)


def _read_value(reader: _Reader, depth: int) -> ClarityValue:
    start = reader.pos
    if depth > MAX_TYPE_DEPTH:
        raise ClarityDecodeError(
            f"value at byte {start} nests deeper than Clarity's max type depth ({MAX_TYPE_DEPTH})"
        )
    type_id = reader.byte("a value's type id")
    if type_id >= len(_READERS):
        raise ClarityDecodeError(
            f"unknown Clarity type id 0x{type_id:02x} at byte {start}; "
            f"type ids are 0x00..0x{len(_READERS) - 1:02x}"
        )
    return _READERS[type_id](reader, depth)


def _to_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if not isinstance(data, str):
        raise TypeError(f"deserialize takes bytes or a hex str, not {type(data).__name__}")
    text = data[2:] if data[:2] in ("0x", "0X") else data
    try:
        raw = bytes.fromhex(text)
    except ValueError as error:
        raise ClarityDecodeError(f"invalid hex: {error}") from error
    if len(raw) * 2 != len(text):  # fromhex skips whitespace; we do not
        raise ClarityDecodeError("invalid hex: whitespace is not allowed")
    return raw


def deserialize(data: bytes | str) -> ClarityValue:
    """Decode one serialized value from bytes or hex (``0x`` optional).

    Raises :class:`ClarityDecodeError` for anything that is not exactly one
    valid value, trailing bytes included.
    """
    raw = _to_bytes(data)
    reader = _Reader(raw)
    value = _read_value(reader, 1)
    if reader.remaining():
        raise ClarityDecodeError(
            f"trailing data at byte {reader.pos}: the value ends there but "
            f"{_bytes(reader.remaining())} follow"
        )
    return value


def deserialize_at(data: bytes, offset: int) -> tuple[ClarityValue, int]:
    """Decode the value starting at ``offset`` of ``data`` (a transaction's payload
    embeds values); returns it and the offset just past it."""
    reader = _Reader(data)
    reader.pos = offset
    value = _read_value(reader, 1)
    return value, reader.pos
