"""The Clarity value codec (SIP-005): the public entry point.

- :func:`serialize` / :func:`to_hex` write the node's consensus bytes; tuples go out
  in byte order of their keys, as the node's ``BTreeMap`` does (stacks.js uses
  ``localeCompare`` order, which differs for mixed case and ``-``/``_``).
- :func:`deserialize` reads raw bytes or hex (``0x`` optional) and accepts tuple
  keys in any order, as the node does. Anything else raises
  :class:`~balances.errors.ClarityDecodeError` saying where and what was expected.
- :func:`to_repr` gives Clarity's text form as stacks.js's ``cvToString`` prints it
  (``u1``, ``(ok u1)``, ``(tuple (a u1))``), with keys in byte order.
- :func:`decode_ok_uint` is the fast path for ``get-balance`` results.

The value classes live in :mod:`balances.chain.clarity_values` and are re-exported
here; the decoder lives in :mod:`balances.chain.clarity_decode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from balances.chain.clarity_decode import deserialize
from balances.chain.clarity_values import (
    MAX_TYPE_DEPTH,
    MAX_VALUE_SIZE,
    NONE,
    Bool,
    Buffer,
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
    check_clarity_name,
    check_contract_name,
    principal_from_text,
)
from balances.errors import ClarityValueError

__all__ = [
    "MAX_TYPE_DEPTH",
    "MAX_VALUE_SIZE",
    "NONE",
    "Bool",
    "Buffer",
    "ClarityResponseError",
    "ClarityValue",
    "ContractPrincipal",
    "Int",
    "List",
    "OptionalNone",
    "ResponseErr",
    "ResponseOk",
    "Some",
    "StandardPrincipal",
    "StringAscii",
    "StringUtf8",
    "Tuple",
    "UInt",
    "check_clarity_name",
    "check_contract_name",
    "decode_ok_uint",
    "deserialize",
    "expect_optional",
    "expect_string",
    "expect_uint",
    "principal_from_text",
    "serialize",
    "to_hex",
    "to_repr",
    "unwrap_ok",
]


class ClarityResponseError(ClarityValueError):
    """``unwrap_ok`` met ``(err ...)``; ``err_value`` is the value inside the err."""

    def __init__(self, message: str, err_value: ClarityValue) -> None:
        super().__init__(message)
        self.err_value = err_value


# --- serialize ---------------------------------------------------------------


def _length(size: int) -> bytes:
    return size.to_bytes(4, "big")


def _write_uint(value: UInt, out: bytearray) -> None:
    out += b"\x01" + value.value.to_bytes(16, "big")


def _write_int(value: Int, out: bytearray) -> None:
    out += b"\x00" + value.value.to_bytes(16, "big", signed=True)


def _write_bool(value: Bool, out: bytearray) -> None:
    out += b"\x03" if value.value else b"\x04"


def _write_buffer(value: Buffer, out: bytearray) -> None:
    out += b"\x02" + _length(len(value.data)) + value.data


def _write_standard(value: StandardPrincipal, out: bytearray) -> None:
    out += bytes((0x05, value.version)) + value.hash160


def _write_contract(value: ContractPrincipal, out: bytearray) -> None:
    name = value.name.encode("ascii")
    out += bytes((0x06, value.version)) + value.hash160 + bytes((len(name),)) + name


def _write_ok(value: ResponseOk, out: bytearray) -> None:
    out += b"\x07"
    _write(value.value, out)


def _write_err(value: ResponseErr, out: bytearray) -> None:
    out += b"\x08"
    _write(value.value, out)


def _write_none(value: OptionalNone, out: bytearray) -> None:
    out += b"\x09"


def _write_some(value: Some, out: bytearray) -> None:
    out += b"\x0a"
    _write(value.value, out)


def _write_list(value: List, out: bytearray) -> None:
    out += b"\x0b" + _length(len(value.items))
    for item in value.items:
        _write(item, out)


def _write_tuple(value: Tuple, out: bytearray) -> None:
    out += b"\x0c" + _length(len(value.fields))
    for name, item in value.fields.items():  # already in byte order
        out += bytes((len(name),)) + name.encode("ascii")
        _write(item, out)


def _write_ascii(value: StringAscii, out: bytearray) -> None:
    out += b"\x0d" + _length(len(value.text)) + value.text.encode("ascii")


def _write_utf8(value: StringUtf8, out: bytearray) -> None:
    data = value.text.encode("utf-8")
    out += b"\x0e" + _length(len(data)) + data


_WRITERS: dict[type, Callable[[Any, bytearray], None]] = {
    UInt: _write_uint,
    Int: _write_int,
    Bool: _write_bool,
    Buffer: _write_buffer,
    StandardPrincipal: _write_standard,
    ContractPrincipal: _write_contract,
    ResponseOk: _write_ok,
    ResponseErr: _write_err,
    OptionalNone: _write_none,
    Some: _write_some,
    List: _write_list,
    Tuple: _write_tuple,
    StringAscii: _write_ascii,
    StringUtf8: _write_utf8,
}


def _write(value: ClarityValue, out: bytearray) -> None:
    writer = _WRITERS.get(type(value))
    if writer is None:
        raise ClarityValueError(f"not a Clarity value: {type(value).__name__}")
    writer(value, out)


def serialize(value: ClarityValue) -> bytes:
    """The consensus serialization of ``value`` (tuple keys in byte order)."""
    out = bytearray()
    _write(value, out)
    return bytes(out)


def to_hex(value: ClarityValue) -> str:
    """``0x`` + hex of :func:`serialize`, the form call-read arguments take."""
    return "0x" + serialize(value).hex()


# --- repr --------------------------------------------------------------------

# Quote and backslash are escaped as Clarity literals do; control characters as
# ``\u{hex}`` so the text stays on one line and unambiguous.
_QUOTE_TABLE: dict[int, str] = {
    code: f"\\u{{{code:x}}}" for code in (*range(0x20), *range(0x7F, 0xA0))
} | {ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"}


def _quote(text: str) -> str:
    return '"' + text.translate(_QUOTE_TABLE) + '"'


def _repr_list(value: List) -> str:
    return "(list " + " ".join(to_repr(item) for item in value.items) + ")"


def _repr_tuple(value: Tuple) -> str:
    fields = " ".join(f"({name} {to_repr(item)})" for name, item in value.fields.items())
    return "(tuple " + fields + ")"


_REPRS: dict[type, Callable[[Any], str]] = {
    UInt: lambda value: f"u{value.value}",
    Int: lambda value: str(value.value),
    Bool: lambda value: "true" if value.value else "false",
    Buffer: lambda value: "0x" + value.data.hex(),
    StandardPrincipal: str,
    ContractPrincipal: str,
    ResponseOk: lambda value: f"(ok {to_repr(value.value)})",
    ResponseErr: lambda value: f"(err {to_repr(value.value)})",
    OptionalNone: lambda value: "none",
    Some: lambda value: f"(some {to_repr(value.value)})",
    List: _repr_list,
    Tuple: _repr_tuple,
    StringAscii: lambda value: _quote(value.text),
    StringUtf8: lambda value: "u" + _quote(value.text),
}


def to_repr(value: ClarityValue) -> str:
    """Clarity's text form: ``u100``, ``(ok (some u"uri"))``, ``(tuple (a u1))``."""
    render = _REPRS.get(type(value))
    if render is None:
        raise ClarityValueError(f"not a Clarity value: {type(value).__name__}")
    return render(value)


# --- helpers for contract calls ---------------------------------------------


def _describe(value: object, limit: int = 80) -> str:
    """A short text for error messages: the repr, cut to ``limit``."""
    render = _REPRS.get(type(value))
    if render is None:
        return type(value).__name__
    text = render(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unwrap_ok(value: ClarityValue) -> ClarityValue:
    """The value inside ``(ok ...)``; raise for ``(err ...)`` and non-responses."""
    if isinstance(value, ResponseOk):
        return value.value
    if isinstance(value, ResponseErr):
        raise ClarityResponseError(
            f"the contract answered {_describe(value)}", err_value=value.value
        )
    raise ClarityValueError(f"expected a response (ok ...)/(err ...), got {_describe(value)}")


def expect_uint(value: ClarityValue) -> int:
    """The int inside a ``uint``."""
    if isinstance(value, UInt):
        return value.value
    raise ClarityValueError(f"expected a uint, got {_describe(value)}")


def expect_string(value: ClarityValue) -> str:
    """The text of a ``string-ascii`` or ``string-utf8``."""
    if isinstance(value, StringAscii | StringUtf8):
        return value.text
    raise ClarityValueError(f"expected a string-ascii or string-utf8, got {_describe(value)}")


def expect_optional(value: ClarityValue) -> ClarityValue | None:
    """The value inside ``(some ...)``, or None for ``none``."""
    if isinstance(value, Some):
        return value.value
    if isinstance(value, OptionalNone):
        return None
    raise ClarityValueError(f"expected an optional (some ...)/none, got {_describe(value)}")


_OK_UINT_HEX_LENGTH = 38  # "0x" + 07 01 + 16 bytes


def decode_ok_uint(data: bytes | str) -> int:
    """The uint in an ``(ok uint)`` result, e.g. from ``get-balance``.

    The 18-byte shape is checked directly; anything else goes through
    :func:`deserialize` so errors (and ``(err ...)`` answers) stay clear.
    """
    if isinstance(data, str):
        if len(data) == _OK_UINT_HEX_LENGTH and data.startswith("0x0701"):
            try:
                raw = bytes.fromhex(data[6:])
            except ValueError:
                raw = b""
            if len(raw) == 16:  # fromhex skips whitespace: make sure none was there
                return int.from_bytes(raw, "big")
    elif len(data) == 18 and data[:2] == b"\x07\x01":
        return int.from_bytes(data[2:], "big")
    return expect_uint(unwrap_ok(deserialize(data)))
