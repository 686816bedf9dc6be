"""The error tree: one root, validation errors are ValueErrors, and the docstring is true."""

from __future__ import annotations

import inspect
import re

import pytest

from balances import errors

ERROR_CLASSES = [
    value
    for value in vars(errors).values()
    if inspect.isclass(value)
    and issubclass(value, Exception)
    and value.__module__ == errors.__name__
]


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_the_one_root(error_class: type[Exception]) -> None:
    assert issubclass(error_class, errors.BalancesError)


@pytest.mark.parametrize(
    "error_class",
    [
        errors.InvalidAddressError,
        errors.InvalidTokenIdError,
        errors.InvalidAmountError,
        errors.InvalidPeriodError,
        errors.InvalidGranularityError,
        errors.InvalidBlobKeyError,
        errors.C32Error,
        errors.ClarityDecodeError,
        errors.ClarityValueError,
        errors.ConfigError,
    ],
)
def test_validation_errors_are_value_errors(error_class: type[Exception]) -> None:
    assert issubclass(error_class, ValueError)


def test_the_docstring_draws_every_class_under_its_real_parent() -> None:
    doc = errors.__doc__ or ""
    drawn: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*(?:[│ ]\s*)*)(?:[├└]── )?([A-Z]\w+Error)\b", line)
        if not match:
            continue
        depth = len(match.group(1)) + (4 if "──" in line else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            drawn[match.group(2)] = stack[-1][1]
        stack.append((depth, match.group(2)))
    assert set(drawn) | {"BalancesError"} == {cls.__name__ for cls in ERROR_CLASSES}
    for name, parent in drawn.items():
        assert getattr(errors, parent) in getattr(errors, name).__bases__, name


def test_errors_carry_their_details() -> None:
    limited = errors.RateLimitedError("slow down", retry_after=2.5)
    assert limited.retry_after == 2.5
    failed = errors.ContractCallError("call failed", cause="NotReadOnly")
    assert failed.cause == "NotReadOnly"
    assert isinstance(errors.BlobNotFoundError("k"), errors.NotFoundError)
    assert isinstance(errors.ContractNotFoundError("c"), errors.NotFoundError)
