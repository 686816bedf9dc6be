"""When the pull source probes: about one request per block at the tip, no drift
late, no waiting while behind. The stand-in serves over loopback HTTP; time is
virtual (the source's clocks and sleep), and blocks are mined as it passes."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from balances.chain.client import StacksClient
from balances.ingest.feed import Apply
from balances.ingest.pull import ApiBlockFetcher, PullSettings, PullSource
from balances.testing import BlockProducer, FakeChain, FakeChainServer, fake_address

INTERVAL = 5.0
#: How long after a block's time the stand-in serves it (the API's indexing delay).
SERVED_AFTER = 0.7
PROBE_ROUTE = "GET /extended/v3/blocks/{height_or_hash}/transactions"


@dataclass
class VirtualChain:
    """A chain that mines a block every INTERVAL seconds of virtual time.

    Block ``k`` has the time ``start_wall + k * INTERVAL + chain_clock_offset``
    (whole seconds, as on Stacks) and is served SERVED_AFTER seconds later."""

    producer: BlockProducer
    start_wall: float
    chain_clock_offset: float = 0.0
    now: float = 0.0
    mined: list[float] = field(default_factory=list)  # virtual time of each block

    def wall(self) -> float:
        return self.start_wall + self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.mine_due()

    def mine_due(self) -> None:
        while (len(self.mined) + 1) * INTERVAL + SERVED_AFTER <= self.now:
            born = (len(self.mined) + 1) * INTERVAL
            stamp = int(self.start_wall + born + self.chain_clock_offset)
            self.producer.produce_one(stamp)
            self.mined.append(born)


@dataclass
class Followed:
    lags: list[float]  # virtual seconds from a block's birth to its Apply
    probes: list[int]  # probe requests made until each block was applied

    def probes_per_block(self, after: int) -> float:
        """Probes per block from the ``after``-th block on (the first learn)."""
        return (self.probes[-1] - self.probes[after - 1]) / (len(self.probes) - after)


async def follow(
    chain: FakeChain,
    server: FakeChainServer,
    virtual: VirtualChain,
    blocks: int,
    batch_blocks: int = 2,
    first: int | None = None,
) -> Followed:
    """Run a PullSource from ``first`` (default: after the tip) until ``blocks``
    blocks have been yielded; each one's lag and the probe requests until then."""
    first = chain.tip_height + 1 if first is None else first
    applied: list[int] = []
    probes: list[int] = []
    async with httpx.AsyncClient(timeout=10) as http:
        client = StacksClient(http, server.url, requests_per_minute=float("inf"))

        async def next_height() -> int:
            return applied[-1] + 1 if applied else first

        settings = PullSettings(batch_blocks=batch_blocks, interval=INTERVAL)
        source = PullSource(
            ApiBlockFetcher(client),
            next_height,
            settings=settings,
            clock=lambda: virtual.now,
            wall_clock=virtual.wall,
            sleep=virtual.sleep,
        )
        chain.reset_requests()
        lags: list[float] = []
        async for event in source.events():
            if not isinstance(event, Apply):
                continue
            applied.append(event.block.ref.height)
            lags.append(virtual.now - virtual.mined[event.block.ref.height - first])
            probes.append(chain.requests[PROBE_ROUTE])
            if len(applied) == blocks:
                break
    assert applied == list(range(first, first + blocks))
    return Followed(lags, probes)


def virtual_chain(chain: FakeChain, offset: float = 0.0) -> VirtualChain:
    """Blocks of a few transactions (their summaries carry the block's time); the
    virtual epoch starts after the tip, with a fraction so that whole-second block
    times are not the birth times."""
    population = [fake_address(f"schedule-{i}") for i in range(20)]
    producer = BlockProducer(chain, population, txs_per_block=4, seed=5)
    producer.fund()
    start = chain.tip.time + 40 - offset + 0.37
    return VirtualChain(producer, start_wall=start, chain_clock_offset=offset)


@pytest.mark.parametrize(
    "offset",
    [0.0, 20.0, -20.0],
    ids=["clocks agree", "chain clock ahead", "chain clock behind"],
)
async def test_at_the_tip_a_block_costs_about_one_probe_and_lag_stays_bounded(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, offset: float
) -> None:
    virtual = virtual_chain(fake_chain, offset)
    followed = await follow(fake_chain, fake_chain_server, virtual, blocks=40)
    # The first blocks learn the delay; then one probe per block (a rare retry).
    assert followed.probes[9] <= 25
    assert followed.probes_per_block(after=10) <= 1.1
    # Each block of a pair waits for the next at most: an interval plus the delay
    # and a retry step; and the last blocks are no later than that (no drift).
    bound = INTERVAL + SERVED_AFTER + 1.0 + 0.1 * INTERVAL
    assert max(followed.lags[4:]) <= bound
    assert max(followed.lags[-10:]) <= bound
    # the second of each pair is applied at once after it is served
    assert min(followed.lags[4:]) <= SERVED_AFTER + 1.0 + 0.1 * INTERVAL


async def test_blocks_each_applied_alone_follow_the_chain_within_a_second(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    virtual = virtual_chain(fake_chain)
    followed = await follow(fake_chain, fake_chain_server, virtual, blocks=20, batch_blocks=1)
    assert followed.probes_per_block(after=5) <= 1.1
    assert max(followed.lags[4:]) <= SERVED_AFTER + 1.0 + 0.1 * INTERVAL


async def test_a_source_behind_the_tip_catches_up_without_waiting(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    virtual = virtual_chain(fake_chain)
    first = fake_chain.tip_height + 1
    # Ten blocks were mined while the source was down
    virtual.now = 10 * INTERVAL + SERVED_AFTER
    virtual.mine_due()
    assert fake_chain.tip_height == first + 9
    started = virtual.now
    followed = await follow(
        fake_chain, fake_chain_server, virtual, blocks=10, batch_blocks=1, first=first
    )
    assert virtual.now == started  # no sleep: each block's time says it is behind
    assert followed.probes[-1] == 10
