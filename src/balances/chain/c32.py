"""c32 and c32check: the base-32 text encoding of Stacks addresses.

Pure functions, bit-compatible with the reference ``c32check`` JS library:

- ``c32_encode`` writes bytes as a big base-32 number; every leading zero byte
  becomes one leading ``0`` character (``00`` -> ``0``, ``0001ff`` -> ``0FZ``).
- Decoding is as lenient as the reference: lower case is accepted, ``O`` reads as
  ``0`` and ``I``/``L`` as ``1``. Re-encoding the decoded bytes gives the canonical
  (upper-case) text, which is what we store.
- An address is ``"S" + c32(version) + c32(payload || checksum)``, where the checksum
  is the first 4 bytes of ``sha256(sha256(version_byte || payload))``. The leading
  ``S`` must be upper case, as in the reference.
"""

from __future__ import annotations

import hashlib

from balances.errors import C32Error, quoted

C32_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DIGIT = {char: value for value, char in enumerate(C32_ALPHABET)}
_LENIENT = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CHECKSUM_LENGTH = 4


def c32_normalize(text: str) -> str:
    """Upper-case ``text`` and map the look-alikes ``O``->``0`` and ``I``/``L``->``1``.

    ASCII only: ``str.upper`` would turn some other letters into ASCII ones
    (dotless ``ı`` -> ``I``, ``ſ`` -> ``S``)."""
    if not text.isascii():
        raise C32Error(f"c32 text is ASCII; {quoted(text)} is not")
    return text.upper().translate(_LENIENT)


def c32_encode(data: bytes) -> str:
    """Encode ``data`` as c32 text (no checksum)."""
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 32)
        digits.append(C32_ALPHABET[remainder])
    return "0" * leading_zeros + "".join(reversed(digits))


def c32_decode(text: str) -> bytes:
    """Decode c32 text (leniently, see the module docstring) into bytes."""
    normalized = c32_normalize(text)
    number = 0
    for position, char in enumerate(normalized):
        digit = _DIGIT.get(char)
        if digit is None:
            raise C32Error(
                f"invalid c32 character {char!r} at position {position}; "
                f"c32 uses only {C32_ALPHABET}"
            )
        number = number * 32 + digit
    leading_zeros = len(normalized) - len(normalized.lstrip("0"))
    return b"\x00" * leading_zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def c32_checksum(version: int, payload: bytes) -> bytes:
    """The 4-byte c32check checksum of ``version || payload``."""
    digest = hashlib.sha256(hashlib.sha256(bytes([version]) + payload).digest()).digest()
    return digest[:_CHECKSUM_LENGTH]


def _check_version(version: int) -> None:
    if not 0 <= version < 32:
        raise C32Error(f"c32check version must be 0..31 (one c32 character), got {version}")


def c32check_encode(version: int, payload: bytes) -> str:
    """``c32(version) + c32(payload || checksum)``."""
    _check_version(version)
    return C32_ALPHABET[version] + c32_encode(payload + c32_checksum(version, payload))


def c32check_decode(text: str) -> tuple[int, bytes]:
    """Split c32check text into ``(version, payload)``, verifying the checksum."""
    if len(text) < 2:
        raise C32Error(f"c32check text is too short: {text!r}")
    normalized = c32_normalize(text)
    version = _DIGIT.get(normalized[0])
    if version is None:
        raise C32Error(f"invalid c32 version character {text[0]!r}; c32 uses only {C32_ALPHABET}")
    data = c32_decode(normalized[1:])
    if len(data) < _CHECKSUM_LENGTH:
        raise C32Error("c32check text is too short to hold a checksum")
    payload, checksum = data[:-_CHECKSUM_LENGTH], data[-_CHECKSUM_LENGTH:]
    if c32_checksum(version, payload) != checksum:
        raise C32Error("checksum mismatch: the text was mistyped or truncated")
    return version, payload


def c32_address(version: int, hash160: bytes) -> str:
    """The Stacks address text for ``version`` and a 20-byte ``hash160``."""
    return "S" + c32check_encode(version, hash160)


def c32_address_decode(address: str) -> tuple[int, bytes]:
    """``(version, payload)`` of an address; the payload length is not checked here."""
    if len(address) <= 5:
        raise C32Error(f"address is too short ({len(address)} characters): {address!r}")
    if not address.startswith("S"):
        raise C32Error(f'addresses must start with an upper-case "S", got {address[:1]!r}')
    return c32check_decode(address[1:])
