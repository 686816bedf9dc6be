"""Every request's path through the stand-in: count, delay, fault, route, ETag, malform.

Order: the request counter (always, faulted requests included) -> latency -> rate
limit / forced 429 -> 5xx -> deprecation (410) or ``v3_missing`` (404) -> ETag
(304) -> the route -> malformed body -> headers (``Warning``, ``ratelimit-*``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from balances.testing.fake_chain.faults import DEPRECATION_WARNING, MalformedKind, Verdict
from balances.testing.fake_chain.http import Ctx, HttpError, Reply, api_error, path_principal

if TYPE_CHECKING:
    from balances.testing.fake_chain.ledger import FakeChain

Handler = Callable[[Ctx], Reply]
Endpoint = Callable[[Request], Awaitable[Response]]

GONE_MESSAGE = (
    "This endpoint has been disabled. See https://docs.hiro.so/stacks/api for its replacement."
)
#: Keys a client cannot do without, dropped first to fake "a 200 missing a field".
_ESSENTIAL_KEYS = (
    "balance",
    "results",
    "result",
    "okay",
    "chain_tip",
    "stacks_tip_height",
    "height",
    "functions",
    "stx",
)
_HTML_BODY = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: its template (the request-counter key) and which faults apply to it."""

    method: str
    template: str
    handler: Handler
    deprecated: bool = False  # v1/v2 balance routes: Warning header or 410
    v3_balance: bool = False  # answers 404 while ``v3_missing`` is set
    etag: bool = False  # keyed by the ``principal`` path parameter

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def starlette_path(self) -> str:
        # Asset names may contain "/", so an identifier as last segment takes the rest.
        for name in ("asset_identifier", "token"):
            if self.template.endswith("{" + name + "}"):
                return self.template[: -len(name) - 1] + name + ":path}"
        return self.template


def make_endpoint(chain: FakeChain, spec: RouteSpec) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await handle(chain, spec, request)

    return endpoint


async def handle(chain: FakeChain, spec: RouteSpec, request: Request) -> Response:
    chain.requests[spec.key] += 1
    chain.api_keys[request.headers.get("x-api-key", "")] += 1
    faults = chain.faults
    faulty = faults.applies_to(spec.template)
    if faulty and faults.latency > 0:
        await asyncio.sleep(faults.latency)
    verdict = faults.admit() if faulty else Verdict(None, {})
    if verdict.status is not None:
        reply = _fault_reply(verdict.status)
    else:
        ctx = Ctx(chain, request.path_params, request.query_params, request.headers, b"")
        if spec.method == "POST":
            ctx = Ctx(chain, ctx.params, ctx.query, ctx.headers, await request.body())
        reply = _route(chain, spec, ctx)
    spoilable = faulty and reply.status == 200 and reply.text is None
    spoil = faults.draw_malformed() if spoilable else None
    response = _render(reply, spoil)
    _decorate(response, spec, verdict, chain.faults.deprecated)
    return response


def _route(chain: FakeChain, spec: RouteSpec, ctx: Ctx) -> Reply:
    try:
        if spec.deprecated and chain.faults.deprecated == "gone":
            return Reply(410, {"error": "Gone", "message": GONE_MESSAGE})
        if spec.v3_balance and chain.faults.v3_missing:
            raise api_error(404, "Not Found", f"Route {spec.method}:{spec.template} not found")
        tag = _etag(chain, spec, ctx)
        if tag is not None and _matches(ctx.headers.get("if-none-match"), tag):
            return Reply(304, headers={"etag": tag})
        reply = spec.handler(ctx)
        if tag is not None and reply.status == 200:
            reply.headers["etag"] = tag
        return reply
    except HttpError as error:
        return error.reply


def _etag(chain: FakeChain, spec: RouteSpec, ctx: Ctx) -> str | None:
    if not (spec.etag and chain.faults.etags):
        return None
    try:
        principal = path_principal(ctx)
    except HttpError:
        return None  # the route answers 400 itself
    return f'"{chain.state_tag(principal)}"'


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or tag in candidates


def _fault_reply(status: int) -> Reply:
    if status == 429:
        return Reply(429, {"error": "Too Many Requests", "message": "Rate limit exceeded"})
    if status == 503:
        return Reply(503, {"error": "The database service is unavailable"})
    return Reply(status, text=f"{status} error from the fake chain's upstream")


def _render(reply: Reply, malformed: MalformedKind | None) -> Response:
    if reply.status == 304:
        return Response(status_code=304, headers=reply.headers)
    if reply.text is not None:
        return Response(reply.text, reply.status, reply.headers, media_type="text/plain")
    if malformed is not None:
        return _malformed(reply, malformed)
    body = orjson.dumps(reply.body)
    return Response(body, reply.status, reply.headers, media_type="application/json")


def _malformed(reply: Reply, kind: MalformedKind) -> Response:
    if kind == "html":
        return Response(_HTML_BODY, 200, reply.headers, media_type="text/html")
    if kind == "missing_field" and isinstance(reply.body, dict) and reply.body:
        body: dict[str, Any] = dict(reply.body)
        victim = next((key for key in _ESSENTIAL_KEYS if key in body), next(iter(body)))
        del body[victim]
        return Response(orjson.dumps(body), 200, reply.headers, media_type="application/json")
    whole = orjson.dumps(reply.body)
    return Response(
        whole[: max(1, len(whole) // 2)], 200, reply.headers, media_type="application/json"
    )


def _decorate(response: Response, spec: RouteSpec, verdict: Verdict, deprecation: str) -> None:
    for name, value in verdict.headers.items():
        response.headers[name] = value
    if spec.deprecated and deprecation == "warn":
        response.headers["warning"] = DEPRECATION_WARNING


def not_found_endpoint(chain: FakeChain) -> Endpoint:
    """Unknown paths: counted as ``"<METHOD> <unmatched>"``, answered like Fastify."""

    async def endpoint(request: Request) -> Response:
        chain.requests[f"{request.method} <unmatched>"] += 1
        body = {
            "error": "Not Found",
            "message": f"Route {request.method}:{request.url.path} not found",
            "statusCode": 404,
        }
        return Response(orjson.dumps(body), 404, media_type="application/json")

    return endpoint
