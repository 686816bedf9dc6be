"""Live balances: the change stream and webhooks under load (issue 16's targets).

The stand-in mines a block of 50 transactions among 100,000 tracked addresses
(``--quick``: 10,000) every second of real time, which stands for Stacks' 5 s (a
push source's delivery does not depend on the interval), and its Chainhook
deliverer posts each block to a BalanceService served by uvicorn in a process of
its own (``service_fixtures live``), so the memory and CPU measured are the
server's alone. 1,000 SSE subscribers (quick: 200) and 100 webhook subscriptions
(quick: 20), each filtering 10 tracked addresses drawn at random, follow it; one
unfiltered subscriber receives every change, the reference for what each consumer
should get.

- **Latency**: per delivered change, the wall time from the feed entry's ``at``
  (stamped when its block was applied) to its arrival at the consumer, the
  consumer's own parsing included. Target: p99 <= 1 s, SSE and webhooks apart.
- **Memory per idle subscriber**: the server's RSS after the subscribers connected
  and idled, minus its RSS before, per subscriber. Target: <= 50 KB.
- **CPU per delivered change**: the server's CPU during the blocks with consumers,
  minus what as many blocks cost it before any consumer connected (ingestion
  alone, measured in the same run), per delivered change, the unfiltered
  subscriber's included (informational).
- **Missed or repeated changes**: every consumer's changes against the unfiltered
  subscriber's. Target: 0.

Setup is not measured: as in ``bench_ingest``, the tracked set is written as
confirmed zero reads at the tip before the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from balances.chain.client import StacksClient
from balances.config import BalanceServiceConfig
from balances.service.balances import BalanceService
from balances.testing import BlockProducer, FakeChain, fake_address, serve_fake_chain
from balances.testing.fake_chain.deliverers import ChainhookDeliverer
from benchmarks.bench_ingest import CHAIN_BLOCK_SECONDS, SECRET, TXS_PER_BLOCK, _anchor, _serve
from benchmarks.harness import Result
from benchmarks.service_fixtures import Served, answer_lifespan, serve_in_process

API_KEY = "bench-live-key"
FILTER_SIZE = 10
KB = 1024
#: Seconds consumers get after the last block to receive what is still on its way.
SETTLE_SECONDS = 3.0
IDLE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Plan:
    tracked: int
    subscribers: int
    webhooks: int
    blocks: int
    baseline_blocks: int
    interval: float = 1.0


#: As many baseline blocks as measured ones, so both see as many journal flushes.
FULL = Plan(tracked=100_000, subscribers=1_000, webhooks=100, blocks=40, baseline_blocks=40)
QUICK = Plan(tracked=10_000, subscribers=200, webhooks=20, blocks=8, baseline_blocks=8)


@dataclass(slots=True)
class Consumer:
    """What one consumer received: (arrival wall time, entry) in arrival order."""

    addresses: frozenset[str]
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def seqs(self) -> list[int]:
        return [int(entry["seq"]) for _, entry in self.received]

    def lags(self) -> list[float]:
        return [arrived - float(entry["at"]) for arrived, entry in self.received]

    def faults(self, reference: Sequence[dict[str, Any]]) -> int:
        """Changes missed or repeated against the unfiltered ``reference``."""
        expected = [int(e["seq"]) for e in reference if e["address"] in self.addresses]
        got = self.seqs()
        missed = len(set(expected) - set(got))
        return missed + len(got) - len(set(got)) + len(set(got) - set(expected))


# --- the consumers ---------------------------------------------------------------------


async def _follow(
    http: httpx.AsyncClient, url: str, consumer: Consumer, connected: Callable[[], None]
) -> None:
    """One SSE subscriber, until cancelled."""
    params = {"addresses": ",".join(sorted(consumer.addresses))}
    async with aconnect_sse(http, "GET", f"{url}/stream/balances", params=params) as source:
        source.response.raise_for_status()
        connected()
        async for event in source.aiter_sse():
            if event.event in ("change", "retraction"):
                consumer.received.append((time.time(), json.loads(event.data)))
            elif event.event in ("cutoff", "gone"):
                raise RuntimeError(f"a subscriber got {event.event}: {event.data}")


class Receiver:
    """The webhook receiver (raw ASGI): records each delivered change by subscription."""

    def __init__(self) -> None:
        self.by_hook: dict[str, Consumer] = {}

    async def __call__(
        self,
        scope: Mapping[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        delivery = json.loads(body)
        consumer = self.by_hook[delivery["webhook"]]
        consumer.received.extend((arrived, change) for change in delivery["changes"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


# --- the rig ----------------------------------------------------------------------------


def _settings(stand_in: str, store: Path, map_token: str) -> dict[str, Any]:
    return {
        "networks": {
            "mainnet": {
                "api_url": stand_in,
                "requests_per_minute": 1_000_000,
                "map_tokens": [map_token],
            }
        },
        "store_url": f"file://{store}",
        "layout": "sharded",
        "api": {"key": API_KEY},
        "ingest": {"source": "chainhook", "chainhook_secret": SECRET, "reconcile_addresses": 0},
        "scheduler": {"enabled": False},
        "webhooks": {"allow_private_urls": True},  # the receiver listens on loopback
    }


async def _prepare(settings: dict[str, Any], tracked: Sequence[str], map_token: str) -> None:
    """Anchor the tracked set in the store at the tip (not measured)."""
    setup = dict(settings, ingest={**settings["ingest"], "source": "pull"})
    config = BalanceServiceConfig.model_validate(setup)
    async with httpx.AsyncClient(timeout=15) as http:
        url = settings["networks"]["mainnet"]["api_url"]
        chain = StacksClient(http, url, requests_per_minute=float("inf"))
        service = BalanceService(config, chain=chain)
        try:
            tip = (await chain.get_chain_tip()).height
            await _anchor(service, tracked, map_token, tip)
        finally:
            await service.close()


@dataclass(slots=True)
class Rig:
    chain: FakeChain
    producer: BlockProducer
    served: Served
    deliverer: ChainhookDeliverer
    tracked: list[str]

    async def blocks(self, count: int, interval: float) -> None:
        """Mine ``count`` blocks on a fixed beat and deliver each to the server."""
        start = time.perf_counter()
        for k in range(count):
            await asyncio.sleep(max(0.0, start + k * interval - time.perf_counter()))
            self.producer.produce_one(int(time.time()))
            await self.deliverer.deliver_pending()


@contextlib.asynccontextmanager
async def _rig(plan: Plan) -> AsyncIterator[Rig]:
    chain = FakeChain(block_seconds=CHAIN_BLOCK_SECONDS)
    population = [fake_address(f"live-{i}", chain.network) for i in range(plan.tracked)]
    producer = BlockProducer(chain, population, txs_per_block=TXS_PER_BLOCK, seed=11)
    producer.fund()
    tracked = [*population, *producer.pools]
    with tempfile.TemporaryDirectory(prefix="bench-live-") as scratch:
        async with serve_fake_chain(chain) as stand_in:
            settings = _settings(stand_in.url, Path(scratch) / "store", producer.map_token)
            await _prepare(settings, tracked, producer.map_token)
            config_path = Path(scratch) / "settings.json"
            config_path.write_text(json.dumps(settings))
            async with serve_in_process("live", str(config_path)) as served:
                deliverer = ChainhookDeliverer(chain, f"{served.url}/ingest/chainhook", SECRET)
                yield Rig(chain, producer, served, deliverer, tracked)


def _raise_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _subscribe(
    http: httpx.AsyncClient, url: str, consumers: Sequence[Consumer]
) -> list[asyncio.Task[None]]:
    """Connect every SSE subscriber and return once each is connected."""
    connected = asyncio.Semaphore(0)
    tasks = [
        asyncio.create_task(_follow(http, url, consumer, connected.release))
        for consumer in consumers
    ]
    for _ in consumers:
        acquired = asyncio.create_task(connected.acquire())
        done, _pending = await asyncio.wait({acquired, *tasks}, return_when="FIRST_COMPLETED")
        for task in done - {acquired}:
            task.result()  # a subscriber that failed to connect
        await acquired
    return tasks


async def _create_webhooks(
    http: httpx.AsyncClient,
    url: str,
    receiver_url: str,
    receiver: Receiver,
    filters: Sequence[frozenset[str]],
) -> None:
    for addresses in filters:
        answer = await http.post(
            f"{url}/webhooks",
            json={"url": f"{receiver_url}/hook", "addresses": sorted(addresses)},
            headers={"x-api-key": API_KEY},
        )
        answer.raise_for_status()
        receiver.by_hook[answer.json()["id"]] = Consumer(addresses)


@dataclass(slots=True)
class Measured:
    plan: Plan
    sse: list[Consumer]
    hooks: list[Consumer]
    reference: Consumer
    idle_bytes_per_subscriber: float
    ingest_cpu_per_block: float
    consumer_cpu: float

    def lags(self, consumers: Sequence[Consumer]) -> list[float]:
        return sorted(lag for consumer in consumers for lag in consumer.lags())

    def delivered(self) -> int:
        """Changes every consumer received, the unfiltered subscriber's included."""
        return sum(len(c.received) for c in [self.reference, *self.sse, *self.hooks])

    def faults(self) -> int:
        reference = [entry for _, entry in self.reference.received]
        return sum(consumer.faults(reference) for consumer in [*self.sse, *self.hooks])


async def measure(plan: Plan) -> Measured:
    _raise_open_files()
    rng = random.Random(5)
    receiver = Receiver()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(15.0, read=None)
    async with (
        _rig(plan) as rig,
        _serve(receiver) as receiver_url,
        httpx.AsyncClient(limits=limits, timeout=timeout) as http,
    ):
        population = rig.tracked[: plan.tracked]
        url = rig.served.url
        await rig.blocks(2, plan.interval)  # warm the server's code paths
        cpu = rig.served.cpu_seconds()
        await rig.blocks(plan.baseline_blocks, plan.interval)
        ingest_cpu_per_block = (rig.served.cpu_seconds() - cpu) / plan.baseline_blocks

        hook_filters = [
            frozenset(rng.sample(population, FILTER_SIZE)) for _ in range(plan.webhooks)
        ]
        await _create_webhooks(http, url, receiver_url, receiver, hook_filters)
        reference = Consumer(frozenset())
        sse = [
            Consumer(frozenset(rng.sample(population, FILTER_SIZE)))
            for _ in range(plan.subscribers)
        ]
        tasks = await _subscribe(http, url, [reference])
        await asyncio.sleep(IDLE_SECONDS)
        rss = rig.served.rss_bytes()
        tasks += await _subscribe(http, url, sse)
        await asyncio.sleep(IDLE_SECONDS)
        idle = (rig.served.rss_bytes() - rss) / plan.subscribers

        cpu = rig.served.cpu_seconds()
        await rig.blocks(plan.blocks, plan.interval)
        await asyncio.sleep(SETTLE_SECONDS)
        consumer_cpu = rig.served.cpu_seconds() - cpu - ingest_cpu_per_block * plan.blocks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Measured(
        plan,
        sse,
        list(receiver.by_hook.values()),
        reference,
        idle,
        ingest_cpu_per_block,
        consumer_cpu,
    )


# --- rows ---------------------------------------------------------------------------


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _latency_rows(name: str, lags: Sequence[float], note: str) -> list[Result]:
    return [
        Result(f"{name} applied -> delivered p50", _quantile(lags, 0.5), "s", note=note),
        Result(
            f"{name} applied -> delivered p99", _quantile(lags, 0.99), "s", target=1.0, note=note
        ),
    ]


def rows(run: Measured) -> list[Result]:
    plan = run.plan
    sse_lags, hook_lags = run.lags(run.sse), run.lags(run.hooks)
    delivered = run.delivered()
    scale = f"{plan.blocks} blocks of {TXS_PER_BLOCK} txs among {plan.tracked:,} addresses"
    return [
        *_latency_rows(
            f"SSE ({plan.subscribers:,} subscribers)",
            sse_lags,
            f"{len(sse_lags)} changes; {scale}",
        ),
        *_latency_rows(
            f"webhooks ({plan.webhooks} subscriptions)",
            hook_lags,
            f"{len(hook_lags)} changes; {scale}",
        ),
        Result(
            "memory per idle SSE subscriber",
            run.idle_bytes_per_subscriber / KB,
            "KB",
            target=50,
            note="server RSS after connecting, minus before, per subscriber",
        ),
        Result(
            "server CPU per delivered change",
            run.consumer_cpu / max(1, delivered) * 1e3,
            "ms",
            note=f"{delivered} changes delivered; ingestion alone "
            f"({run.ingest_cpu_per_block * 1e3:.0f} ms a block) taken out",
        ),
        Result(
            "changes missed or repeated",
            run.faults(),
            "changes",
            target=0,
            note=f"every consumer against an unfiltered subscriber "
            f"({len(run.reference.received)} changes)",
        ),
    ]


async def run(quick: bool) -> list[Result]:
    return rows(await measure(QUICK if quick else FULL))
