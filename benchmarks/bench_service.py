"""The balance service's read path and cache (issue 5's targets).

(a) Cached ``GET /balances/{address}/{tokenId}`` requests per second through uvicorn,
    against a raw ASGI app answering the same body bytes. Each runs in its own
    process (same uvicorn settings: h11, asyncio, no access log); the load comes
    from this process over 16 keep-alive connections, with a minimal HTTP/1.1
    client (httpx spends more per request than the bare server: it would measure
    itself). The service's cache is warmed, and the body taken, through the API
    itself, over a FakeChain served on loopback. Target: at least 0.7 of the bare rate.
(b) ``get_balances(address, 100 token ids)`` for 1,000 addresses from a warm cache
    (filled by real refreshes against an in-process ChainReader), against building
    the same ``Balance`` objects from plain dicts. Target: within 3x.
(c) Memory of the current-balance cache holding 10,000 addresses x 100 tokens,
    built as refreshes build them (``native_amounts`` of a listing, one ``Stamp``
    per refresh, :func:`~balances.domain.current.merge`), measured with tracemalloc.
    Target: 300 MB. Next to it, informational: the cache's own estimate
    (``size_of_balances``) against that measurement.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from balances.blobs import MemoryBlobStore
from balances.domain import Balance, Principal
from balances.domain.current import STX_KEY, AddressUpdate, Stamp, merge
from balances.service.balances import BalanceService
from balances.sync.syncer import native_amounts
from balances.testing import fake_address
from benchmarks.harness import Result
from benchmarks.service_fixtures import (
    LONG,
    TIP_HEIGHT,
    InProcessChain,
    drive,
    serve_in_process,
    service_config,
    token_asset,
    token_contract,
)

MB = 1e6
TOKENS = 100
CONNECTIONS = 16


# --- (a) requests per second through uvicorn ---------------------------------------


async def _warm_body(url: str, path: str) -> bytes:
    """Read once (a refresh from the chain), then again: the cached answer's bytes."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = await http.get(path)
        first.raise_for_status()
        cached = await http.get(path)
        cached.raise_for_status()
        again = await http.get(path)
    if cached.json()["source"] != "cache" or again.content != cached.content:
        raise RuntimeError(f"the service's answer is not a stable cache hit: {cached.text}")
    return cached.content


async def _requests_per_second(quick: bool) -> Result:
    requests, rounds = (400, 1) if quick else (3000, 3)
    holder, token = fake_address("bench-service-holder"), token_contract(0)
    path = f"/balances/{holder}/{token}"
    async with serve_in_process("service", holder, token) as service:
        body = await _warm_body(service.url, path)
        async with serve_in_process("bare", body.hex()) as bare:
            ours, theirs = [], []
            for _ in range(rounds):  # interleaved: a busy moment hits both
                ours.append(
                    await drive(service, path, body, requests=requests, connections=CONNECTIONS)
                )
                theirs.append(
                    await drive(bare, path, body, requests=requests, connections=CONNECTIONS)
                )
    best, bare_best = max(ours, key=lambda load: load.rps), max(theirs, key=lambda load: load.rps)
    return Result(
        name="cached GET /balances/{address}/{tokenId}",
        figure=best.rps,
        unit="req/s",
        baseline=bare_best.rps,
        baseline_name="raw ASGI, same bytes",
        target=0.7,
        lower_is_better=False,
        note=(
            f"{requests} req x {rounds} rounds, {CONNECTIONS} keep-alive conns, "
            f"{len(body)} B body; server CPU {best.server_cpu:.0%} vs {bare_best.server_cpu:.0%}"
        ),
    )


# --- (b) reading a warm cache ----------------------------------------------------------


def _addresses(count: int, label: str) -> list[str]:
    return [fake_address(f"{label}-{index}") for index in range(count)]


async def _warm_service(addresses: Sequence[str], token_ids: Sequence[str]) -> BalanceService:
    chain = InProcessChain(TOKENS)
    config = service_config(cache_max_addresses=len(addresses) + 1, track_on_read=False)
    svc = BalanceService(config, blobs=MemoryBlobStore(), chain=chain)
    # Real refreshes (plan, merge, store, then the cache): a read of one token reads
    # the whole listing, so the cache then covers every token.
    for address in addresses:
        await svc.get_balances(address, token_ids[:1])
    await svc.get_balances(addresses[0], token_ids)  # every token's metadata is wanted
    await svc.metadata_settled()  # and read in the background: answers are then complete
    answers = await svc.get_balances(addresses[0], token_ids)
    if any(b.metadata != "known" for b in answers):
        raise RuntimeError("the token metadata is not known after it settled")
    if svc.cache.stats().entries != len(addresses) or answers[0].source != "cache":
        raise RuntimeError(f"the cache is not warm: {svc.cache.stats()}")
    return svc


def _plain_answers(
    amounts: dict[str, dict[str, int]],
    stamps: dict[str, tuple[float, int | None]],
    tokens: dict[str, tuple[int | None, str | None]],
    token_ids: Sequence[str],
    stale_after: float,
) -> list[Balance]:
    """The same Balance objects from plain dicts: what the answers cost at the least.
    Returns the last address's answers."""
    now = time.time()
    answers: list[Balance] = []
    for address, held in amounts.items():
        at, height = stamps[address]
        updated, stale = datetime.fromtimestamp(at, UTC), now - at > stale_after
        answers = []
        for token_id in token_ids:
            decimals, symbol = tokens[token_id]
            answers.append(
                Balance(
                    address=address,
                    token_id=token_id,
                    amount=held[token_id],
                    decimals=decimals,
                    updated_at=updated,
                    block_height=height,
                    source="cache",
                    stale=stale,
                    symbol=symbol,
                )
            )
    return answers


async def _warm_reads(quick: bool) -> Result:
    count, repeat = (100, 2) if quick else (1000, 2)
    addresses = _addresses(count, "bench-reader")
    token_ids = [token_contract(i) for i in range(TOKENS)]
    svc = await _warm_service(addresses, token_ids)
    async with svc:
        # The plain dicts hold what the cache holds, and both build equal answers.
        amounts: dict[str, dict[str, int]] = {}
        stamps: dict[str, tuple[float, int | None]] = {}
        for address in addresses:
            cached = svc.cache.get(address)
            assert cached is not None
            amounts[address] = {key: cached.tokens[key].amount for key in token_ids}
            stamp = cached.tokens[token_ids[0]].stamp
            stamps[address] = (stamp.at, stamp.block_height)
        last = addresses[-1]
        answers = await svc.get_balances(last, token_ids)
        tokens = {b.token_id: (b.decimals, b.symbol) for b in answers}
        plain = _plain_answers({last: amounts[last]}, stamps, tokens, token_ids, LONG)
        if plain != answers:
            raise RuntimeError("the plain answers differ from the service's")
        ours = theirs = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            for address in addresses:
                await svc.get_balances(address, token_ids)
            ours = min(ours, time.perf_counter() - started)
            started = time.perf_counter()
            _plain_answers(amounts, stamps, tokens, token_ids, LONG)
            theirs = min(theirs, time.perf_counter() - started)
    return Result(
        name=f"get_balances, {count:,} addresses x {TOKENS} tokens, warm cache",
        figure=ours,
        unit="s",
        baseline=theirs,
        baseline_name="Balance objects from dicts",
        target=3.0,
        note=f"{ours / (count * TOKENS) * 1e6:.1f} us per balance; best of {repeat}",
    )


# --- (c) cache memory --------------------------------------------------------------


def _traced_fill(svc: BalanceService, addresses: Sequence[str], tokens: int) -> int:
    """Bytes still allocated after putting ``addresses`` into the cache, each with
    ``tokens`` tokens (STX and ``tokens - 1`` natives) as one refresh reads them."""
    wall = time.time()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index, text in enumerate(addresses):
            held = {token_asset(i): 1_000_000_007 + index + i for i in range(tokens - 1)}
            amounts = native_amounts(held)
            amounts[STX_KEY] = (5_000_000 + index, "stx")
            stamp = Stamp(wall + index / 1000, TIP_HEIGHT + index // 100)
            # The update's address and the cache key are two strings, as in the service.
            update = AddressUpdate(str(Principal.parse(text)), stamp, amounts, True)
            balances = merge(None, update).balances
            svc.cache.put(str(Principal.parse(text)), balances)
        del held, amounts, stamp, update, balances
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _big_cache_service(entries: int) -> BalanceService:
    """A service whose cache holds ``entries`` addresses without evicting any (the
    default bound, 256 MB by the estimate, would evict)."""
    config = service_config(cache_max_addresses=entries + 1, cache_max_mb=100_000)
    return BalanceService(config, blobs=MemoryBlobStore(), chain=InProcessChain(TOKENS))


async def _cache_memory(quick: bool) -> list[Result]:
    full, few = 10_000, 2_000
    count = 1_000 if quick else full
    addresses = _addresses(count, "bench-memory")
    async with _big_cache_service(count) as svc:
        measured = _traced_fill(svc, addresses, TOKENS) * (full / count)
        stats = svc.cache.stats()
        if stats.entries != count or stats.evictions or stats.rejections:
            raise RuntimeError(f"the cache did not keep every address: {stats}")
        estimate = stats.bytes * (full / count)
    # The same with 10 tokens an address separates the per-address cost.
    small = _addresses(few // (10 if quick else 2), "bench-memory-small")
    async with _big_cache_service(len(small)) as svc:
        small_bytes = _traced_fill(svc, small, 10) / len(small)
    per_token = (measured / full - small_bytes) / (TOKENS - 10)
    per_address = measured / full - TOKENS * per_token
    scaled = "" if count == full else f" (measured {count:,}, scaled x{full // count})"
    return [
        Result(
            name=f"cache memory, {full:,} addresses x {TOKENS} tokens",
            figure=measured / MB,
            unit="MB",
            target=300,
            note=f"tracemalloc, cache limits raised so nothing is evicted{scaled}",
        ),
        Result(
            name="cache size estimate (size_of_balances)",
            figure=estimate / MB,
            unit="MB",
            baseline=measured / MB,
            baseline_name="tracemalloc",
            note=f"measured: {per_address:.0f} B/address + {per_token:.0f} B/token",
        ),
    ]


async def run(quick: bool) -> list[Result]:
    rows = [await _requests_per_second(quick), await _warm_reads(quick)]
    rows += await _cache_memory(quick)
    return rows
