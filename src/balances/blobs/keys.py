"""Blob keys: one validation shared by every backend, and a safe key builder.

A key is a ``/``-separated path such as ``balances/SP2J6.../current.json``. The
rules exist so that a hostile principal or token string can neither escape a
store's root (a local directory, a bucket prefix) nor make two different keys
land on the same object:

- 1 to :data:`MAX_KEY_BYTES` bytes of UTF-8 (Vercel pathnames stop at 950
  characters; S3 keys at 1024 bytes; UTF-8 bytes >= UTF-16 units, so one bound
  covers both);
- no leading ``/`` (absolute), no empty segment (``//`` or a trailing ``/``);
- no segment that starts with ``.`` (this rejects ``.`` and ``..`` and keeps the
  dot namespace free for a backend's own temp and lock files);
- segments of at most :data:`MAX_SEGMENT_BYTES` bytes (file-name limits);
- no backslash, no control or surrogate characters, and the text must be in
  Unicode NFC, so file systems that normalise names cannot merge two keys.

:func:`blob_key` builds keys from untrusted parts by percent-escaping each part,
which is injective: different tuples of parts always give different keys.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

from balances.errors import InvalidBlobKeyError

MAX_KEY_BYTES = 950
MAX_SEGMENT_BYTES = 200
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs"})
# Characters kept as they are in escaped parts besides ASCII letters, digits and
# "_.-~" (always kept by quote). ":" keeps token ids such as "SP1.token::asset" legible.
_PART_SAFE = ":"


def _fail(text: str, reason: str) -> InvalidBlobKeyError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return InvalidBlobKeyError(f"invalid blob key {shown!r}: {reason}")


def _check_characters(text: str) -> None:
    if "\\" in text:
        raise _fail(text, "backslashes are not allowed")
    for char in text:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise _fail(text, f"control or surrogate character U+{ord(char):04X} is not allowed")
    if not unicodedata.is_normalized("NFC", text):
        raise _fail(text, "text must be in Unicode NFC form")
    if len(text.encode("utf-8")) > MAX_KEY_BYTES:
        raise _fail(text, f"longer than {MAX_KEY_BYTES} bytes of UTF-8")


def _check_segments(text: str, segments: list[str]) -> None:
    for segment in segments:
        if not segment:
            raise _fail(text, "empty path segment ('//', leading or trailing '/')")
        if segment.startswith("."):
            raise _fail(text, "a path segment may not start with '.'")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _fail(text, f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid blob key, else raise :class:`InvalidBlobKeyError`."""
    if not isinstance(key, str):
        raise InvalidBlobKeyError(f"a blob key must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidBlobKeyError("a blob key may not be empty")
    _check_characters(key)
    _check_segments(key, key.split("/"))
    return key


def validate_prefix(prefix: object) -> str:
    """Validate a listing prefix: ``""``, a key, or a key followed by ``/``.

    The last segment may be partial (``balances/SP1`` matches ``balances/SP12/x``).
    """
    if not isinstance(prefix, str):
        raise InvalidBlobKeyError(f"a blob prefix must be a str, not {type(prefix).__name__}")
    if not prefix:
        return prefix
    _check_characters(prefix)
    body = prefix[:-1] if prefix.endswith("/") else prefix
    _check_segments(prefix, body.split("/"))
    return prefix


def escape_key_part(part: str) -> str:
    """Percent-escape one untrusted part so it is a single safe segment.

    ``/``, ``%``, ``\\``, control characters and non-ASCII text are escaped, and so
    is a leading ``.``; the result is ASCII and :func:`unescape_key_part` undoes it.
    """
    if not isinstance(part, str):
        raise InvalidBlobKeyError(f"a key part must be a str, not {type(part).__name__}")
    if not part:
        raise InvalidBlobKeyError("a key part may not be empty")
    escaped = quote(part, safe=_PART_SAFE)
    if escaped.startswith("."):
        escaped = "%2E" + escaped[1:]
    return escaped


def unescape_key_part(segment: str) -> str:
    """Inverse of :func:`escape_key_part`."""
    return unquote(segment, errors="strict")


def blob_key(*parts: str) -> str:
    """Join untrusted parts into one valid key, escaping each part.

    ``blob_key("balances", "../etc", "a/b")`` is ``"balances/%2E.%2Fetc/a%2Fb"``:
    no part can add a segment or climb out.
    """
    if not parts:
        raise InvalidBlobKeyError("blob_key needs at least one part")
    return validate_key("/".join(escape_key_part(part) for part in parts))


def blob_key_parts(key: str) -> list[str]:
    """Split a key made by :func:`blob_key` back into its original parts."""
    return [unescape_key_part(segment) for segment in validate_key(key).split("/")]
