"""How user text is read, stated once so that the parsers and the published patterns
(the OpenAPI schema's ``pattern``) accept exactly the same strings.

Surrounding ASCII whitespace is ignored; nothing else is: Unicode spaces, digits
and case foldings (``²``, ``١``, the Kelvin sign) are not read as their ASCII
look-alikes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ASCII_SPACE = " \t\n\r\f\v"
#: The same set as a regular-expression class (ECMA-262 and Python alike).
_SPACE_CLASS = "[ \\t\\n\\r\\f\\v]*"


def trimmed(text: str) -> str:
    """``text`` without surrounding ASCII whitespace."""
    return text.strip(ASCII_SPACE)


def folded(text: str) -> str:
    """``text`` trimmed and lower-cased, if it is ASCII; else as it is (so that no
    non-ASCII text folds into an ASCII name)."""
    text = trimmed(text)
    return text.lower() if text.isascii() else text


def whole(pattern: str) -> str:
    """An anchored pattern for ``pattern`` with the whitespace :func:`trimmed` allows."""
    return f"^{_SPACE_CLASS}(?:{pattern}){_SPACE_CLASS}$"


def any_case(words: Iterable[str]) -> str:
    """A pattern for any of ``words`` (ASCII) in any letter case, as :func:`folded` reads."""

    def one(word: str) -> str:
        return "".join(
            f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char)
            for char in word
        )

    return "|".join(one(word) for word in sorted(set(words), key=lambda w: (-len(w), w)))
