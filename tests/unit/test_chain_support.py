"""Helpers (no tests) for the client unit tests: a scripted API on ``httpx.MockTransport``.

The integration tests talk to the real stand-in over loopback; these unit tests
script exact answers (cursor loops, mistyped fields, HTTP-date retry-after) that a
well-behaved server never sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from balances.chain.client import StacksClient
from balances.chain.retry import RetryPolicy

HOLDER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"
TOKEN = f"{DEPLOYER}.charisma-token"
ASSET = f"{TOKEN}::charisma"
BASE = "http://api.test"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Time moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedApi:
    """Answers by ``(method, path)``; a list of answers is consumed in order, the last repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.calls: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"error": "Not Found", "message": request.url.path})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def paths(self) -> list[str]:
        return [call.url.path for call in self.calls]


def json_answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def make_client(
    api: ScriptedApi, clock: FakeClock | None = None, *, attempts: int = 3, **options: Any
) -> StacksClient:
    clock = clock or FakeClock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(api.handle))
    options.setdefault("requests_per_minute", float("inf"))
    return StacksClient(
        http,
        BASE,
        retry=RetryPolicy(attempts=attempts, base_delay=0.1, max_delay=1.0, max_retry_after=30),
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 1.0,
        **options,
    )


def stx_body(balance: str = "1000") -> dict[str, Any]:
    return {"balance": balance, "available": balance, "locked": None, "mempool": None}


def v3_page(results: list[tuple[str, str]], next_cursor: str | None) -> dict[str, Any]:
    return {
        "total": len(results),
        "limit": 200,
        "cursor": {"next": next_cursor, "previous": None, "current": None},
        "results": [{"asset_identifier": a, "balance": b} for a, b in results],
    }
