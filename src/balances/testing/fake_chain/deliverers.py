"""Push senders that follow a FakeChain's journal and POST what it mined, as the real
senders do: Chainhook (``Authorization: Bearer <secret>``; a reorg is one delivery
with ``rollback`` and ``apply``) and a stacks-node's event observer (a reorg is
just the new fork's ``/new_block`` posts). Both retry a POST until it gets a 2xx
(the node does so forever; ``max_attempts`` bounds it for tests)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx

from balances.testing.fake_chain import chainhook_payloads, observer_payloads
from balances.testing.fake_chain.journal import (
    BlockApplied,
    ChainEvent,
    ChainReorg,
    MempoolAdded,
    MempoolDropped,
)

if TYPE_CHECKING:
    from balances.testing.fake_chain.ledger import FakeChain

Post = tuple[str, Any]  # (path, JSON body)


class DeliveryFailedError(RuntimeError):
    """A POST still failed after ``max_attempts``."""


class _Deliverer:
    def __init__(
        self, chain: FakeChain, url: str, *, retry_seconds: float = 0.05, max_attempts: int = 0
    ) -> None:
        self.chain = chain
        self.url = url.rstrip("/")
        self.position = len(chain.journal)  # what happened before we started is not sent
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts  # 0: retry until it succeeds, as a node does
        self.attempts = 0

    def headers(self) -> dict[str, str]:
        return {}

    def posts(self, entry: ChainEvent) -> list[Post]:
        raise NotImplementedError

    async def deliver_pending(self) -> int:
        """POST every journal entry not yet delivered; returns how many POSTs succeeded."""
        sent = 0
        async with httpx.AsyncClient(timeout=10.0) as client:
            while self.position < len(self.chain.journal):
                for path, body in self.posts(self.chain.journal.entries[self.position]):
                    await self._post(client, path, body)
                    sent += 1
                self.position += 1
        return sent

    async def run(self) -> None:
        """Follow the chain until cancelled."""
        while True:
            await self.deliver_pending()
            await self.chain.journal.wait_beyond(self.position)

    async def _post(self, client: httpx.AsyncClient, path: str, body: Any) -> None:
        tries = 0
        while True:
            tries += 1
            self.attempts += 1
            try:
                reply = await client.post(self.url + path, json=body, headers=self.headers())
                if 200 <= reply.status_code < 300:
                    return
            except httpx.TransportError:
                pass  # the receiver is down: try again, as the real senders do
            if self.max_attempts and tries >= self.max_attempts:
                raise DeliveryFailedError(f"POST {path} failed {tries} times")
            await asyncio.sleep(self.retry_seconds)


class ChainhookDeliverer(_Deliverer):
    def __init__(self, chain: FakeChain, url: str, secret: str, **options: Any) -> None:
        super().__init__(chain, url, **options)
        self.secret = secret

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def posts(self, entry: ChainEvent) -> list[Post]:
        if isinstance(entry, BlockApplied):
            return [("", chainhook_payloads.delivery(self.chain, (entry.block,)))]
        if isinstance(entry, ChainReorg):
            body = chainhook_payloads.delivery(self.chain, entry.applied, entry.orphaned)
            return [("", body)]
        return []  # Chainhook deliveries carry blocks only


class ObserverDeliverer(_Deliverer):
    def __init__(self, chain: FakeChain, url: str, **options: Any) -> None:
        super().__init__(chain, url, **options)
        self.last_burn_hash: str | None = None

    def posts(self, entry: ChainEvent) -> list[Post]:
        if isinstance(entry, BlockApplied):
            return self._block_posts((entry.block,))
        if isinstance(entry, ChainReorg):
            return self._block_posts(entry.applied)
        if isinstance(entry, MempoolAdded):
            found = (self.chain.pending_transaction(tx_id) for tx_id in entry.tx_ids)
            pending = [hit[0] for hit in found if hit is not None]
            return [("/new_mempool_tx", observer_payloads.new_mempool_tx(pending))]
        if isinstance(entry, MempoolDropped):
            body = observer_payloads.drop_mempool_tx(entry.tx_ids, entry.reason)
            return [("/drop_mempool_tx", body)]
        return []

    def _block_posts(self, blocks: Any) -> list[Post]:
        posts: list[Post] = []
        for block in blocks:
            if block.burn_block_hash != self.last_burn_hash:  # a node sends each burn block once
                self.last_burn_hash = block.burn_block_hash
                posts.append(("/new_burn_block", observer_payloads.new_burn_block(block)))
            posts.append(("/new_block", observer_payloads.new_block(self.chain, block)))
        return posts
