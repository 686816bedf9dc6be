"""The stand-in's block producer: a realistic, reproducible mix, money only via blocks."""

from __future__ import annotations

from collections import Counter

import httpx

from balances.testing import BlockProducer, FakeChain, fake_address
from balances.testing.fake_chain.producer import HOT_FUNDS

POPULATION = [fake_address(f"producer-test-{i}") for i in range(2_000)]


def _produce(seed: int, blocks: int) -> tuple[FakeChain, BlockProducer, list[set[tuple[str, str]]]]:
    chain = FakeChain()
    producer = BlockProducer(chain, POPULATION, txs_per_block=50, seed=seed)
    touched = [producer.produce_one().pairs for _ in range(blocks)]
    return chain, producer, touched


def test_each_block_holds_the_mix_and_names_what_it_touched() -> None:
    chain, producer, touched = _produce(seed=1, blocks=8)
    kinds: Counter[str] = Counter()
    for height in range(chain.tip_height - 7, chain.tip_height + 1):
        block = chain.blocks.at_height(height)
        assert block is not None
        txs = chain.block_transactions(block)
        assert len(txs) == 50
        for tx in txs:
            kinds[tx.type if tx.type != "contract_call" else tx.function_name] += 1
    assert kinds["token_transfer"] > 0  # STX
    assert kinds["transfer"] > 0  # SIP-010 and map-token transfers
    assert kinds["deposit"] > 0  # map-token credits (print events)
    pools = {pair[0] for pairs in touched for pair in pairs if "." in pair[0]}
    assert pools & set(producer.pools)  # contract principals hold tokens
    assert any(tx.fee > 0 for tx in chain.block_transactions(chain.tip))
    moved = {token for pairs in touched for _, token in pairs}
    assert moved == set(producer.token_ids)


def test_the_same_seed_makes_the_same_blocks_and_another_seed_others() -> None:
    first, _, a = _produce(seed=3, blocks=3)
    second, _, b = _produce(seed=3, blocks=3)
    _, _, c = _produce(seed=4, blocks=3)
    assert a == b
    assert a != c
    assert first.tip.hash == second.tip.hash


def test_money_enters_only_through_blocks_so_history_is_exact() -> None:
    chain, producer, touched = _produce(seed=5, blocks=6)
    start = chain.tip_height - 6  # the funding block
    for address in POPULATION[:200]:
        for token in producer.token_ids:
            assert chain.balance(token, address, at_height=start - 1) == 0
    holders = [*POPULATION, *producer.pools, *producer.hot_wallets]
    minted = len(producer.hot_wallets) * HOT_FUNDS
    for token in producer.tokens:  # transfers only move what the funding block minted
        assert sum(chain.balance(token, holder) for holder in holders) == minted
    assert {address for pairs in touched for address, _ in pairs} <= set(holders)


async def test_produced_blocks_are_served_by_the_block_routes(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    producer = BlockProducer(fake_chain, POPULATION, txs_per_block=60, seed=2)
    produced = producer.produce_one()
    answer = await fake_chain_client.get(
        f"/extended/v3/blocks/{produced.block.height}/transactions", params={"limit": 50}
    )
    body = answer.json()
    assert body["total"] == 60
    assert body["cursor"]["next"] is not None  # a second page
