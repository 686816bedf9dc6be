"""The refresh plan executed by StacksClient against the stand-in: request budgets."""

from __future__ import annotations

from conftest_client import HOLDER, OTHER, balance_requests, stacks_client

from balances.chain.protocol import ChainReader
from balances.chain.routes import CALL_READ, FT_LIST_V3, STX_ROUTES
from balances.errors import ContractNotFoundError
from balances.sync.plan import TrackedToken, build_plan, execute_plan, execute_plans
from balances.testing import FakeChain, FakeChainServer, fake_address


def seed_wallet(chain: FakeChain, native: int, mapped: int) -> tuple[list[str], list[str]]:
    """``HOLDER`` holds ``native`` native tokens and ``mapped`` map-based tokens."""
    native_ids = chain.add_native_tokens(native, prefix="tok")
    for index, contract_id in enumerate(native_ids):
        chain.mint(contract_id, HOLDER, 1_000 + index)
    deployer = fake_address("subnets", "mainnet")
    map_ids = []
    for index in range(mapped):
        contract_id = f"{deployer}.credit-{index}-subnet-v1"
        chain.add_map_token(contract_id, symbol=f"C{index}")
        chain.deposit(contract_id, HOLDER, 50 + index)
        map_ids.append(contract_id)
    chain.mint("stx", HOLDER, 42_000_000)
    return native_ids, map_ids


async def test_450_native_and_3_map_tokens_cost_exactly_7_requests(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    native_ids, map_ids = seed_wallet(fake_chain, 450, 3)
    tracked = [
        *(TrackedToken.native(f"{cid}::tok{i}") for i, cid in enumerate(native_ids)),
        *(TrackedToken.map_based(cid) for cid in map_ids),
    ]
    plan = build_plan(HOLDER, tracked)
    fake_chain.reset_requests()
    async with stacks_client(fake_chain_server) as client:
        assert isinstance(client, ChainReader)
        result = await execute_plan(plan, client)
    assert result.errors == {}
    assert balance_requests(fake_chain) == {STX_ROUTES[0]: 1, FT_LIST_V3: 3, CALL_READ: 3}
    assert sum(fake_chain.requests.values()) == 7 == plan.request_count(held_native=450)
    assert plan.naive_request_count() == 454
    for token_id in [*native_ids, *map_ids]:
        assert result.values[token_id] == fake_chain.balance(token_id, HOLDER)
    assert result.values["stx"] == 42_000_000


async def test_one_failing_map_token_does_not_lose_the_others(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    native_ids, map_ids = seed_wallet(fake_chain, 2, 2)
    ghost = f"{fake_address('ghosts', 'mainnet')}.gone-subnet-v1"  # never deployed
    tracked = [
        TrackedToken.native(native_ids[0]),  # contract id only: matched by contract
        *(TrackedToken.map_based(cid) for cid in [*map_ids, ghost]),
    ]
    async with stacks_client(fake_chain_server) as client:
        result = await execute_plan(build_plan(HOLDER, tracked), client)
    assert set(result.errors) == {ghost}
    assert isinstance(result.errors[ghost], ContractNotFoundError)
    assert result.reads[ghost].amount is None  # unknown, not zero
    assert result.values[native_ids[0]] == 1_000
    assert [result.values[cid] for cid in map_ids] == [50, 51]


async def test_a_failed_listing_leaves_native_tokens_unknown(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    native_ids, map_ids = seed_wallet(fake_chain, 3, 1)
    fake_chain.faults.v3_missing = True
    fake_chain.faults.deprecated = "gone"
    tracked = [TrackedToken.native(cid) for cid in native_ids] + [
        TrackedToken.map_based(map_ids[0])
    ]
    async with stacks_client(fake_chain_server) as client:
        result = await execute_plan(build_plan(HOLDER, tracked), client)
    assert set(result.errors) == {"stx", *native_ids}
    assert result.values == {map_ids[0]: 50}


async def test_many_addresses_two_requests_each(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    [token] = fake_chain.add_native_tokens(1, prefix="solo")
    holders = [fake_address(f"holder-{i}", "mainnet") for i in range(20)]
    for index, holder in enumerate(holders):
        fake_chain.mint(token, holder, index + 1)
    plans = [build_plan(holder, [TrackedToken.native(token)]) for holder in [*holders, OTHER]]
    fake_chain.reset_requests()
    async with stacks_client(fake_chain_server) as client:
        results = await execute_plans(plans, client, concurrency=5)
    assert [r.values[token] for r in results] == [*range(1, 21), 0]
    assert sum(fake_chain.requests.values()) == 2 * len(plans)
