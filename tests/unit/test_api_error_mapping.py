"""What the chain refusing a request made from the caller's input becomes: a 400,
never a 502 (and so no traceback in the log, which is kept for 5xx)."""

from __future__ import annotations

import pytest

from balances.api.errors import describe
from balances.errors import ChainRejectedError, ContractCallError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            ChainRejectedError("GET /v2/accounts rejected the request (400): bad tip"),
            "chain_rejected_request",
        ),
        (
            ContractCallError("get-balance failed", cause="NoSuchPublicFunction"),
            "token_call_failed",
        ),
    ],
    ids=["api 4xx", "contract call"],
)
def test_a_chain_refusing_what_the_input_asked_is_400(error: Exception, code: str) -> None:
    status, found, message = describe(error)
    assert (status, found) == (400, code)
    assert message == str(error)
