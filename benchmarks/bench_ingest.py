"""Block ingestion: freshness and chain cost that follow chain activity.

The stand-in mines blocks of 50 transactions among 100,000 tracked addresses
(``--quick``: 10,000). For each source a BalanceService served by uvicorn on
loopback folds them: *pull* (the service polls the stand-in's block routes, a block
every 5 s of real time, as on the chain), *chainhook* and *observer* (the stand-in's
deliverers POST each block to the service; a block every second of real time, which
stands for 5 s: a push source's lag does not depend on the interval). Per block, the
lag is the real time from the block being mined to the REST answer of an address it
touched showing the new amount (p50, p99). Chain requests are counted at the
stand-in, per minute of chain time (12 blocks a minute); block routes and
map-token reads (one ``call-read`` per touched map pair) apart.

Beside them, in the same run, today's polling sync: one refresh pass over a sample
of the tracked set, its requests per address times the tracked count, per minute at
the documented pass every 5 minutes. After each source's run, and after a reorg of
depth 3 that the service must undo, every tracked balance the blocks touched is
compared with the stand-in's ledger (0 differences expected).

Setup is not measured: the tracked set starts empty on the chain (money enters
through blocks), so its anchors are written as confirmed zero reads at the tip.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from balances.api import create_app
from balances.blobs import MemoryBlobStore
from balances.chain.client import StacksClient
from balances.config import BalanceServiceConfig
from balances.domain import Principal
from balances.domain.current import AddressUpdate, Stamp
from balances.service.balances import BalanceService
from balances.testing import BlockProducer, FakeChain, fake_address, serve_fake_chain
from balances.testing.fake_chain.deliverers import ChainhookDeliverer, ObserverDeliverer
from benchmarks.harness import Result

CHAIN_BLOCK_SECONDS = 5
BLOCKS_PER_MINUTE = 60 / CHAIN_BLOCK_SECONDS
TXS_PER_BLOCK = 50
SECRET = "bench-ingest-secret"
POLL_PASS_MINUTES = 5  # the documented polling freshness
LAG_TIMEOUT = 30.0
PROBES_PER_BLOCK = 3


@dataclass(frozen=True, slots=True)
class Plan:
    tracked: int
    pull_blocks: int
    push_blocks: int
    push_interval: float
    poll_sample: int


FULL = Plan(tracked=100_000, pull_blocks=24, push_blocks=20, push_interval=1.0, poll_sample=500)
QUICK = Plan(tracked=10_000, pull_blocks=8, push_blocks=6, push_interval=1.0, poll_sample=100)


@dataclass(slots=True)
class SourceRun:
    source: str
    lags: list[float] = field(default_factory=list)
    block_requests: int = 0
    balance_requests: int = 0
    blocks: int = 0
    differences: int = 0
    differences_after_reorg: int = 0

    def per_minute(self, requests: int) -> float:
        return requests / self.blocks * BLOCKS_PER_MINUTE

    def lag(self, quantile: float) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, round(quantile * (len(ordered) - 1)))]


# --- the rig -----------------------------------------------------------------------


def _config(source: str, map_token: str, interval: float) -> BalanceServiceConfig:
    ingest: dict[str, Any] = {
        "source": source,
        "chainhook_secret": SECRET,
        "block_seconds": interval,
        "reconcile_addresses": 0,  # drift checks are reads of their own, not measured here
    }
    return BalanceServiceConfig(
        networks={"mainnet": {"map_tokens": [map_token]}},
        store_url="memory://",
        layout="sharded",
        ingest=ingest,
        scheduler={"enabled": False},
    )


def _is_block_route(route: str) -> bool:
    return "/blocks" in route or "/tx/" in route or route.endswith("/tx/multiple")


def _split_requests(chain: FakeChain) -> tuple[int, int]:
    """(block-route requests, other requests) the stand-in has answered."""
    blocks = sum(n for route, n in chain.requests.items() if _is_block_route(route))
    return blocks, sum(chain.requests.values()) - blocks


async def _anchor(
    service: BalanceService, tracked: Sequence[str], map_token: str, tip: int
) -> None:
    """Track ``tracked`` and store each as read at the tip: nothing held (the ledger's
    truth for a population that only blocks fund), then fold the tip block so the
    cursor stands there and those reads anchor the blocks after it."""
    principals = [Principal.parse(a) for a in tracked]
    await service.tracked.track_many(principals)
    zero = {"stx": (0, "stx"), map_token: (0, "map")}
    stamp = Stamp(time.time(), tip)
    updates = [
        AddressUpdate(a, stamp, zero, listing_complete=True, confirm=True)  # type: ignore[arg-type]
        for a in tracked
    ]
    for start in range(0, len(updates), 5_000):
        await service.current.apply_many(updates[start : start + 5_000])
    assert await service.ingestion_for("pull").run_once() == 1


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _deliverer(
    source: str, chain: FakeChain, url: str
) -> ChainhookDeliverer | ObserverDeliverer | None:
    """The stand-in's sender for a push source (from the chain's next event on)."""
    if source == "chainhook":
        return ChainhookDeliverer(chain, f"{url}/ingest/chainhook", SECRET)
    if source == "observer":
        return ObserverDeliverer(chain, url)
    return None


# --- one block -----------------------------------------------------------------------


def _changed_pairs(
    chain: FakeChain, pairs: set[tuple[str, str]], tracked: set[str]
) -> list[tuple[str, str]]:
    """The tracked (address, token) pairs whose amount the tip block changed."""
    before = chain.tip_height - 1
    return sorted(
        (address, token)
        for address, token in pairs
        if address in tracked
        and chain.balance(token, address) != chain.balance(token, address, at_height=before)
    )


async def _served(api: httpx.AsyncClient, address: str, token: str) -> str | None:
    answer = await api.get(f"/balances/{address}/{token}")
    return str(answer.json()["balance"]) if answer.status_code == 200 else None


async def _until_served(
    api: httpx.AsyncClient, chain: FakeChain, probes: Sequence[tuple[str, str]]
) -> None:
    """Poll the REST API until every probe shows the ledger's amount (bounded)."""
    deadline = time.perf_counter() + LAG_TIMEOUT
    waiting = list(probes)
    while waiting:
        address, token = waiting[0]
        if await _served(api, address, token) == str(chain.balance(token, address)):
            waiting.pop(0)
            continue
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{address} {token} not served within {LAG_TIMEOUT} s")
        await asyncio.sleep(0.01)


@dataclass(slots=True)
class Bench:
    """One source's rig: the chain, its producer, the served service."""

    chain: FakeChain
    producer: BlockProducer
    service: BalanceService
    api: httpx.AsyncClient
    deliverer: ChainhookDeliverer | ObserverDeliverer | None
    tracked: list[str]
    rng: random.Random

    async def blocks(self, count: int, interval: float) -> list[float]:
        """Mine ``count`` blocks, one every ``interval`` seconds whatever the service
        does (as the chain does), deliver each (push), and return each block's lag to
        the REST answer."""
        start = time.perf_counter()
        lags: list[asyncio.Task[float]] = []
        sending: asyncio.Task[None] | None = None
        for k in range(count):
            await asyncio.sleep(max(0.0, start + k * interval - time.perf_counter()))
            mined = time.perf_counter()
            produced = self.producer.produce_one(int(time.time()))  # as on Stacks
            changed = _changed_pairs(self.chain, produced.pairs, set(self.tracked))
            probes = self.rng.sample(changed, min(PROBES_PER_BLOCK, len(changed)))
            if self.deliverer is not None:
                if sending is not None:
                    await sending  # one sender, in chain order, as Chainhook and a node do
                sending = asyncio.create_task(self.deliver())
            lags.append(asyncio.create_task(self._lag(mined, probes)))
        if sending is not None:
            await sending
        return list(await asyncio.gather(*lags))

    async def _lag(self, mined: float, probes: Sequence[tuple[str, str]]) -> float:
        await _until_served(self.api, self.chain, probes)
        return time.perf_counter() - mined

    async def deliver(self) -> None:
        assert self.deliverer is not None
        await self.deliverer.deliver_pending()

    async def reorg(self, depth: int) -> None:
        """Fork the top ``depth`` blocks, mine one more, and wait until it is folded."""
        self.chain.reorg(depth, seed=depth)
        self.producer.produce_one(int(time.time()))
        if self.deliverer is not None:
            await self.deliver()
        deadline = time.perf_counter() + LAG_TIMEOUT
        while self._cursor_hash() != self.chain.tip.index_block_hash:
            if time.perf_counter() > deadline:
                raise RuntimeError("the reorg was not folded in time")
            await asyncio.sleep(0.05)

    def _cursor_hash(self) -> str | None:
        assert self.service.ingestion is not None
        cursor = self.service.ingestion.status().as_dict()["cursor"]
        return None if cursor is None else str(cursor["index_hash"])

    async def differences(self) -> int:
        """Tracked (address, token) pairs whose stored amount is not the ledger's."""
        stored = await self.service.current.load_many([Principal.parse(a) for a in self.tracked])
        wrong = 0
        for address in self.tracked:
            balances = stored.get(address)
            for token in self.producer.token_ids:
                state = None if balances is None else balances.tokens.get(token)
                amount = 0 if state is None else state.amount
                wrong += amount != self.chain.balance(token, address)
        return wrong


# --- one source -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _bench(source: str, population: Sequence[str], interval: float) -> AsyncIterator[Bench]:
    chain = FakeChain(block_seconds=CHAIN_BLOCK_SECONDS)
    producer = BlockProducer(chain, population, txs_per_block=TXS_PER_BLOCK, seed=7)
    producer.fund()
    tracked = [*population, *producer.pools]
    async with serve_fake_chain(chain) as stand_in, httpx.AsyncClient(timeout=15) as http:
        client = StacksClient(http, stand_in.url, requests_per_minute=float("inf"))
        blobs = MemoryBlobStore()
        setup = BalanceService(
            _config("pull", producer.map_token, interval), blobs=blobs, chain=client
        )
        await _anchor(setup, tracked, producer.map_token, chain.tip_height)
        await setup.close()
        config = _config(source, producer.map_token, interval)
        service = BalanceService(config, blobs=blobs, chain=client)
        try:
            app = create_app(service=service, scheduler=False, ingest=True)
            async with _serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as api:
                deliverer = _deliverer(source, chain, url)
                yield Bench(chain, producer, service, api, deliverer, tracked, random.Random(3))
        finally:
            await service.close()


async def _run_source(source: str, population: Sequence[str], plan: Plan) -> SourceRun:
    pull = source == "pull"
    interval = float(CHAIN_BLOCK_SECONDS) if pull else plan.push_interval
    run = SourceRun(source, blocks=plan.pull_blocks if pull else plan.push_blocks)
    async with _bench(source, population, interval) as bench:
        bench.chain.reset_requests()
        run.lags = await bench.blocks(run.blocks, interval)
        run.block_requests, run.balance_requests = _split_requests(bench.chain)
        run.differences = await bench.differences()
        await bench.reorg(3)
        run.differences_after_reorg = await bench.differences()
    return run


# --- the polling baseline --------------------------------------------------------------


async def _polling_requests_per_address(population: Sequence[str], sample: int) -> float:
    """Chain requests of one polling refresh per address, over ``sample`` addresses
    that hold what the producer's blocks gave them."""
    chain = FakeChain(block_seconds=CHAIN_BLOCK_SECONDS)
    producer = BlockProducer(chain, population[: sample * 4], txs_per_block=TXS_PER_BLOCK, seed=7)
    for _ in range(20):
        producer.produce_one()
    addresses = [Principal.parse(a) for a in population[:sample]]
    async with serve_fake_chain(chain) as stand_in, httpx.AsyncClient(timeout=15) as http:
        client = StacksClient(http, stand_in.url, requests_per_minute=float("inf"))
        service = BalanceService(
            _config("pull", producer.map_token, 5.0), blobs=MemoryBlobStore(), chain=client
        )
        try:
            await service.tracked.track_many(addresses)
            chain.reset_requests()
            await service.syncer.refresh_many(addresses)
        finally:
            await service.close()
    return sum(chain.requests.values()) / sample


# --- rows ---------------------------------------------------------------------------


def _lag_rows(run: SourceRun, interval: float) -> list[Result]:
    bound = interval + 2.0 if run.source == "pull" else 2.0
    note = f"{run.blocks} blocks, {PROBES_PER_BLOCK} changed pairs each, block mined -> REST"
    return [
        Result(f"{run.source} lag p50", run.lag(0.5), "s", note=note),
        Result(f"{run.source} lag p99", run.lag(0.99), "s", target=bound, note=note),
    ]


def _correctness_rows(run: SourceRun) -> list[Result]:
    return [
        Result(f"{run.source} balances differing after run", run.differences, "pairs", target=0),
        Result(
            f"{run.source} balances differing after depth-3 reorg",
            run.differences_after_reorg,
            "pairs",
            target=0,
        ),
    ]


def _request_rows(runs: Sequence[SourceRun], polling: float, tracked: int) -> list[Result]:
    polling_per_minute = polling * tracked / POLL_PASS_MINUTES
    pull = next(run for run in runs if run.source == "pull")
    rows = [
        Result(
            "pull block-route requests/min",
            pull.per_minute(pull.block_requests),
            "req/min",
            target=20,
            note="blocks, their transactions and events, probes; any tracked count",
        ),
        Result(
            f"pull requests/min, all, vs polling {tracked:,} addresses",
            pull.per_minute(pull.block_requests + pull.balance_requests),
            "req/min",
            baseline=polling_per_minute,
            baseline_name=f"polling pass every {POLL_PASS_MINUTES} min",
            note="with one call-read per touched map-token pair",
        ),
    ]
    for run in runs:
        rows.append(
            Result(
                f"{run.source} map-token reads/min",
                run.per_minute(run.balance_requests),
                "req/min",
                note="one call-read per touched map-token pair (no events carry its amount)",
            )
        )
    rows.append(Result("polling requests per address", polling, "req", note="one refresh pass"))
    return rows


async def run(quick: bool) -> list[Result]:
    plan = QUICK if quick else FULL
    population = [fake_address(f"bench-ingest-{i}") for i in range(plan.tracked)]
    runs = [
        await _run_source(source, population, plan) for source in ("pull", "chainhook", "observer")
    ]
    polling = await _polling_requests_per_address(population, plan.poll_sample)
    rows: list[Result] = []
    for one in runs:
        interval = float(CHAIN_BLOCK_SECONDS) if one.source == "pull" else plan.push_interval
        rows += _lag_rows(one, interval) + _correctness_rows(one)
    return rows + _request_rows(runs, polling, plan.tracked)
