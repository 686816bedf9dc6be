"""``/stream/balances`` over loopback: a service ingesting the stand-in's blocks,
its REST API served by uvicorn, read with an SSE client (httpx-sse)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from ingest_rig import POPULATION, Rig, rig_on, serve_api

from balances.config import FeedConfig
from balances.domain.feed import ChangeDraft, FeedEntry, FeedFilter
from balances.service.balances import BalanceService
from balances.stores.feed import ChangeFeed
from balances.testing import FakeChain, FakeChainServer

WATCHED = POPULATION[:10]
DATA_EVENTS = ("change", "retraction", "cutoff", "gone")


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    async with rig_on(fake_chain, fake_chain_server) as built:
        yield built


def feed_of(service: BalanceService) -> ChangeFeed:
    assert service.feed is not None
    return service.feed


async def feed_entries(feed: ChangeFeed, after: int, where: FeedFilter) -> list[FeedEntry]:
    found: list[FeedEntry] = []
    while True:
        page = await feed.read_after(after, 500)
        found += [e for e in page.entries if where.matches(e)]
        if not page.stopped:
            return found
        after = page.end or after


class Reader:
    """An SSE consumer in a task: collects data events until told to stop."""

    def __init__(self, client: httpx.AsyncClient, **request: Any) -> None:
        self.events: list[ServerSentEvent] = []
        self.connected = asyncio.Event()
        self.status: int | None = None
        self._task = asyncio.create_task(self._run(client, request))

    async def _run(self, client: httpx.AsyncClient, request: dict[str, Any]) -> None:
        method = "POST" if "json" in request else "GET"
        async with aconnect_sse(client, method, "/stream/balances", **request) as source:
            self.status = source.response.status_code
            self.connected.set()
            async for event in source.aiter_sse():
                if event.event in DATA_EVENTS:
                    self.events.append(event)

    async def until(self, count: int, seconds: float = 20.0) -> list[ServerSentEvent]:
        async with asyncio.timeout(seconds):
            while len(self.events) < count and not self._task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        return self.events

    async def close(self) -> None:
        """Drop the connection (or, when the server ended the stream, check it ended
        cleanly)."""
        if self._task.done():
            self._task.result()
            return
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def seqs(events: Sequence[ServerSentEvent]) -> list[int]:
    return [int(event.id) for event in events if event.event in ("change", "retraction")]


async def connected(client: httpx.AsyncClient, **request: Any) -> Reader:
    reader = Reader(client, **request)
    async with asyncio.timeout(10):
        await reader.connected.wait()
    return reader


async def test_a_resumed_stream_loses_nothing_and_repeats_nothing(rig: Rig) -> None:
    feed = feed_of(rig.service)
    where = FeedFilter.of(WATCHED)
    mark = feed.last_seq
    params = {"addresses": ",".join(WATCHED), "after": str(mark)}
    async with serve_api(rig.service) as client:
        first = await connected(client, params=params)
        await rig.produce(3)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, where)
        assert len(expected) >= 2, "three blocks moved the watched addresses"
        half = len(expected) // 2
        got = (await first.until(half))[:half]
        await first.close()  # the connection drops mid-stream
        await rig.produce(3)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, where)
        resumed = await connected(
            client, params={"addresses": params["addresses"]}, headers={"Last-Event-ID": got[-1].id}
        )
        rest = await resumed.until(len(expected) - half)
        await resumed.close()
    assert seqs([*got, *rest]) == [e.seq for e in expected]
    bodies = [orjson.loads(event.data) for event in [*got, *rest]]
    assert bodies == [e.to_json() for e in expected]
    assert {body["address"] for body in bodies} <= set(WATCHED)


async def test_a_reorg_reaches_the_stream_as_retractions_in_feed_order(rig: Rig) -> None:
    feed = feed_of(rig.service)
    await rig.produce(4)
    await rig.ingestion.run_once()
    mark = feed.last_seq
    async with serve_api(rig.service) as client:
        reader = await connected(client, params={"after": str(mark)})
        rig.chain.reorg(3, seed=5)
        await rig.produce(1)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, FeedFilter())
        events = (await reader.until(len(expected)))[: len(expected)]
        await reader.close()
    assert [e.event for e in events] == [e.change.type for e in expected]
    assert "retraction" in [e.event for e in events]
    assert seqs(events) == [e.seq for e in expected]


async def test_a_token_filter_streams_only_that_token(rig: Rig) -> None:
    feed = feed_of(rig.service)
    mark = feed.last_seq
    async with serve_api(rig.service) as client:
        reader = await connected(client, params={"tokens": "stx", "after": str(mark)})
        await rig.produce(2)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, FeedFilter.of(tokens=["stx"]))
        events = (await reader.until(len(expected)))[: len(expected)]
        await reader.close()
    assert expected
    assert {orjson.loads(e.data)["token"] for e in events} == {"stx"}
    assert seqs(events) == [e.seq for e in expected]


def draft(amount: int) -> ChangeDraft:
    return ChangeDraft("change", WATCHED[0], "stx", "stx", 0, amount, 1, "0x1", "test", 1.0)


async def test_a_slow_consumer_is_cut_off_with_a_last_event(rig: Rig) -> None:
    feed = feed_of(rig.service)
    feed.hub.queue_limit = 2
    async with serve_api(rig.service) as client:
        reader = await connected(client, params={"addresses": WATCHED[0]})
        feed.emit([draft(n) for n in range(1, 6)])  # five at once: more than it may queue
        events = await reader.until(1)
        await reader.close()
    assert events[-1].event == "cutoff"
    body = orjson.loads(events[-1].data)
    assert "slow consumer" in body["reason"]
    assert isinstance(body["resume_after"], int)
    assert len(feed.hub) == 0  # its queue is gone with it


async def test_an_idle_stream_gets_heartbeats(rig: Rig) -> None:
    rig.service.config = rig.service.config.model_copy(
        update={"feed": FeedConfig(heartbeat_seconds=0.05)}
    )
    beats = 0
    async with (
        serve_api(rig.service) as client,
        client.stream("GET", "/stream/balances", params={"addresses": WATCHED[0]}) as response,
        asyncio.timeout(10),
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            beats += line == ": heartbeat"  # a comment: EventSource ignores it
            if beats == 2:
                break
    assert beats == 2


async def test_a_replica_that_does_not_ingest_streams_from_the_durable_feed(rig: Rig) -> None:
    feed = feed_of(rig.service)
    mark = feed.last_seq
    replica = BalanceService(rig.service.config, blobs=rig.service.backend, chain=rig.service.chain)
    try:
        assert not feed_of(replica).writing
        async with serve_api(replica) as client:
            reader = await connected(client, params={"after": str(mark)})
            await rig.produce(2)
            await rig.ingestion.run_once()
            await rig.ingestion.ingestor.flush()  # durable: the replica polls the blobs
            expected = await feed_entries(feed, mark, FeedFilter())
            events = (await reader.until(len(expected)))[: len(expected)]
            await reader.close()
    finally:
        await replica.close()
    assert seqs(events) == [e.seq for e in expected]


async def test_bad_filters_and_positions_are_refused_with_a_message(rig: Rig) -> None:
    async with serve_api(rig.service) as client:
        bad = await client.get("/stream/balances", params={"addresses": "SP-not-an-address"})
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_address"
        many = [POPULATION[i % len(POPULATION)] for i in range(10_000)]
        huge = await client.post("/stream/balances", json={"addresses": many})
        assert huge.status_code == 413
        assert "at most 1000" in huge.json()["message"]
        token = await client.get("/stream/balances", params={"tokens": "not a token"})
        assert token.status_code == 400
        position = await client.get("/stream/balances", headers={"Last-Event-ID": "12abc"})
        assert position.status_code == 400
        assert "sequence number" in position.json()["message"]


async def test_a_position_past_retention_is_410_gone_with_where_to_resume(rig: Rig) -> None:
    feed = feed_of(rig.service)
    await rig.produce(2)
    await rig.ingestion.run_once()
    await rig.ingestion.ingestor.flush()
    await rig.produce(2)
    await rig.ingestion.run_once()
    await rig.ingestion.ingestor.flush()
    assert await feed.reader.prune(older_than=10**12) >= 1  # every segment but the newest
    async with serve_api(rig.service) as client:
        gone = await client.get("/stream/balances", params={"after": "0"})
    assert gone.status_code == 410
    body = gone.json()
    assert body["error"] == "feed_gone"
    assert "re-read the snapshot" in body["message"]
    assert body["resume_after"] >= 1
