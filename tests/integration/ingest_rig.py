"""The ingestion rig of the integration tests (imported explicitly, not a conftest).

A :class:`~balances.testing.BlockProducer` mines blocks on the stand-in (served over
loopback); a BalanceService on the sharded layout ingests them with the pull
source. :meth:`Rig.differences` compares every tracked balance with the ledger.
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
from balances.service import BalanceService
from balances.service_ingest import Ingestion
from balances.testing import BlockProducer, FakeChain, FakeChainServer, fake_address

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
        settings = {"block_seconds": 0.1, **(ingest or {})}
        cfg = config(map_tokens=[producer.map_token], layout="sharded", ingest=settings)
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
