"""The ``balanceChanged`` GraphQL subscription over graphql-transport-ws, on loopback:
a service ingesting the stand-in's blocks, served by uvicorn, read with a WebSocket
client (``websockets``) speaking the protocol by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import websockets
from ingest_rig import POPULATION, Rig, rig_on, serve_api
from test_change_stream import feed_entries, feed_of

from balances.domain.feed import FeedFilter
from balances.testing import FakeChain, FakeChainServer

WATCHED = POPULATION[:10]
SUBSCRIPTION = """subscription($a: [String!]!, $t: [String!], $after: Seq) {
    balanceChanged(addresses: $a, tokens: $t, after: $after) {
        seq type address tokenId previous amount delta blockHeight blockHash retracts
    } }"""


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    async with rig_on(fake_chain, fake_chain_server) as built:
        yield built


class Subscriber:
    """One graphql-transport-ws connection with one subscription."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket

    @classmethod
    async def open(cls, url: str, variables: dict[str, Any]) -> Subscriber:
        socket = await websockets.connect(
            url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        )
        subscriber = cls(socket)
        await subscriber.send({"type": "connection_init", "payload": {}})
        assert (await subscriber.receive())["type"] == "connection_ack"
        await subscriber.send(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": variables},
            }
        )
        return subscriber

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(orjson.dumps(message).decode())

    async def receive(self, seconds: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            while True:
                message: dict[str, Any] = orjson.loads(await self.socket.recv())
                if message["type"] == "ping":
                    await self.send({"type": "pong"})
                    continue
                return message

    async def changes(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < count:
            message = await self.receive()
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            found.append(message["payload"]["data"]["balanceChanged"])
        return found

    async def close(self) -> None:
        await self.socket.close()


def _ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/graphql"


def _wire(entry: Any) -> dict[str, Any]:
    data = entry.to_json()
    return {
        "seq": data["seq"],
        "type": data["type"].upper(),
        "address": data["address"],
        "tokenId": data["token"],
        "previous": data["previous"],
        "amount": data["amount"],
        "delta": data["delta"],
        "blockHeight": data["block_height"],
        "blockHash": data["block_hash"],
        "retracts": data["retracts"],
    }


async def test_a_subscription_receives_the_changes_made_on_the_stand_in(rig: Rig) -> None:
    feed = feed_of(rig.service)
    mark = feed.last_seq
    async with serve_api(rig.service) as client:
        subscriber = await Subscriber.open(
            _ws_url(str(client.base_url)), {"a": WATCHED, "after": mark}
        )
        await rig.produce(3)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, FeedFilter.of(WATCHED))
        assert len(expected) >= 2, "three blocks moved the watched addresses"
        got = await subscriber.changes(len(expected))
        await subscriber.close()
    assert got == [_wire(entry) for entry in expected]
    assert {change["address"] for change in got} <= set(WATCHED)


async def test_a_live_subscription_sees_a_reorg_as_retractions_in_order(rig: Rig) -> None:
    feed = feed_of(rig.service)
    await rig.produce(4)
    await rig.ingestion.run_once()
    mark = feed.last_seq
    async with serve_api(rig.service) as client:
        subscriber = await Subscriber.open(_ws_url(str(client.base_url)), {"a": POPULATION})
        await asyncio.sleep(0.2)  # subscribed from now: no resume position
        rig.chain.reorg(3, seed=5)
        await rig.produce(1)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, FeedFilter.of(POPULATION))
        got = await subscriber.changes(len(expected))
        await subscriber.close()
    assert [change["seq"] for change in got] == [entry.seq for entry in expected]
    assert "RETRACTION" in [change["type"] for change in got]
    assert got == [_wire(entry) for entry in expected]


async def test_a_bad_filter_is_an_error_with_its_code(rig: Rig) -> None:
    async with serve_api(rig.service) as client:
        url = _ws_url(str(client.base_url))
        bad = await refusal(url, {"a": ["not-an-address"]})
        too_many = await refusal(url, {"a": [f"{POPULATION[0]}"] * 10_001})
    assert bad["extensions"]["code"] == "invalid_address"
    assert "not-an-address" in bad["message"]
    assert too_many["extensions"]["code"] == "request_too_large"
    assert "at most" in too_many["message"]


async def refusal(url: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The one error a refused subscription answers, after which it completes."""
    subscriber = await Subscriber.open(url, variables)
    first = await subscriber.receive()
    last = await subscriber.receive()
    await subscriber.close()
    assert first["type"] == "next", first
    assert first["payload"]["data"] is None
    assert last == {"type": "complete", "id": "1"}
    errors: list[dict[str, Any]] = first["payload"]["errors"]
    assert len(errors) == 1
    return errors[0]
