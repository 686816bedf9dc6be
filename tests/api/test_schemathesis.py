"""Property-based tests of the REST API from its own OpenAPI schema (schemathesis 4.x).

Schemathesis reads ``/openapi.json`` from the app and, for every operation, sends
generated requests (valid ones and, in negative mode, invalid ones) and checks each
answer: never a 5xx, a documented status code and content type, and a body that
matches the response model declared for that status.

The app runs over a BalanceService on the seeded Stacks API stand-in (see
``service_helpers.seed``). Schemathesis drives ASGI apps from its own event-loop
thread with blocking calls, so the stand-in cannot be the loopback uvicorn of the
other API tests (that runs on pytest's loop, blocked meanwhile); the chain client
reaches the same stand-in app in process through ``httpx.ASGITransport``. Hooks
swap some generated addresses, token ids and body lists for seeded ones, and send
the API key on most requests, so successful answers (and the write routes past
their 401) are checked too, not only 400s.

Nothing is excluded: every operation in the schema is exercised (``/metrics`` and
the dashboard are not in it). The run is bounded: the coverage and fuzzing phases
(the schema has no examples), positive and negative data, ``MAX_EXAMPLES`` per
operation, derandomized, no deadline; about 15 s.

The app and schema are built when the module is imported (``schema.parametrize``
needs them at collection): schemathesis 4.32's ``pytest.from_fixture`` does not
work with pytest 9 (it sets ``Node._nodeid``, which pytest 9 renamed).
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import schemathesis
from conftest_client import FAST_RETRY
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, SPENT, Clocks, config, seed

from balances.api import create_app
from balances.blobs import MemoryBlobStore
from balances.chain.client import StacksClient
from balances.service import BalanceService
from balances.testing import FakeChain, create_fake_chain_app

API_KEY = "test-api-key"
MAX_EXAMPLES = 25
PHASES = ["examples", "coverage", "fuzzing"]
ASSET = f"{NATIVE}::charisma"
ADDRESSES = [HOLDER, OTHER, f"{OTHER}.vault", HOLDER.lower()]
TOKENS = ["stx", NATIVE, ASSET, MAP_TOKEN, SPENT, f"{OTHER}.no-such-token"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _swap(original: Any, seeded: list[Any]) -> st.SearchStrategy[Any]:
    """The generated value, or one of the seeded ones (so some calls succeed)."""
    return st.sampled_from([original, *seeded])


def _build_app() -> Any:
    chain = FakeChain()
    seed(chain)
    chain.mint("stx", f"{OTHER}.vault", 1234)
    transport = httpx.ASGITransport(app=create_fake_chain_app(chain))
    http = httpx.AsyncClient(transport=transport)
    client = StacksClient(
        http, "http://stand-in.test", requests_per_minute=math.inf, retry=FAST_RETRY
    )
    clocks = Clocks()
    service = BalanceService(
        config(map_tokens=[MAP_TOKEN], api={"key": API_KEY}),
        blobs=MemoryBlobStore(),
        chain=client,
        clock=clocks.mono,
        wall_clock=clocks.wall,
    )
    return create_app(service=service)


#: Seeded values mixed into generated path parameters and body fields.
SEEDED_PATH = {"address": ADDRESSES, "tokenId": TOKENS}
SEEDED_BODY: dict[str, list[Any]] = {
    "addresses": [[HOLDER], [HOLDER, OTHER, "x"]],
    "token_ids": [["stx"], [NATIVE, ASSET]],
    "tokens": [[MAP_TOKEN]],
}


def _mixed(values: Any, seeded: dict[str, list[Any]], kind: type) -> Any:
    """Each field of ``values`` as generated, or one of its seeded values."""
    if not isinstance(values, dict):
        return st.just(values)
    return st.fixed_dictionaries(
        {
            name: _swap(value, seeded[name])
            if name in seeded and isinstance(value, kind)
            else st.just(value)
            for name, value in values.items()
        }
    )


def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    return _mixed(path_parameters, SEEDED_PATH, str)


def flatmap_body(context: Any, body: Any) -> Any:
    return _mixed(body, SEEDED_BODY, list)


def flatmap_case(context: Any, case: Any) -> Any:
    """The case with the API key (drawn first: most requests are admitted), or as is."""

    def keyed(with_key: bool) -> Any:
        if with_key:
            case.headers = {**(case.headers or {}), "x-api-key": API_KEY}
        return case

    return st.sampled_from([True, False]).map(keyed)


def _build_schema(app: Any) -> Any:
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    schema.config.phases.update(phases=PHASES)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
    )
    for hook in (flatmap_path_parameters, flatmap_body, flatmap_case):
        schema.hook(hook)
    return schema


APP = _build_app()
schema = _build_schema(APP)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
