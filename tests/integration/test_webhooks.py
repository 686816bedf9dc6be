"""Webhooks over loopback: a service ingesting the stand-in's blocks delivers signed
batches to a receiver served by uvicorn; subscriptions are managed through the REST
API (uvicorn too), and the CLI lists them from the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from ingest_rig import POPULATION, Rig, rig_on, serve_api
from service_helpers import shared_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from balances.blobs import MemoryBlobStore
from balances.bootstrap import load_config
from balances.cli.app import app as cli
from balances.domain.feed import FeedEntry, FeedFilter
from balances.domain.webhooks import SIGNATURE_HEADER, Webhook, verify_signature
from balances.errors import InvalidSignatureError
from balances.service.balances import BalanceService
from balances.service.webhooks import Webhooks
from balances.stores.feed import ChangeFeed
from balances.stores.webhooks import Progress
from balances.testing import FakeChain, FakeChainServer

WATCHED = POPULATION[:10]
API_KEY = "webhook-test-key"
KEYED = {"x-api-key": API_KEY}
SECRET = "a-receiver-secret-0123456789"


@dataclass
class Delivery:
    body: bytes
    signature: str | None
    status: int

    @property
    def seqs(self) -> list[int]:
        return [change["seq"] for change in orjson.loads(self.body)["changes"]]


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers each delivery with the next scripted
    status (200 once the script runs out) and records what it was sent."""

    url: str
    script: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        status = self.script.pop(0) if self.script else 200
        body = await request.body()
        self.deliveries.append(Delivery(body, request.headers.get(SIGNATURE_HEADER), status))
        return Response(status_code=status)

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == 200]

    def accepted_seqs(self) -> list[int]:
        return [seq for delivery in self.accepted() for seq in delivery.seqs]

    async def until(self, done: Callable[[], bool], seconds: float = 20.0) -> None:
        async with asyncio.timeout(seconds):
            while not done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with shared_server() as running:
        found = Receiver(f"http://{running.host}:{running.port}/hook")
        running.app.target = Starlette(routes=[Route("/hook", found.handle, methods=["POST"])])
        yield found


#: The receivers listen on loopback, which deliveries may reach only when allowed.
FAST_RETRIES = {
    "backoff_seconds": 0.02,
    "backoff_max_seconds": 0.1,
    "max_failures": 4,
    "allow_private_urls": True,
}


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    settings = {"api": {"key": API_KEY}, "webhooks": FAST_RETRIES}
    async with rig_on(fake_chain, fake_chain_server, settings=settings) as built:
        yield built


def webhooks_of(service: BalanceService) -> Webhooks:
    assert service.webhooks is not None
    return service.webhooks


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


async def subscribe(api: httpx.AsyncClient, url: str, **fields: object) -> dict[str, object]:
    body = {"url": url, "addresses": WATCHED, "secret": SECRET, **fields}
    response = await api.post("/webhooks", json=body, headers=KEYED)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def blocks(rig: Rig, count: int) -> list[FeedEntry]:
    """Mine and ingest ``count`` blocks; the watched addresses' entries they made."""
    feed = feed_of(rig.service)
    mark = feed.last_seq
    await rig.produce(count)
    await rig.ingestion.run_once()
    made = await feed_entries(feed, mark, FeedFilter.of(WATCHED))
    assert made, "the blocks moved the watched addresses"
    return made


async def test_a_receiver_gets_every_change_in_signed_batches(rig: Rig, receiver: Receiver) -> None:
    webhooks = webhooks_of(rig.service)
    async with serve_api(rig.service) as api:
        created = await subscribe(api, receiver.url)
        assert created["secret"] == SECRET
        assert created["state"] == "active"
        webhooks.dispatcher.start()
        made = await blocks(rig, 3)
        await receiver.until(lambda: len(receiver.accepted_seqs()) >= len(made))
        listed = (await api.get("/webhooks", headers=KEYED)).json()
    assert receiver.accepted_seqs() == [entry.seq for entry in made]
    changes = [c for d in receiver.accepted() for c in orjson.loads(d.body)["changes"]]
    assert changes == [entry.to_json() for entry in made]
    for delivery in receiver.deliveries:
        verify_signature(SECRET, delivery.body, delivery.signature, now=rig.clocks.wall())
    assert "secret" not in listed[0]
    assert listed[0]["id"] == created["id"]


async def test_the_receiver_rejects_a_tampered_or_replayed_delivery(
    rig: Rig, receiver: Receiver
) -> None:
    async with serve_api(rig.service) as api:
        await subscribe(api, receiver.url)
    webhooks_of(rig.service).dispatcher.start()
    await blocks(rig, 2)
    await receiver.until(lambda: bool(receiver.deliveries))
    delivery, now = receiver.deliveries[0], rig.clocks.wall()
    assert verify_signature(SECRET, delivery.body, delivery.signature, now=now) <= now
    tampered = delivery.body.replace(b'"amount":"', b'"amount":"9', 1)
    assert tampered != delivery.body
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify_signature(SECRET, tampered, delivery.signature, now=now)
    with pytest.raises(InvalidSignatureError, match="replayed"):
        verify_signature(SECRET, delivery.body, delivery.signature, now=now + 301)
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify_signature("another-secret-of-someone", delivery.body, delivery.signature, now=now)
    with pytest.raises(InvalidSignatureError, match="no Balances-Signature"):
        verify_signature(SECRET, delivery.body, None, now=now)


async def test_a_receiver_answering_500_then_200_gets_every_change(
    rig: Rig, receiver: Receiver
) -> None:
    receiver.script = [500, 503, 500]
    webhooks = webhooks_of(rig.service)
    async with serve_api(rig.service) as api:
        created = await subscribe(api, receiver.url)
        webhooks.dispatcher.start()
        made = await blocks(rig, 3)
        await receiver.until(lambda: len(receiver.accepted_seqs()) >= len(made))
        await webhooks.dispatcher.save()
        shown = (await api.get(f"/webhooks/{created['id']}", headers=KEYED)).json()
    assert [d.status for d in receiver.deliveries[:4]] == [500, 503, 500, 200]
    # Each retry carries the same changes first (with any made since), freshly signed.
    refused = receiver.deliveries[0].seqs
    assert receiver.deliveries[3].seqs[: len(refused)] == refused
    assert receiver.accepted_seqs() == [entry.seq for entry in made]
    assert webhooks.dispatcher.stats.failed_attempts == 3
    assert shown["state"] == "active"
    assert shown["failures"] == 0
    assert shown["cursor"] >= made[-1].seq
    assert shown["delivered"] == len(made)


async def test_repeated_failures_dead_letter_a_subscription_until_it_is_revived(
    rig: Rig, receiver: Receiver
) -> None:
    receiver.script = [500] * FAST_RETRIES["max_failures"]
    webhooks = webhooks_of(rig.service)
    async with serve_api(rig.service) as api:
        created = await subscribe(api, receiver.url)
        hook_id = str(created["id"])
        webhooks.dispatcher.start()
        made = await blocks(rig, 2)

        async def state() -> str:
            found: str = (await webhooks.get(hook_id)).state
            return found

        async with asyncio.timeout(20):
            while await state() != "dead":  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        shown = (await api.get(f"/webhooks/{hook_id}", headers=KEYED)).json()
        metrics = (await api.get("/metrics")).text
        assert len(receiver.deliveries) == FAST_RETRIES["max_failures"]
        assert webhooks.dispatcher.active == 0  # no more attempts
        revived = await api.post(f"/webhooks/{hook_id}/revive", headers=KEYED)
        assert revived.status_code == 200
        assert revived.json()["state"] == "active"
        await receiver.until(lambda: len(receiver.accepted_seqs()) >= len(made))
    assert shown["state"] == "dead"
    assert shown["last_error"] == "4 deliveries failed in a row (the last: HTTP 500)"
    assert 'balances_webhooks{state="dead"} 1.0' in metrics
    assert "balances_webhook_dead_lettered_total 1.0" in metrics
    assert receiver.accepted_seqs() == [entry.seq for entry in made]


async def _one_live_one_dead(root: Path) -> tuple[Webhook, Webhook]:
    async with BalanceService(load_config(store_url=f"file://{root}")) as service:
        webhooks = webhooks_of(service)
        live = await webhooks.create("https://example.com/live", WATCHED[:2], secret=SECRET)
        dead = await webhooks.create("https://example.com/dead", after=41)
        failed = Progress(41, failures=10, error="HTTP 500", dead=True)
        await webhooks.registry.record({dead.id: failed})
        return live, dead


def test_the_cli_lists_subscriptions_and_their_dead_letter_state(tmp_path: Path) -> None:
    live, dead = asyncio.run(_one_live_one_dead(tmp_path))
    runner = CliRunner()
    as_json = runner.invoke(cli, ["webhooks", "list", "--json", "--store", f"file://{tmp_path}"])
    table = runner.invoke(cli, ["webhooks", "list", "--store", f"file://{tmp_path}"])
    empty = runner.invoke(cli, ["webhooks", "list", "--store", f"file://{tmp_path}/none"])
    assert as_json.exit_code == 0, as_json.output
    listed = {hook["id"]: hook for hook in json.loads(as_json.output)}
    assert listed[live.id]["state"] == "active"
    assert listed[live.id]["addresses"] == sorted(WATCHED[:2])
    assert listed[dead.id]["state"] == "dead"
    assert listed[dead.id]["last_error"] == "HTTP 500"
    assert all("secret" not in hook for hook in listed.values())
    assert SECRET not in as_json.output
    assert SECRET not in table.output
    assert table.exit_code == 0
    assert "dead" in table.output
    assert "500" in table.output  # the error column (wrapped to the terminal width)
    assert empty.exit_code == 0
    assert "no webhook subscriptions" in empty.output


async def test_a_restarted_dispatcher_resumes_from_the_stored_cursor(
    rig: Rig, receiver: Receiver
) -> None:
    webhooks = webhooks_of(rig.service)
    async with serve_api(rig.service) as api:
        await subscribe(api, receiver.url)
    webhooks.dispatcher.start()
    first = await blocks(rig, 2)
    await receiver.until(lambda: len(receiver.accepted_seqs()) >= len(first))
    await webhooks.dispatcher.stop()  # saves the cursors
    later = await blocks(rig, 2)
    assert receiver.accepted_seqs() == [entry.seq for entry in first]
    # A new process over the same store: the cursor it reads is where deliveries stopped.
    restarted = Webhooks(
        feed_of(rig.service),
        type(webhooks.registry)(rig.service.blobs, rig.service.layout.settings.prefix),
        rig.service.config.webhooks,
        max_addresses=1000,
    )
    restarted.dispatcher.start()
    try:
        await receiver.until(lambda: len(receiver.accepted_seqs()) >= len(first) + len(later))
    finally:
        await restarted.dispatcher.stop()
    assert receiver.accepted_seqs() == [entry.seq for entry in [*first, *later]]


async def test_bad_subscriptions_are_refused_with_a_message(rig: Rig) -> None:
    async with serve_api(rig.service) as api:
        cases = {
            "ftp://example.com/hook": 422,
            "not a url": 422,
        }
        for url, status in cases.items():
            response = await api.post("/webhooks", json={"url": url}, headers=KEYED)
            assert response.status_code == status, response.text
            assert response.json()["message"].startswith("url:")
        good = "http://127.0.0.1:9/hook"
        bad_address = await api.post(
            "/webhooks", json={"url": good, "addresses": ["SP-nope"]}, headers=KEYED
        )
        too_many = await api.post(
            "/webhooks", json={"url": good, "addresses": [POPULATION[0]] * 10_000}, headers=KEYED
        )
        short_secret = await api.post(
            "/webhooks", json={"url": good, "secret": "short"}, headers=KEYED
        )
        unkeyed = await api.post("/webhooks", json={"url": good})
        unknown = await api.delete("/webhooks/wh_0000000000000000", headers=KEYED)
        listed = (await api.get("/webhooks", headers=KEYED)).json()
    assert bad_address.status_code == 400
    assert too_many.status_code == 413
    assert "at most 1000" in too_many.json()["message"]
    assert short_secret.status_code == 400
    assert "16 to 256" in short_secret.text
    assert unkeyed.status_code == 401
    assert unknown.status_code == 404
    assert listed == [], "nothing refused was stored"


async def test_subscriptions_from_two_replicas_are_all_kept(rig: Rig) -> None:
    """Two services on one store add subscriptions at once: no lost update; a
    deleted one is gone for both."""
    other = BalanceService(rig.service.config, blobs=rig.service.backend, chain=rig.service.chain)
    try:
        ours, theirs = webhooks_of(rig.service), webhooks_of(other)
        made = await asyncio.gather(
            *(ours.create(f"http://127.0.0.1:9/a{i}") for i in range(5)),
            *(theirs.create(f"http://127.0.0.1:9/b{i}") for i in range(5)),
        )
        assert {h.id for h in await ours.list()} == {h.id for h in made}
        await theirs.delete(made[0].id)
        assert made[0].id not in {h.id for h in await ours.list()}
    finally:
        await other.close()
    assert isinstance(rig.service.backend, MemoryBlobStore)


@pytest.fixture
async def guarded(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    """The service with the default guard: deliveries to public addresses only."""
    hooks = {**FAST_RETRIES, "allow_private_urls": False, "max_failures": 1}
    settings = {"api": {"key": API_KEY}, "webhooks": hooks}
    async with rig_on(fake_chain, fake_chain_server, settings=settings) as built:
        yield built


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "https://localhost/hook",
        "http://0.0.0.0:8000/hook",
    ],
)
async def test_a_private_address_is_refused_when_subscribing(guarded: Rig, url: str) -> None:
    async with serve_api(guarded.service) as api:
        body = {"url": url, "addresses": WATCHED, "secret": SECRET}
        response = await api.post("/webhooks", json=body, headers=KEYED)
        listed = await api.get("/webhooks", headers=KEYED)
    assert response.status_code == 400, response.text
    assert "public address" in response.json()["message"]
    assert listed.json() == [] or listed.json().get("webhooks") == []


async def test_a_host_that_resolves_to_loopback_is_not_delivered_to(
    guarded: Rig, receiver: Receiver
) -> None:
    """``127.1`` is no address to ``ipaddress`` but resolves to 127.0.0.1 (a classic
    way around a literal check): every delivery resolves its host and refuses it, so
    the receiver gets nothing, and after ``max_failures`` (1) the subscription is
    dead-lettered with the reason."""
    sneaky = receiver.url.replace("127.0.0.1", "127.1")
    webhooks = webhooks_of(guarded.service)
    async with serve_api(guarded.service) as api:
        created = await subscribe(api, sneaky)
        webhooks.dispatcher.start()
        await blocks(guarded, 2)
        await receiver.until(lambda: webhooks.dispatcher.stats.failed_attempts >= 1)
        await asyncio.sleep(0.2)  # any delivery that was going to slip through
        listed = await api.get(f"/webhooks/{created['id']}", headers=KEYED)
    assert receiver.accepted() == []
    answer = listed.json()
    assert answer["state"] == "dead"
    assert "127.1 resolves to a non-public address (127.0.0.1)" in answer["last_error"]
