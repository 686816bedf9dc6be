"""The webhook subscriptions of a store, with their cursors: one shared document.

Every replica may add or delete a subscription (the keyed routes); the replica that
writes the change feed delivers and advances the cursors. All of them change the
one document ``<prefix>/webhooks/subscriptions`` by conditional writes, so no
update is lost, and a cursor never moves back.

The document holds each subscription's secret (it signs the deliveries): whoever
can read the bucket can forge deliveries, as with any stored credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import orjson

from balances.blobs import BlobStore
from balances.domain.webhooks import Webhook, decode_webhook
from balances.errors import CorruptBlobError, WebhookNotFoundError
from balances.stores.document import SharedDocument

FORMAT = 1


def webhooks_key(prefix: str) -> str:
    return f"{prefix}/webhooks/subscriptions"


@dataclass(frozen=True, slots=True)
class Progress:
    """What a delivery round did for one subscription."""

    cursor: int
    delivered: int = 0
    at: float | None = None
    #: Consecutive failed attempts (0 after a success) and the last error.
    failures: int = 0
    error: str | None = None
    dead: bool = False


def _encode(hooks: dict[str, Webhook]) -> bytes:
    items = [hook.to_json() for hook in sorted(hooks.values(), key=lambda h: h.created_at)]
    return orjson.dumps({"format": FORMAT, "webhooks": items})


def _decode(data: bytes, key: str) -> dict[str, Webhook]:
    try:
        document = orjson.loads(data)
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
        hooks = [decode_webhook(item) for item in document["webhooks"]]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CorruptBlobError(f"{key}: not a webhook list ({error})", key=key) from error
    return {hook.id: hook for hook in hooks}


class WebhookRegistry:
    """Subscriptions by id, read and changed through one :class:`SharedDocument`."""

    def __init__(
        self,
        blobs: BlobStore,
        prefix: str,
        *,
        recheck_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._document: SharedDocument[dict[str, Webhook]] = SharedDocument(
            blobs,
            webhooks_key(prefix),
            empty=dict,
            encode=_encode,
            decode=_decode,
            recheck_seconds=recheck_seconds,
            clock=clock,
        )

    async def all(self, *, fresh: bool = False) -> list[Webhook]:
        """Every subscription, oldest first (``fresh``: re-check the blob now)."""
        if fresh:
            self._document.invalidate()
        hooks = await self._document.current()
        return sorted(hooks.values(), key=lambda h: h.created_at)

    def held(self) -> list[Webhook]:
        """The subscriptions as last read, without I/O (for metrics)."""
        return list((self._document.peek() or {}).values())

    async def get(self, webhook_id: str) -> Webhook:
        self._document.invalidate()
        found = (await self._document.current()).get(webhook_id)
        if found is None:
            raise WebhookNotFoundError(f"no webhook subscription {webhook_id!r}")
        return found

    async def add(self, hook: Webhook, *, limit: int) -> Webhook:
        """Store a new subscription; ValueError when ``limit`` are stored already."""
        full = False

        def insert(hooks: dict[str, Webhook]) -> dict[str, Webhook] | None:
            nonlocal full
            full = len(hooks) >= limit
            return None if full else {**hooks, hook.id: hook}

        await self._document.update(insert)
        if full:
            raise ValueError(f"at most {limit} webhook subscriptions are kept; delete one first")
        return hook

    async def delete(self, webhook_id: str) -> None:
        def remove(hooks: dict[str, Webhook]) -> dict[str, Webhook] | None:
            if webhook_id not in hooks:
                raise WebhookNotFoundError(f"no webhook subscription {webhook_id!r}")
            return {key: hook for key, hook in hooks.items() if key != webhook_id}

        await self._document.update(remove)

    async def revive(self, webhook_id: str, cursor: int | None = None) -> Webhook:
        """Make a dead subscription active again, from its cursor (or ``cursor``)."""

        def wake(hooks: dict[str, Webhook]) -> dict[str, Webhook]:
            hook = hooks.get(webhook_id)
            if hook is None:
                raise WebhookNotFoundError(f"no webhook subscription {webhook_id!r}")
            moved = hook.cursor if cursor is None else max(hook.cursor, cursor)
            woken = replace(hook, state="active", failures=0, last_error=None, cursor=moved)
            return {**hooks, webhook_id: woken}

        return (await self._document.update(wake))[webhook_id]

    async def record(self, progress: Mapping[str, Progress]) -> None:
        """Store the delivery rounds' outcomes in one write (subscriptions deleted
        meanwhile are skipped; cursors only move forward)."""
        if not progress:
            return

        def apply(hooks: dict[str, Webhook]) -> dict[str, Webhook]:
            changed = dict(hooks)
            for webhook_id, done in progress.items():
                hook = hooks.get(webhook_id)
                if hook is not None:
                    changed[webhook_id] = _progressed(hook, done)
            return changed

        await self._document.update(apply)


def _progressed(hook: Webhook, done: Progress) -> Webhook:
    moved = hook.advanced(done.cursor, done.delivered, done.at)
    if done.failures or done.dead:
        moved = replace(
            moved,
            failures=done.failures,
            last_error=done.error,
            state="dead" if done.dead else moved.state,
        )
    return moved
