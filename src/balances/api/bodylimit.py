"""A request-body size limit, enforced before anything parses the body.

Pure ASGI middleware: a declared ``Content-Length`` over the limit is refused at
once, and a body streamed without one (chunked) is counted as it arrives and
refused as soon as it passes the limit, so a large body is never held in memory
whole. Either way the answer is 413 with the API's JSON error shape. The body that
passes is handed on as it came. Push deliveries (Chainhook, a node's observer
posts) carry whole blocks and are authenticated, so their routes have a larger
limit of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        delivery_limit: int,
        delivery_paths: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.delivery_limit = delivery_limit
        self.delivery_paths = tuple(delivery_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        delivery = path.startswith(self.delivery_paths)
        limit = self.delivery_limit if delivery else self.limit
        setting = "MAX_DELIVERY_BYTES" if delivery else "MAX_BODY_BYTES"
        declared = _content_length(scope)
        body = (
            None
            if declared is not None and declared > limit
            else await _read_within(receive, limit)
        )
        if body is None:
            await _refuse(send, limit, setting)
            return
        await self.app(scope, _replay(body, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            # A length that is not a number is refused as too large to parse.
            return int(text) if text.isascii() and text.isdigit() else 1 << 62
    return None


async def _read_within(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away: the app sees an empty rest
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards: a disconnect, as the server reports it

    return replayed


async def _refuse(send: Send, limit: int, setting: str) -> None:
    message = f"the request body is over the {limit:,}-byte limit (BALANCES_API__{setting})"
    content = orjson.dumps({"error": "request_too_large", "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": content})
