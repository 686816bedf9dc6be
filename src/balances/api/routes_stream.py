"""The change stream as Server-Sent Events.

- ``GET /stream/balances?addresses=A,B&tokens=T&after=N``: every balance change of
  those addresses (and tokens; none given: all) as it is applied. Each event's
  ``id:`` is its sequence number, so a reconnecting ``EventSource`` resumes with
  ``Last-Event-ID`` (or ``after=``) and loses nothing and repeats nothing.
- ``POST /stream/balances`` with ``{"addresses": [...], "tokens": [...], "after": N}``:
  the same stream, for filters too long for a URL.

Events: ``change`` and ``retraction`` (data: the entry, docs/change-feed.md), a
``heartbeat`` comment when quiet, and a last ``cutoff`` (the consumer fell too far
behind) or ``gone`` (its position is no longer in the feed: re-read the snapshot)
before the server closes the stream. A position already gone is a 410 answer.

Not in the OpenAPI schema: an operation there cannot describe an endless stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from balances.api.deps import Service
from balances.domain.feed import FeedFilter
from balances.errors import FeedUnavailableError
from balances.service.balances import BalanceService
from balances.service.stream import (
    ChangeStream,
    CutOff,
    Entries,
    Gone,
    check_position,
)

router = APIRouter(tags=["stream"])
#: Seconds a stream may block on one send before the consumer counts as gone.
SEND_TIMEOUT = 30.0


class StreamRequest(BaseModel):
    addresses: list[str] = Field(default_factory=list, max_length=100_000)
    tokens: list[str] = Field(default_factory=list, max_length=1000)
    after: int | None = Field(None, ge=0)


@router.get("/stream/balances", include_in_schema=False, name="stream_balances")
async def stream_balances(
    svc: Service,
    addresses: Annotated[str, Query(max_length=200_000)] = "",
    tokens: Annotated[str, Query(max_length=50_000)] = "",
    after: Annotated[str | None, Query(max_length=40)] = None,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> EventSourceResponse:
    position = check_position(last_event_id if last_event_id is not None else after)
    return await _open(svc, addresses.split(","), tokens.split(","), position)


@router.post("/stream/balances", include_in_schema=False)
async def stream_balances_post(
    svc: Service,
    body: StreamRequest,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> EventSourceResponse:
    position = check_position(last_event_id) if last_event_id is not None else body.after
    return await _open(svc, body.addresses, body.tokens, position)


async def _open(
    svc: BalanceService, addresses: list[str], tokens: list[str], after: int | None
) -> EventSourceResponse:
    feed = svc.feed
    settings = svc.config.feed
    if feed is None:
        raise FeedUnavailableError(
            "this service keeps no change feed (it needs the sharded layout and "
            "BALANCES_FEED__ENABLED=true)"
        )
    where = FeedFilter.checked(addresses, tokens, max_addresses=settings.max_addresses)
    stream = ChangeStream(feed, where, after)
    await stream.start()  # a position already gone is answered 410 here
    return EventSourceResponse(
        _events(stream, settings.heartbeat_seconds),
        send_timeout=SEND_TIMEOUT,
        ping=0,  # the stream's own heartbeats keep it alive: no ping task per consumer
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(stream: ChangeStream, heartbeat: float) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in stream.events(heartbeat):
            if isinstance(event, Entries):
                for entry in event.entries:
                    yield ServerSentEvent(
                        orjson.dumps(entry.to_json()).decode(),
                        event=entry.change.type,
                        id=str(entry.seq),
                    )
            elif isinstance(event, CutOff):
                data = {"reason": event.reason, "resume_after": event.resume_after}
                yield ServerSentEvent(orjson.dumps(data).decode(), event="cutoff")
            elif isinstance(event, Gone):
                data = {"message": str(event.error), "resume_after": event.error.resume_after}
                yield ServerSentEvent(orjson.dumps(data).decode(), event="gone")
            else:
                yield ServerSentEvent(comment="heartbeat")
    finally:
        stream.close()
