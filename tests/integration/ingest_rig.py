"""The ingestion rig of the integration tests (imported explicitly, not a conftest).

A :class:`~balances.testing.BlockProducer` mines blocks on the stand-in (served over
loopback); a BalanceService on the sharded layout ingests them with the pull
source (:func:`push_rig_on`: then a push source, delivered over HTTP by the
stand-in's senders). :meth:`Rig.differences` compares every tracked balance with
the ledger.
:class:`AddressRequests` counts the client's requests by the address they read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from conftest_client import stacks_client
from service_helpers import Clocks, config, shared_server

from balances.api import create_app
from balances.blobs import BlobStore, MemoryBlobStore
from balances.chain.clarity import to_hex
from balances.chain.inputs import clarity_principal
from balances.domain import Principal
from balances.service.balances import BalanceService
from balances.service.ingest import Ingestion
from balances.testing import BlockProducer, FakeChain, FakeChainServer, fake_address
from balances.testing.fake_chain.deliverers import ChainhookDeliverer, ObserverDeliverer

POPULATION = [fake_address(f"ingest-pull-{i}") for i in range(40)]


class AddressRequests:
    """An httpx response hook counting requests by the watched address they name
    (in the path, or as a ``call-read`` argument), with the requests themselves."""

    def __init__(self, addresses: Sequence[str] = ()) -> None:
        self.by_address: Counter[str] = Counter()
        self.log: dict[str, list[str]] = {}
        self._hex: dict[str, str] = {}
        self.watch(addresses)

    def watch(self, addresses: Sequence[str]) -> None:
        for address in addresses:
            self._hex[address] = to_hex(clarity_principal(Principal.parse(address)))

    async def __call__(self, response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        body = request.content.decode(errors="replace")
        for address, encoded in self._hex.items():
            if f"/{address}/" in f"{path}/" or encoded in body:
                self.by_address[address] += 1
                self.log.setdefault(address, []).append(f"{path}?{request.url.query.decode()}")

    def reads_of(self, addresses: Sequence[str]) -> dict[str, int]:
        return {a: self.by_address[a] for a in addresses if self.by_address[a]}

    def clear(self) -> None:
        self.by_address.clear()
        self.log.clear()


@dataclass
class Rig:
    chain: FakeChain
    producer: BlockProducer
    service: BalanceService
    ingestion: Ingestion
    clocks: Clocks
    requests: AddressRequests
    #: What the service tracks (the tests add to it when they track more).
    tracked: list[str] = field(default_factory=list)

    async def differences(self, service: BalanceService | None = None) -> list[str]:
        """Every tracked (address, token) whose stored amount is not the ledger's."""
        found = await (service or self.service).current.load_many(
            [Principal.parse(a) for a in self.tracked]
        )
        wrong = []
        for address in self.tracked:
            balances = found.get(address)
            for token in self.producer.token_ids:
                truth = self.chain.balance(token, address)
                state = None if balances is None else balances.tokens.get(token)
                stored = None if state is None else state.amount
                if stored != truth and not (stored is None and truth == 0):
                    wrong.append(f"{address} {token}: stored {stored}, ledger {truth}")
        return wrong

    async def produce(self, blocks: int) -> None:
        for _ in range(blocks):
            self.producer.produce_one()

    def cursor_height(self) -> int:
        cursor = self.ingestion.status().as_dict()["cursor"]
        assert cursor is not None
        height: int = cursor["height"]
        return height


@asynccontextmanager
async def rig_on(
    chain: FakeChain,
    server: FakeChainServer,
    *,
    ingest: dict[str, Any] | None = None,
    extra: Sequence[str] = (),
    hold_back: Sequence[str] = (),
    blobs: BlobStore | None = None,
    seed: int = 11,
    settings: dict[str, Any] | None = None,
) -> AsyncIterator[Rig]:
    """A rig whose service tracks the producer's population (but ``hold_back``), its
    pools and ``extra``, is anchored at the tip and has ingested it (the cursor stands
    at the tip)."""
    producer = BlockProducer(chain, POPULATION, txs_per_block=30, seed=seed)
    producer.produce_one()  # tokens deployed, hot wallets funded, a first mix
    counter = AddressRequests()
    async with stacks_client(server, hooks=[counter]) as client:
        clocks = Clocks()
        # Short probe intervals: the stand-in mines on command, not every 5 s.
        probing = {"block_seconds": 0.1, **(ingest or {})}
        cfg = config(
            map_tokens=[producer.map_token], layout="sharded", ingest=probing, **(settings or {})
        )
        service = BalanceService(
            cfg,
            blobs=blobs or MemoryBlobStore(),
            chain=client,
            clock=clocks.mono,
            wall_clock=clocks.wall,
        )
        try:
            ingestion = service.ingestion_for("pull")
            tracked = [a for a in [*POPULATION, *producer.pools, *extra] if a not in hold_back]
            rig = Rig(chain, producer, service, ingestion, clocks, counter, tracked)
            counter.watch([*tracked, *hold_back])
            await service.tracked.track_many(Principal.parse(a) for a in rig.tracked)
            assert await ingestion.run_once() == 1  # a new store starts at the tip block
            await service.syncer.refresh_many(
                [Principal.parse(a) for a in rig.tracked], confirm=True
            )
            yield rig
        finally:
            await service.close()


@asynccontextmanager
async def serve_api(service: BalanceService) -> AsyncIterator[httpx.AsyncClient]:
    """Our REST API over ``service``, served by uvicorn on a free loopback port."""
    async with shared_server() as running:
        running.app.target = create_app(service=service, scheduler=False, ingest=False)
        async with httpx.AsyncClient(base_url=f"http://{running.host}:{running.port}") as client:
            yield client


CHAINHOOK_SECRET = "push-rig-secret"


@dataclass
class PushRig:
    """A service ingesting a push source, its REST API served on loopback, and the
    stand-in's sender for that source aimed at it (from the next chain event on)."""

    anchored: Rig  # the population, anchored at the tip by a pull service (closed)
    service: BalanceService
    ingestion: Ingestion
    api: httpx.AsyncClient
    deliverer: ChainhookDeliverer | ObserverDeliverer

    @property
    def chain(self) -> FakeChain:
        return self.anchored.chain

    async def differences(self) -> list[str]:
        return await self.anchored.differences(self.service)

    async def produce_and_deliver(self, blocks: int) -> None:
        await self.anchored.produce(blocks)
        await self.deliverer.deliver_pending()

    async def stored(self) -> dict[str, dict[str, int | None]]:
        """Every tracked address's stored amounts, by token."""
        found = await self.service.current.load_many(
            [Principal.parse(a) for a in self.anchored.tracked]
        )
        return {
            address: {token: state.amount for token, state in balances.tokens.items()}
            for address, balances in found.items()
        }


@asynccontextmanager
async def push_rig_on(
    chain: FakeChain,
    server: FakeChainServer,
    source: str,
    *,
    ingest: dict[str, Any] | None = None,
) -> AsyncIterator[PushRig]:
    """The population anchored by :func:`rig_on`, then ingested by a second service
    (the same store) from ``source`` (``chainhook`` or ``observer``) over HTTP."""
    blobs = MemoryBlobStore()
    async with rig_on(chain, server, blobs=blobs) as anchored:
        pass  # closed: its reads and cursor are in the store
    settings = {"source": source, "chainhook_secret": CHAINHOOK_SECRET, **(ingest or {})}
    cfg = config(map_tokens=[anchored.producer.map_token], layout="sharded", ingest=settings)
    async with stacks_client(server) as client:
        service = BalanceService(cfg, blobs=blobs, chain=client)
        try:
            ingestion = service.ingestion_for()
            await ingestion.start()
            async with serve_api(service) as api:
                url = str(api.base_url).rstrip("/")
                deliverer: ChainhookDeliverer | ObserverDeliverer = (
                    ChainhookDeliverer(chain, f"{url}/ingest/chainhook", CHAINHOOK_SECRET)
                    if source == "chainhook"
                    else ObserverDeliverer(chain, url)
                )
                deliverer.max_attempts = 3  # a refused delivery fails the test, not hangs
                yield PushRig(anchored, service, ingestion, api, deliverer)
        finally:
            await service.close()
