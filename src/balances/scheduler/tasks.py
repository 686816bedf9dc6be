"""What one run of each scheduled task does, and the pure planning of a sync pass.

**sync** keeps every tracked address fresh. A pass orders the addresses *most
stale first* by the freshest read time known (never read first), and plans as
many as the chain client's rate limit allows over one sync interval: an address
refresh costs about ``2 + map tokens`` requests (STX, the native listing, one
call-read per map-based token; see DESIGN.md section 6). The rest wait for the
next pass; most stale first makes that fair, since they lead the next one. Planned
addresses are refreshed in batches through ``Syncer.refresh_many``, one journal
segment per batch. Read times are remembered between passes (:class:`ReadTimes`),
so a pass asks the store only about addresses it has not seen yet.

With block ingestion running, a pass only *anchors*: it reads the tracked
addresses ingestion does not vouch for yet (newly tracked, or all of them after a
fall back), stores every read's height (``confirm``), and leaves the rest to the
blocks: an address that no block touches costs nothing.

**prices** records USD prices (``BalanceService.sync_prices``), **maintain** runs
the layout's compaction, daily rollups and retention (idempotent, so a repeated run
costs reads but changes nothing), and **aggregates** precomputes the portfolio
histories of every tracked address for each configured period.

Each task returns a small summary (stored with its run in ``scheduler/state``) and
raises when it achieved nothing, so the scheduler backs off and retries it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from balances.chain.ratelimit import RateLimiter
from balances.domain import Principal, TokenId
from balances.domain.current import LISTING_KEY, STX_KEY
from balances.errors import BalancesError
from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI
from balances.stores.tracked import TrackedAddress
from balances.sync.syncer import SyncOutcome

#: Requests every address refresh makes whatever it holds: STX and the native listing.
BASE_REQUESTS = 2


# --- planning (pure) -----------------------------------------------------------


def most_stale_first(addresses: Sequence[str], newest: Mapping[str, float | None]) -> list[str]:
    """Never-read addresses first, then by oldest read; ties keep the given order."""
    return sorted(addresses, key=lambda a: (newest.get(a) is not None, newest.get(a) or 0.0))


def request_budget(requests_per_minute: float | None, seconds: float, share: float) -> int | None:
    """Requests ``share`` of the limit allows in ``seconds`` (None: no limit)."""
    if requests_per_minute is None or math.isinf(requests_per_minute):
        return None
    return int(requests_per_minute * seconds / 60.0 * share)


def plan_within(
    ordered: Sequence[str], costs: Mapping[str, int], budget: int | None
) -> tuple[list[str], list[str]]:
    """(planned, left): the longest prefix of ``ordered`` whose requests fit ``budget``.

    A prefix, not the best fit: skipping a costly stale address for cheaper fresher
    ones would starve it. The first address is always planned, so a budget smaller
    than one refresh still makes progress.
    """
    if budget is None:
        return list(ordered), []
    spent = 0
    for index, address in enumerate(ordered):
        spent += costs.get(address, BASE_REQUESTS)
        if spent > budget and index > 0:
            return list(ordered[:index]), list(ordered[index:])
    return list(ordered), []


def requests_per_address(
    entry_tokens: Sequence[str], map_tokens: Sequence[str], kinds: Mapping[str, str | None]
) -> int:
    """``2 +`` the map-based tokens read for an address: the network's known ones, and
    its tracked tokens that are map-based or of a kind not known yet (counted, to be
    safe)."""
    read = set(map_tokens)
    read.update(token for token in entry_tokens if kinds.get(token) in (None, "map"))
    return BASE_REQUESTS + len(read)


# --- sync ------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    synced: int = 0
    partial: int = 0
    failed: int = 0
    error: BalancesError | None = None

    def count(self, outcome: SyncOutcome) -> None:
        core = outcome.store_error or next(
            (outcome.errors[k] for k in (STX_KEY, LISTING_KEY) if k in outcome.errors), None
        )
        if core is not None:
            self.failed += 1
            self.error = self.error or core
        elif outcome.errors:
            self.partial += 1
        else:
            self.synced += 1


def chain_rate(service: BalanceService) -> float | None:
    """The chain client's limit in requests per minute (None: none known)."""
    limiter = getattr(service.chain, "limiter", None)
    return limiter.requests_per_minute if isinstance(limiter, RateLimiter) else None


class ReadTimes:
    """The freshest read time known of each tracked address, kept between passes.

    The store is asked once per address (``load_many``; with the spec layout that is
    one GET per address, too dear to repeat every pass); after that, each pass's own
    refreshes and the service's cache (reads on demand) keep the times current.
    Another replica's reads on demand are not seen: such an address only comes up a
    little earlier than needed, which costs requests, never freshness.
    """

    def __init__(self) -> None:
        self._known: dict[str, float | None] = {}

    def forget(self) -> None:
        """Ask the store again (a new leader, after another one ran the passes)."""
        self._known.clear()

    async def of(
        self, service: BalanceService, principals: Sequence[Principal]
    ) -> dict[str, float | None]:
        """The freshest read time of each address (None: never read)."""
        unknown = [p for p in principals if str(p) not in self._known]
        if unknown:
            stored = await service.current.load_many(unknown)
            for principal in unknown:
                view = stored.get(str(principal))
                self._known[str(principal)] = None if view is None else view.newest
        self._known = {str(p): self._known[str(p)] for p in principals}  # untracked: gone
        newest: dict[str, float | None] = {}
        for key, known in self._known.items():
            cached = service.cache.peek(key)
            newest[key] = _latest(known, None if cached is None else cached[0].newest)
        return newest

    def saw(self, outcome: SyncOutcome) -> None:
        if outcome.store_error is None:
            key = outcome.address
            self._known[key] = _latest(self._known.get(key), outcome.balances.newest)


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _costs(service: BalanceService, entries: Sequence[TrackedAddress]) -> dict[str, int]:
    kinds: dict[str, str | None] = {}
    for token in {token for entry in entries for token in entry.tokens}:
        try:
            info = service.catalog.peek(TokenId.parse(token))
        except BalancesError:
            info = None
        kinds[token] = None if info is None else info.kind
    map_tokens = service.config.map_tokens
    return {e.address: requests_per_address(e.tokens, map_tokens, kinds) for e in entries}


async def sync_pass(
    service: BalanceService,
    read_times: ReadTimes,
    *,
    batch_size: int,
    interval: float,
    share: float,
) -> dict[str, Any]:
    """Refresh the most stale tracked addresses the rate limit allows; see the module
    docstring. Raises the first error when every planned address failed."""
    entries = await service.tracked_addresses()
    principals = {entry.address: Principal.parse(entry.address) for entry in entries}
    ingestion = service.ingestion if service.ingestion and service.ingestion.running else None
    wanted = list(principals.values())
    if ingestion is not None:
        wanted = await ingestion.uncovered(wanted)
    newest = await read_times.of(service, wanted)
    ordered = most_stale_first([str(p) for p in wanted], newest)
    budget = request_budget(chain_rate(service), interval, share)
    planned, left = plan_within(ordered, _costs(service, entries), budget)
    tally = _Tally()
    batches = 0
    for start in range(0, len(planned), batch_size):
        batch = [principals[address] for address in planned[start : start + batch_size]]
        batches += 1
        await _refresh_batch(service, batch, tally, read_times, confirm=ingestion is not None)
    if planned and tally.failed == len(planned) and tally.error is not None:
        raise tally.error
    return {
        "mode": "poll" if ingestion is None else "anchor",
        "tracked": len(principals),
        "covered": len(principals) - len(ordered),
        "planned": len(planned),
        "synced": tally.synced,
        "partial": tally.partial,
        "failed": tally.failed,
        "skipped": len(left),
        "batches": batches,
        "request_budget": budget,
    }


async def _refresh_batch(
    service: BalanceService,
    batch: list[Principal],
    tally: _Tally,
    read_times: ReadTimes,
    *,
    confirm: bool = False,
) -> None:
    """One ``refresh_many`` (one journal segment); the cache forgets the old views."""
    try:
        outcomes = await service.syncer.refresh_many(batch, confirm=confirm)
    except BalancesError as error:
        tally.failed += len(batch)
        tally.error = tally.error or error
        return
    finally:
        for principal in batch:
            service.cache.invalidate(str(principal))
    for outcome in outcomes:
        tally.count(outcome)
        read_times.saw(outcome)


# --- the hourly tasks --------------------------------------------------------------


async def record_prices(service: BalanceService) -> dict[str, Any]:
    if service.price_source is None:
        return {"changed": 0, "price_source": False}
    return {"changed": await service.sync_prices(), "price_source": True}


async def maintain(service: BalanceService) -> dict[str, Any]:
    report = await service.layout.maintain()
    # A process killed mid-write leaves its temp file (a local store's); nothing else
    # removes it. Only old ones go: a younger one may be a live writer's.
    sweep = getattr(service.backend, "remove_stale_temp_files", None)
    return {
        "segments_folded": report.segments_folded,
        "blobs_written": report.blobs_written,
        "blobs_deleted": report.blobs_deleted,
        "temp_files_removed": 0 if sweep is None else await sweep(),
        "notes": list(report.notes)[:10],
    }


async def generate_aggregates(
    series_api: BalanceSeriesAPI, periods: Sequence[str]
) -> dict[str, Any]:
    """Every tracked address's portfolio for each period, in requests the bulk API
    accepts (``api.max_bulk_items`` addresses each)."""
    service = series_api.service
    addresses = [entry.address for entry in await service.tracked_addresses()]
    summary: dict[str, Any] = {"addresses": len(addresses), "errors": 0}
    chunk = service.config.api.max_bulk_items
    first_error: BalancesError | None = None
    generated = 0
    for period in periods if addresses else ():
        summary[period] = 0
        for start in range(0, len(addresses), chunk):
            answer = await series_api.generate_aggregated_data(
                addresses[start : start + chunk], period
            )
            summary[period] += len(answer["generated"])
            summary["errors"] += len(answer["errors"])
            first_error = first_error or next((e.error for e in answer["errors"]), None)
        generated += summary[period]
    if generated == 0 and first_error is not None:
        raise first_error
    return summary
