"""Delivering the change feed to webhook subscriptions: signed, at least once, in order.

The replica that writes the feed delivers. Each active subscription has a worker
that reads the feed after its cursor, POSTs the changes matching its filter as one
signed batch, and moves its cursor on only after a 2xx answer: a change is never
skipped, and one may arrive twice (after a retry or a restart), so receivers
deduplicate by ``seq``. A failed delivery is retried with exponential backoff and
jitter; after ``max_failures`` failures in a row the subscription is *dead*
(dead-lettered: no more attempts until it is revived).

Cursors are written to the store in one document write per ``save_seconds`` for
all subscriptions together (and at once on a dead-letter or a stop), so a restart
resumes where deliveries stopped, give or take the last few seconds' batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import httpx
import orjson

from balances.config import WebhookConfig
from balances.domain.feed import FeedEntry, FeedFilter
from balances.domain.webhooks import SIGNATURE_HEADER, Webhook, sign
from balances.errors import (
    BalancesError,
    FeedGoneError,
    RequestTooLargeError,
    ValidationError,
    quoted,
)
from balances.service.destinations import (
    PrivateDestinationError,
    check_destination,
    check_literal_host,
)
from balances.stores.feed import ChangeFeed
from balances.stores.webhooks import Progress, WebhookRegistry

log = logging.getLogger("balances.webhooks")
USER_AGENT = "balances-webhooks/1"
#: How long an idle worker waits before it looks at the feed anyway.
IDLE_RECHECK = 30.0


@dataclass(slots=True)
class DeliveryStats:
    """Counters of this process's deliveries (``/metrics``)."""

    delivered_batches: int = 0
    delivered_changes: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0


def backoff_delay(
    failures: int, base: float, ceiling: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number ``failures``: ``base * 2**(failures-1)`` capped at
    ``ceiling``, of which a random half (so retries of many receivers spread out)."""
    delay = min(ceiling, base * 2.0 ** max(0, failures - 1))
    return delay / 2 + rng() * delay / 2


def delivery_body(hook_id: str, entries: Sequence[FeedEntry]) -> bytes:
    return orjson.dumps(
        {
            "webhook": hook_id,
            "delivery": f"{hook_id}:{entries[0].seq}-{entries[-1].seq}",
            "changes": [entry.to_json() for entry in entries],
        }
    )


class _DeliveryFailedError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class WebhookDispatcher:
    """Workers for the active subscriptions while this process writes the feed."""

    def __init__(
        self,
        feed: ChangeFeed,
        registry: WebhookRegistry,
        settings: WebhookConfig,
        *,
        http: httpx.AsyncClient | None = None,
        wall_clock: Callable[[], float] = time.time,
        save_seconds: float = 2.0,
        reload_seconds: float = 10.0,
        concurrency: int = 32,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.feed = feed
        self.registry = registry
        self.settings = settings
        self.stats = DeliveryStats()
        self._http = http
        self._own_http = http is None
        self.wall_clock = wall_clock
        self._save_seconds = save_seconds
        self._reload_seconds = reload_seconds
        self._sending = asyncio.Semaphore(concurrency)
        self.rng = rng
        self._workers: dict[str, _Worker] = {}
        self._progress: dict[str, Progress] = {}
        self._save_lock = asyncio.Lock()
        self._reload = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None

    # --- running ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._unlisten = self.feed.hub.listen(self._published)
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._unlisten is not None:
            self._unlisten()
        await self._stop_workers()
        await self.save()
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def reload(self) -> None:
        """Look at the subscriptions again now (one was added, deleted or revived)."""
        self._reload.set()

    @property
    def active(self) -> int:
        """Subscriptions being delivered here."""
        return len(self._workers)

    async def _run(self) -> None:
        saved_at = reloaded_at = -float("inf")
        while True:
            now = time.monotonic()
            try:
                if not self.feed.writing:
                    await self._stop_workers()  # another replica delivers
                elif self._reload.is_set() or now - reloaded_at >= self._reload_seconds:
                    forced = self._reload.is_set()
                    self._reload.clear()
                    await self._reconcile(fresh=forced)
                    reloaded_at = now
                if now - saved_at >= self._save_seconds:
                    await self.save()
                    saved_at = now
            except BalancesError as error:
                log.warning("webhook bookkeeping failed (will retry): %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload.wait(), min(1.0, self._save_seconds))

    async def _reconcile(self, *, fresh: bool) -> None:
        hooks = {hook.id: hook for hook in await self.registry.all(fresh=fresh)}
        for hook_id in [h for h in self._workers if h not in hooks or hooks[h].state != "active"]:
            await self._workers.pop(hook_id).stop()
        for hook in hooks.values():
            done = self._progress.get(hook.id)
            if hook.state != "active" or hook.id in self._workers or (done and done.dead):
                continue
            start = max(hook.cursor, done.cursor if done else 0)
            worker = _Worker(self, hook, start)
            self._workers[hook.id] = worker
            worker.start()

    async def _stop_workers(self) -> None:
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            await worker.stop()

    # --- bookkeeping -----------------------------------------------------------------

    def _published(self, entries: Sequence[FeedEntry]) -> None:
        for worker in self._workers.values():
            worker.offered(entries)

    def forget(self, hook_id: str) -> None:
        """A worker that ended itself (dead-lettered)."""
        self._workers.pop(hook_id, None)

    def note(self, hook_id: str, progress: Progress) -> None:
        """Merge a worker's progress into what the next save writes."""
        before = self._progress.get(hook_id)
        if before is not None:
            progress = replace(
                progress,
                cursor=max(before.cursor, progress.cursor),
                delivered=before.delivered + progress.delivered,
                at=progress.at or before.at,
            )
        self._progress[hook_id] = progress

    async def save(self) -> None:
        """Write the progress noted since the last save (one document write)."""
        async with self._save_lock:
            progress, self._progress = self._progress, {}
            try:
                await self.registry.record(progress)
            except BalancesError:
                for hook_id, done in progress.items():  # kept for the next save
                    self._progress.setdefault(hook_id, done)
                raise

    def client(self) -> httpx.AsyncClient:
        if self._http is None:
            timeout = httpx.Timeout(self.settings.timeout_seconds)
            self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return self._http

    async def post(self, hook: Webhook, entries: Sequence[FeedEntry]) -> None:
        """One signed delivery; raises _DeliveryFailedError unless the receiver answered 2xx."""
        body = delivery_body(hook.id, entries)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "balances-webhook": hook.id,
            SIGNATURE_HEADER: sign(hook.secret, int(self.wall_clock()), body),
        }
        async with self._sending:
            try:
                if not self.settings.allow_private_urls:
                    await check_destination(hook.url)
                response = await self.client().post(hook.url, content=body, headers=headers)
            except PrivateDestinationError as refused:
                raise _DeliveryFailedError(str(refused)) from refused
            except httpx.HTTPError as error:
                raise _DeliveryFailedError(
                    f"{type(error).__name__}: {error}".rstrip(": ")
                ) from error
        if not response.is_success:
            raise _DeliveryFailedError(f"HTTP {response.status_code}", _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isascii() and value.isdigit() else None


class _Worker:
    """Deliveries of one subscription, one batch at a time, in feed order."""

    def __init__(self, dispatcher: WebhookDispatcher, hook: Webhook, position: int) -> None:
        self._dispatcher = dispatcher
        self.hook = hook
        self.filter = FeedFilter.of(hook.addresses, hook.tokens)
        self.position = position
        self.failures = hook.failures
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._idle = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def offered(self, entries: Sequence[FeedEntry]) -> None:
        """New entries: wake up for a match; an idle worker skips past the rest."""
        skippable = self._idle and entries[0].seq == self.position + 1
        if skippable and not any(self.filter.matches(entry) for entry in entries):
            self.position = entries[-1].seq
            self._dispatcher.note(self.hook.id, Progress(self.position))
            return
        self._wake.set()

    async def _run(self) -> None:
        dispatcher, settings = self._dispatcher, self._dispatcher.settings
        while True:
            self._wake.clear()
            try:
                page = await dispatcher.feed.read_after(self.position, settings.batch_size)
            except FeedGoneError as error:
                await self._dead(f"its position is no longer in the feed: {error}")
                return
            matching = [entry for entry in page.entries if self.filter.matches(entry)]
            if matching and not await self._deliver(matching):
                if self.failures >= settings.max_failures:
                    last = f" (the last: {self.last_error})" if self.last_error else ""
                    await self._dead(f"{self.failures} deliveries failed in a row{last}")
                    return
                continue
            if page.end is not None and page.end > self.position:
                self.position = page.end
                at = dispatcher.wall_clock() if matching else None
                dispatcher.note(self.hook.id, Progress(self.position, len(matching), at))
            if page.stopped:
                continue
            self._idle = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_RECHECK)
            self._idle = False

    async def _deliver(self, entries: list[FeedEntry]) -> bool:
        """POST one batch; on failure note it and wait out the backoff."""
        dispatcher, settings = self._dispatcher, self._dispatcher.settings
        try:
            await dispatcher.post(self.hook, entries)
        except _DeliveryFailedError as failure:
            self.failures += 1
            dispatcher.stats.failed_attempts += 1
            reason = self.last_error = str(failure)
            dispatcher.note(
                self.hook.id, Progress(self.position, failures=self.failures, error=reason)
            )
            log.info(
                "webhook %s: delivery failed (%s), attempt %d", self.hook.id, reason, self.failures
            )
            if self.failures < settings.max_failures:
                delay = backoff_delay(
                    self.failures,
                    settings.backoff_seconds,
                    settings.backoff_max_seconds,
                    dispatcher.rng,
                )
                if failure.retry_after is not None:
                    delay = min(settings.backoff_max_seconds, max(delay, failure.retry_after))
                await asyncio.sleep(delay)
            return False
        self.failures = 0
        dispatcher.stats.delivered_batches += 1
        dispatcher.stats.delivered_changes += len(entries)
        return True

    async def _dead(self, reason: str) -> None:
        dispatcher = self._dispatcher
        dispatcher.stats.dead_lettered += 1
        log.warning("webhook %s is dead-lettered: %s", self.hook.id, reason)
        dispatcher.note(
            self.hook.id, Progress(self.position, failures=self.failures, error=reason, dead=True)
        )
        dispatcher.forget(self.hook.id)
        try:
            await dispatcher.save()
        except BalancesError as error:
            log.warning("webhook %s: its dead state is saved later (%s)", self.hook.id, error)


class Webhooks:
    """Webhook subscriptions of a service: create, list, delete, revive, and their
    deliveries (:attr:`dispatcher`, running where the feed is written)."""

    def __init__(
        self,
        feed: ChangeFeed,
        registry: WebhookRegistry,
        settings: WebhookConfig,
        *,
        max_addresses: int,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._feed = feed
        self.registry = registry
        self.settings = settings
        self._max_addresses = max_addresses
        self._wall = wall_clock
        self.dispatcher = WebhookDispatcher(feed, registry, settings, wall_clock=wall_clock)

    async def create(
        self,
        url: str,
        addresses: Sequence[str] = (),
        tokens: Sequence[str] = (),
        *,
        secret: str | None = None,
        after: int | None = None,
    ) -> Webhook:
        """A new subscription delivering the changes after ``after`` (None: from now)
        that match the filter, to ``url`` (http or https). The secret signs the
        deliveries; one is made when none is given (at least 16 characters)."""
        where = FeedFilter.checked(
            addresses, tokens, max_addresses=self._max_addresses, skip_blanks=False
        )
        checked = check_url(url)
        if not self.settings.allow_private_urls:
            check_literal_host(checked)
        hook = Webhook(
            id=f"wh_{secrets.token_hex(8)}",
            url=checked,
            secret=check_secret(secret) if secret is not None else secrets.token_urlsafe(32),
            created_at=self._wall(),
            cursor=after if after is not None else await self._now(),
            addresses=tuple(sorted(where.addresses)),
            tokens=tuple(sorted(where.tokens)),
        )
        try:
            await self.registry.add(hook, limit=self.settings.max_subscriptions)
        except ValueError as error:
            raise RequestTooLargeError(str(error)) from error
        self.dispatcher.reload()
        return hook

    async def list(self) -> list[Webhook]:
        return await self.registry.all(fresh=True)

    async def get(self, webhook_id: str) -> Webhook:
        return await self.registry.get(webhook_id)

    async def delete(self, webhook_id: str) -> None:
        await self.registry.delete(webhook_id)
        self.dispatcher.reload()

    async def revive(self, webhook_id: str, *, skip: bool = False) -> Webhook:
        """Deliver to a dead-lettered subscription again: from its cursor, or (``skip``)
        from now, leaving out what it missed."""
        cursor = await self._now() if skip else None
        hook = await self.registry.revive(webhook_id, cursor)
        self.dispatcher.reload()
        return hook

    async def _now(self) -> int:
        return self._feed.last_seq or await self._feed.reader.last_written()


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host (ValidationError otherwise)."""
    try:
        printable = url.isascii() and url.isprintable() and " " not in url
        parsed = httpx.URL(url) if printable and len(url) <= 2000 else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationError(f"a webhook URL is an absolute http(s) URL, not {quoted(url)}")
    return str(parsed)


def check_secret(secret: str) -> str:
    if not (16 <= len(secret) <= 256) or not secret.isascii() or not secret.isprintable():
        raise ValidationError("a webhook secret is 16 to 256 printable ASCII characters")
    return secret
