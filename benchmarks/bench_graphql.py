"""GraphQL bulk reads against the REST bulk route (issue 16's target).

100 addresses, each holding STX and 99 tokens (an :class:`InProcessChain`, no I/O),
are read once so every balance is in the store and the cache; then the same
100 x 100 balances are asked for, over loopback HTTP to a uvicorn server in this
process, as ``POST /balances/bulk/current`` and as the GraphQL ``balances`` query
selecting the same fields. Both answers must hold the same balances. Time as a
ratio of the best of several runs each: target GraphQL <= 1.5x REST.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from balances.api import create_app
from balances.blobs import MemoryBlobStore
from balances.domain import Principal
from balances.service.balances import BalanceService
from balances.testing import fake_address
from benchmarks.bench_ingest import _serve
from benchmarks.harness import Result
from benchmarks.service_fixtures import InProcessChain, service_config, token_contract

ADDRESSES = 100
TOKENS = 100  # STX and 99 tokens
GRAPHQL_FIELDS = (
    "address tokenId balance decimals displayBalance symbol updatedAt blockHeight "
    "source stale error metadata"
)
QUERY = f"""query($a: [String!]!, $t: [String!]) {{
  balances(addresses: $a, tokens: $t) {{
    blockHeight balances {{ {GRAPHQL_FIELDS} }} errors {{ address tokenId error message }}
  }}
}}"""


def _rest_view(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(b["address"], b["token_id"], b["balance"]) for b in answer["balances"]]


def _graphql_view(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = answer["data"]["balances"]["balances"]
    return [(b["address"], b["tokenId"], b["balance"]) for b in found]


async def _best(call: Callable[[], Awaitable[object]], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        best = min(best, time.perf_counter() - start)
    return best


async def run(quick: bool) -> list[Result]:
    runs = 3 if quick else 10
    addresses = [fake_address(f"graphql-bench-{i}", "mainnet") for i in range(ADDRESSES)]
    tokens = ["stx", *(token_contract(i) for i in range(TOKENS - 1))]
    chain = InProcessChain(TOKENS - 1)
    config = service_config(api={"max_bulk_items": ADDRESSES * TOKENS})  # default 1,000
    service = BalanceService(config, blobs=MemoryBlobStore(), chain=chain)
    try:
        await service.syncer.refresh_many([Principal.parse(a) for a in addresses])
        app = create_app(service=service, scheduler=False, ingest=False)
        async with _serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as api:

            async def rest() -> dict[str, Any]:
                answer = await api.post(
                    "/balances/bulk/current", json={"addresses": addresses, "tokenIds": tokens}
                )
                answer.raise_for_status()
                return dict(answer.json())

            async def graphql() -> dict[str, Any]:
                body = {"query": QUERY, "variables": {"a": addresses, "t": tokens}}
                answer = await api.post("/graphql", json=body)
                answer.raise_for_status()
                return dict(answer.json())

            rest_answer, graphql_answer = await rest(), await graphql()
            if "errors" in graphql_answer:
                raise RuntimeError(f"the GraphQL query failed: {graphql_answer['errors']}")
            if _rest_view(rest_answer) != _graphql_view(graphql_answer):
                raise RuntimeError("GraphQL and REST answered different balances")
            if len(rest_answer["balances"]) != ADDRESSES * TOKENS:
                raise RuntimeError(f"expected {ADDRESSES * TOKENS} balances")
            reads = chain.calls
            rest_seconds = await _best(rest, runs)
            graphql_seconds = await _best(graphql, runs)
            if chain.calls != reads:
                raise RuntimeError("a timed read went to the chain")
    finally:
        await service.close()
    note = f"{ADDRESSES} addresses x {TOKENS} tokens, best of {runs}, same answer"
    return [
        Result(
            "GraphQL bulk vs REST bulk",
            graphql_seconds * 1e3,
            "ms",
            baseline=rest_seconds * 1e3,
            baseline_name="POST /balances/bulk/current",
            target=1.5,
            note=note,
        )
    ]
