"""Bulk history reads and the scheduler's sync pass (issue 7's targets).

(a) ``BalanceSeriesAPI.get_balance_series_bulk`` for 100 addresses x 10 tokens x
    30 days (day buckets) against the same 1,000 answers from single
    ``BalanceService.get_balance_history`` calls. The history (35 days, one change
    per token a day) is written through the real layout (``record_history``, then
    ``maintain`` compacts it into 16 shards' current, daily and month blobs). Each
    variant runs on a fresh ``BalanceService`` over the same blobs, so every cache
    is cold (``clear_cache()`` is not enough: it re-checks the shards' current blobs
    with a HEAD instead of reading them again), with a staleness limit long enough
    that no balance is read from the chain (checked: zero). The answers must be
    equal. Blob GETs (the service's ``MeteredBlobStore``) as a ratio: target 1.0.
    Singles in one process share the layout's blob cache, so both read each distinct
    blob once; the target holds that bulk never reads more. Time as a ratio: target
    1.0 (bulk reads each address once for all its tokens, so it is never slower).
(b) One ``BalanceScheduler.run_once()`` with only the sync task enabled, 1,000
    tracked addresses (100 quick), against the stand-in with 20 ms latency and a
    900-per-minute limit enforced by the stand-in and by the client's own limiter
    (as in ``bench_chain``). ``rate_limit_share=1.0`` and an hour's interval, so one
    pass plans every address. The bound is what the limit allows for the requests
    the stand-in counted (chain-tip reads included): ``(requests - burst) * 60 /
    900`` seconds. Targets: within 1.15x, no 429, one journal segment per batch.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from balances.blobs import Blob, BlobInfo, MemoryBlobStore
from balances.chain.client import StacksClient
from balances.chain.retry import RetryPolicy
from balances.chain.routes import LATEST_BLOCK
from balances.config import BalanceServiceConfig
from balances.domain import Principal
from balances.domain.current import Change, Stamp
from balances.scheduler import (
    DEFAULT_SCHEDULER_CONFIG,
    BalanceScheduler,
    SchedulerConfig,
    TaskConfig,
)
from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI
from balances.testing import FakeChain, fake_address, serve_fake_chain
from benchmarks.harness import Result
from benchmarks.service_fixtures import TIP_HEIGHT, InProcessChain, token_contract

DAY = 86_400.0
ADDRESSES = 100
TOKENS = 10
HISTORY_DAYS = 35
SHARDS = 16
#: The wall clock of part (a): fixed, so two variants' windows (and answers) match.
NOW = datetime(2025, 3, 20, 12, tzinfo=UTC).timestamp()
RATE_LIMIT = 900
LATENCY = 0.020
SYNC_INTERVAL = 3600.0

# --- (a) bulk series against single calls ------------------------------------------


class _CountingChain(InProcessChain):
    """:class:`InProcessChain` that tells balance reads from metadata reads."""

    def __init__(self, tokens: int) -> None:
        super().__init__(tokens)
        self.balance_reads = 0

    async def get_stx_balance(self, principal: str | Principal) -> int:
        self.balance_reads += 1
        return await super().get_stx_balance(principal)

    async def get_ft_balances(self, principal: str | Principal) -> dict[str, int]:
        self.balance_reads += 1
        return await super().get_ft_balances(principal)

    async def get_ft_balance(self, principal: str | Principal, asset_identifier: str) -> int:
        self.balance_reads += 1
        return await super().get_ft_balance(principal, asset_identifier)


def blob_class(key: str) -> str:
    """``current``, ``daily``, ``month``, ``journal``, ``manifest``, ``tokens``..."""
    parts = key.split("/")
    return parts[1] if parts[0] == "v1" and len(parts) > 1 else parts[0]


class KeyedMemoryStore(MemoryBlobStore):
    """A memory store that counts GETs and PUTs by :func:`blob_class` (HEADs apart)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: Counter[str] = Counter()
        self.puts: Counter[str] = Counter()

    def reset_counts(self) -> None:
        self.gets.clear()
        self.puts.clear()

    async def get(self, key: str) -> Blob:
        self.gets[blob_class(key)] += 1
        return await super().get(key)

    async def head(self, key: str) -> BlobInfo:
        return (await super().get(key)).info  # the base class heads through get

    async def put(self, key: str, data: bytes, **options: Any) -> BlobInfo:
        self.puts[blob_class(key)] += 1
        return await super().put(key, data, **options)


def _series_config() -> BalanceServiceConfig:
    return BalanceServiceConfig(
        cache_timeouts={"current": 3600.0},
        stale_after=90 * DAY,  # the newest history point is the current balance
        networks={"mainnet": {"map_tokens": []}},
        store_url="memory://",
        shards=SHARDS,
        track_on_read=False,
    )


def _series_service(blobs: KeyedMemoryStore, chain: _CountingChain) -> BalanceService:
    return BalanceService(_series_config(), blobs=blobs, chain=chain, wall_clock=lambda: NOW)


def _history(index: int, address: str, tokens: list[str]) -> list[Change]:
    """One change per token a day for ``HISTORY_DAYS`` days, at an hour that varies by
    address and day; the newest is less than a day old."""
    changes = []
    for days_ago in range(HISTORY_DAYS, 0, -1):
        at = NOW - days_ago * DAY + 3600 * ((index + days_ago) % 20)
        stamp = Stamp(at, TIP_HEIGHT - days_ago * 144)
        for t, key in enumerate(tokens):
            amount = 1_000_000 * (index + 1) + 1_000 * days_ago + t
            changes.append(Change(address, key, "native", None, amount, stamp))
    return changes


async def _write_history(
    blobs: KeyedMemoryStore, chain: _CountingChain, addresses: list[str], tokens: list[str]
) -> int:
    """The history through the real layout, compacted; the tokens' metadata read once
    and stored in the registry (a fresh service then needs no chain read). Returns
    the shards holding addresses."""
    async with _series_service(blobs, chain) as svc:
        for index, address in enumerate(addresses):
            await svc.layout.record_history(
                Principal.parse(address), _history(index, address, tokens)
            )
        report = await svc.layout.maintain(NOW + 3600)  # past the compaction grace
        if report.segments_folded != len(addresses):
            raise RuntimeError(f"compaction folded {report.segments_folded} segments")
        for token in tokens:
            await svc.get_token(token)
        return len({svc.layout.shard(a) for a in addresses})  # type: ignore[attr-defined]


async def _singles(svc: BalanceService, addresses: list[str], tokens: list[str]) -> Any:
    series: dict[str, dict[str, Any]] = {}
    for address in addresses:
        for token in tokens:
            answer = await svc.get_balance_history(address, token, "30d", "day")
            series.setdefault(address, {})[token] = answer
    return series


async def _bulk(svc: BalanceService, addresses: list[str], tokens: list[str]) -> Any:
    request = {"addresses": addresses, "token_ids": tokens, "period": "30d", "granularity": "day"}
    answer = await BalanceSeriesAPI(svc).get_balance_series_bulk(request)
    if answer.errors:
        first = answer.errors[0]
        raise RuntimeError(f"the bulk call failed for {len(answer.errors)} items: {first}")
    return answer.series


async def _cold_run(
    variant: str, blobs: KeyedMemoryStore, chain: _CountingChain, addresses: list[str]
) -> tuple[float, int, Counter[str], Any]:
    """(seconds, GETs, GETs by blob class, answers) of one variant on a fresh service."""
    tokens = [token_contract(i) for i in range(TOKENS)]
    work = _bulk if variant == "bulk" else _singles
    blobs.reset_counts()
    chain.calls = chain.balance_reads = 0
    async with _series_service(blobs, chain) as svc:
        started = time.perf_counter()
        answers = await work(svc, addresses, tokens)
        elapsed = time.perf_counter() - started
        gets = svc.blobs.snapshot().operations["get"]
    if chain.balance_reads or chain.calls:
        raise RuntimeError(f"{variant}: {chain.calls} chain reads ({chain.balance_reads} balances)")
    count = sum(len(by_token) for by_token in answers.values())
    if count != len(addresses) * TOKENS:
        raise RuntimeError(f"{variant}: {count} answers")
    return elapsed, gets, Counter(blobs.gets), answers


def _by_class(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.most_common())


async def _after_clear_cache(
    blobs: KeyedMemoryStore, chain: _CountingChain, addresses: list[str]
) -> tuple[int, int]:
    """(GETs, HEADs) of the bulk call after ``clear_cache()`` on a warm service: the
    layout keeps each shard's current blob and re-checks it by etag."""
    tokens = [token_contract(i) for i in range(TOKENS)]
    async with _series_service(blobs, chain) as svc:
        await _bulk(svc, addresses, tokens)
        await svc.clear_cache()
        svc.blobs.reset()
        await _bulk(svc, addresses, tokens)
        operations = svc.blobs.snapshot().operations
    return operations["get"], operations["head"]


def _charts(answers: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """The answers without ``source``: singles read the store once, then hit the cache;
    a bulk read takes each address's balances from the store once for all tokens."""
    return {
        address: {
            token: {k: v for k, v in chart.as_dict().items() if k != "source"}
            for token, chart in by_token.items()
        }
        for address, by_token in answers.items()
    }


async def _bulk_series(quick: bool) -> list[Result]:
    repeat = 1 if quick else 3
    addresses = [fake_address(f"bench-bulk-{i}") for i in range(ADDRESSES)]
    blobs, chain = KeyedMemoryStore(), _CountingChain(TOKENS)
    tokens = [token_contract(i) for i in range(TOKENS)]
    shards = await _write_history(blobs, chain, addresses, tokens)
    runs: dict[str, list[tuple[float, int, Counter[str], Any]]] = {"singles": [], "bulk": []}
    for _ in range(repeat):  # interleaved: a busy moment hits both
        for variant in runs:
            runs[variant].append(await _cold_run(variant, blobs, chain, addresses))
    singles, bulk = runs["singles"], runs["bulk"]
    if any(_charts(run[3]) != _charts(singles[0][3]) for run in singles + bulk):
        raise RuntimeError("the bulk answers differ from the single calls' answers")
    if len({run[1] for run in singles}) != 1 or len({run[1] for run in bulk}) != 1:
        raise RuntimeError("blob GETs differ between repeats of one variant")
    points = len(next(iter(singles[0][3][addresses[0]].values())).points)
    cleared_gets, cleared_heads = await _after_clear_cache(blobs, chain, addresses)
    label = f"{ADDRESSES} addr x {TOKENS} tokens x 30 d (day)"
    singles_time, bulk_time = min(run[0] for run in singles), min(run[0] for run in bulk)
    calls = ADDRESSES * TOKENS
    return [
        Result(
            name=f"bulk series blob GETs, {label}",
            figure=bulk[0][1],
            unit="GET",
            baseline=singles[0][1],
            baseline_name=f"{calls:,} get_balance_history",
            # Singles in one process share the layout's blob cache, so both read each
            # shard's blobs once: the bound is that bulk never reads more.
            target=1.0,
            note=(
                f"cold caches, {shards} shards: bulk {bulk[0][1]} GETs ({_by_class(bulk[0][2])}), "
                f"singles {singles[0][1]} ({_by_class(singles[0][2])}); "
                f"answers equal, {points} buckets each, 0 chain reads; after clear_cache() "
                f"instead of a fresh service: {cleared_gets} GETs + {cleared_heads} HEADs"
            ),
        ),
        Result(
            name=f"bulk series time, {label}",
            figure=bulk_time,
            unit="s",
            baseline=singles_time,
            baseline_name=f"{calls:,} get_balance_history",
            target=1.0,
            note=(
                "one balances read and one series read per address; "
                f"{bulk_time / calls * 1e3:.2f} vs {singles_time / calls * 1e3:.2f} ms per "
                f"series; best of {repeat}, cold each"
            ),
        ),
    ]


# --- (b) the scheduler's sync pass -----------------------------------------------


def _sync_config() -> BalanceServiceConfig:
    return BalanceServiceConfig(
        networks={"mainnet": {"map_tokens": []}}, store_url="memory://", shards=SHARDS
    )


def _sync_only() -> SchedulerConfig:
    off = {"enabled": False}
    return replace(
        DEFAULT_SCHEDULER_CONFIG,
        sync=TaskConfig(SYNC_INTERVAL),
        prices=replace(DEFAULT_SCHEDULER_CONFIG.prices, **off),
        maintain=replace(DEFAULT_SCHEDULER_CONFIG.maintain, **off),
        aggregates=replace(DEFAULT_SCHEDULER_CONFIG.aggregates, **off),
        rate_limit_share=1.0,
    )


def _holders(chain: FakeChain, count: int) -> list[str]:
    """As in bench_chain: STX and one to three native tokens each."""
    tokens = chain.add_native_tokens(3, prefix="sched")
    holders = [fake_address(f"bench-sched-{i}", "mainnet") for i in range(count)]
    for index, holder in enumerate(holders):
        chain.mint("stx", holder, 1_000 + index)
        for token in tokens[: 1 + index % 3]:
            chain.mint(token, holder, 500 + index)
    return holders


def _pace(sent: list[float], interval: float) -> str:
    """How evenly the requests left: the gaps between consecutive sends."""
    if len(sent) < 3:
        return "too few requests to judge the pace"
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    slow = [gap for gap in gaps if gap > 1.5 * interval]
    rate = (len(sent) - 1) / (sent[-1] - sent[0]) * 60
    return (
        f"pace {rate:.0f}/min; gaps median {statistics.median(gaps) * 1e3:.1f} ms, "
        f"max {max(gaps) * 1e3:.0f} ms, {len(slow)} over {1.5 * interval * 1e3:.0f} ms "
        f"({sum(g - interval for g in slow):.2f} s lost)"
    )


def _statuses(statuses: Counter[str], answered: list[tuple[float, int]], started: float) -> str:
    """Answers by status, and where the 429s came (answer number, seconds in)."""
    text = "answers by status: " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items()))
    refused = [(i + 1, at - started) for i, (at, code) in enumerate(answered) if code == 429]
    if refused:
        text += "; 429 at " + ", ".join(f"#{i} ({at:.1f} s)" for i, at in refused[:5])
    return text


async def _scheduler_sync(quick: bool) -> list[Result]:
    count = 100 if quick else 1000
    chain = FakeChain()
    holders = _holders(chain, count)
    chain.faults.latency = LATENCY
    chain.faults.rate_limit_per_minute = RATE_LIMIT
    retry = RetryPolicy(attempts=5, max_retry_after=90)
    sent: list[float] = []
    answered: list[tuple[float, int]] = []

    async def on_request(request: httpx.Request) -> None:
        sent.append(time.perf_counter())

    async def on_response(response: httpx.Response) -> None:
        answered.append((time.perf_counter(), response.status_code))

    blobs = KeyedMemoryStore()
    hooks: dict[str, list[Callable[[Any], Any]]] = {
        "request": [on_request],
        "response": [on_response],
    }
    async with (
        serve_fake_chain(chain) as server,
        httpx.AsyncClient(timeout=30, event_hooks=hooks) as http,
    ):
        client = StacksClient(http, server.url, requests_per_minute=RATE_LIMIT, retry=retry)
        async with BalanceService(_sync_config(), blobs=blobs, chain=client) as svc:
            for holder in holders:
                await svc.track(holder)
            scheduler = BalanceScheduler(svc, _sync_only())
            blobs.reset_counts()
            chain.reset_requests()
            sent.clear()
            answered.clear()
            started = time.perf_counter()
            runs = await scheduler.run_once()
            elapsed = time.perf_counter() - started
            await scheduler.release()
    if [run.task for run in runs] != ["sync"] or not runs[0].ok:
        raise RuntimeError(f"the scheduler did not run one good sync: {runs}")
    summary = runs[0].result
    if summary["synced"] != count or summary["planned"] != count:
        raise RuntimeError(f"the sync pass did not refresh every address: {summary}")
    requests = sum(chain.requests.values())
    tips = chain.requests[LATEST_BLOCK]
    statuses: Counter[str] = Counter()
    for (_, status), n in client.request_counts.items():
        statuses[status] += n
    refused = statuses["429"]
    bound = client.limiter.minimum_seconds(requests)
    segments, batches = blobs.puts["journal"], summary["batches"]
    return [
        Result(
            name=f"scheduler sync pass, {count:,} addresses, {RATE_LIMIT}/min, "
            f"{LATENCY * 1000:g} ms",
            figure=elapsed,
            unit="s",
            baseline=bound,
            baseline_name=f"limit bound, {requests} req",
            target=1.15,
            note=(
                f"{requests} requests: {requests - tips} balance, {tips} chain tip; "
                f"{_pace(sent, client.limiter.interval)}"
            ),
        ),
        Result(
            name=f"429s in the sync pass of {count:,} addresses",
            figure=refused,
            unit="req",
            target=0,
            note=_statuses(statuses, answered, started),
        ),
        Result(
            name=f"journal segments, sync pass of {count:,} addresses",
            figure=segments,
            unit="segments",
            baseline=batches,
            baseline_name=f"batches of {scheduler.batch_size}",
            target=1.0,
            note=f"{math.ceil(count / scheduler.batch_size)} batches planned; summary {summary}",
        ),
    ]


async def run(quick: bool) -> list[Result]:
    rows = await _bulk_series(quick)
    rows += await _scheduler_sync(quick)
    return rows
