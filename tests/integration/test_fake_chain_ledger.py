"""The stand-in's driver API: the ledger tests and demos mutate (no HTTP here)."""

from __future__ import annotations

import pytest

from balances.errors import BalancesError
from balances.testing import (
    FakeChain,
    FakeChainError,
    InsufficientBalanceError,
    UnknownTokenError,
    demo_chain,
    fake_address,
)
from balances.testing.fake_chain import DEFAULT_START_TIME

ALICE = fake_address("alice")
BOB = fake_address("bob")
DEPLOYER = fake_address("deployer")
TOKEN = f"{DEPLOYER}.charisma-token"
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"


@pytest.fixture
def chain() -> FakeChain:
    chain = FakeChain()
    chain.add_native_token(TOKEN, "charisma", symbol="CHA", name="Charisma")
    chain.add_map_token(CREDIT, symbol="CHA", name="Charisma", base_token=TOKEN)
    return chain


def test_every_mutation_mines_its_own_block(chain: FakeChain) -> None:
    assert (chain.tip_height, chain.tip_time) == (1000, DEFAULT_START_TIME)
    first = chain.mint("stx", ALICE, 500)
    second = chain.transfer("stx", ALICE, BOB, 200)
    assert first != second
    assert chain.tip_height == 1002
    assert chain.tip_time == DEFAULT_START_TIME + 20
    assert chain.transaction(first) is not None
    assert chain.transaction(first).height == 1001  # type: ignore[union-attr]
    assert chain.blocks.at_height(1002).tx_ids == (second,)  # type: ignore[union-attr]


def test_balances_follow_mint_transfer_burn(chain: FakeChain) -> None:
    chain.mint(TOKEN, ALICE, 1_000)
    chain.transfer(f"{TOKEN}::charisma", ALICE, BOB, 300)
    chain.burn(TOKEN, BOB, 100)
    assert chain.balance(TOKEN, ALICE) == 700
    assert chain.balance(TOKEN, BOB) == 200
    assert chain.total_supply(TOKEN) == 900


def test_u128_amounts_are_exact(chain: FakeChain) -> None:
    huge = 2**128 - 1
    chain.mint(TOKEN, ALICE, huge)
    assert chain.balance(TOKEN, ALICE) == huge
    with pytest.raises(FakeChainError, match="overflow"):
        chain.mint(TOKEN, BOB, 1)


def test_overdraft_is_refused_and_changes_nothing(chain: FakeChain) -> None:
    chain.mint("stx", ALICE, 100)
    height = chain.tip_height
    with pytest.raises(InsufficientBalanceError, match="holds 100"):
        chain.transfer("stx", ALICE, BOB, 101)
    with pytest.raises(InsufficientBalanceError):
        chain.burn(TOKEN, ALICE, 1)
    assert isinstance(InsufficientBalanceError("x"), ValueError | BalancesError)
    assert chain.balance("stx", ALICE) == 100
    assert chain.tip_height == height


@pytest.mark.parametrize("amount", [0, -5, 2**128, True, 1.5])
def test_amounts_must_be_positive_u128_ints(chain: FakeChain, amount: object) -> None:
    with pytest.raises(FakeChainError, match="amount"):
        chain.mint("stx", ALICE, amount)  # type: ignore[arg-type]


def test_unknown_and_mismatched_tokens_are_refused(chain: FakeChain) -> None:
    with pytest.raises(UnknownTokenError):
        chain.mint(f"{DEPLOYER}.nope", ALICE, 1)
    with pytest.raises(UnknownTokenError, match="defines asset"):
        chain.mint(f"{TOKEN}::other", ALICE, 1)
    with pytest.raises(FakeChainError, match="already exists"):
        chain.add_native_token(TOKEN, "charisma")
    with pytest.raises(FakeChainError, match="same principal"):
        chain.transfer("stx", ALICE, ALICE, 1)


def test_deposit_locks_the_base_token_and_credits_the_map(chain: FakeChain) -> None:
    chain.mint(TOKEN, ALICE, 1_000)
    chain.deposit(CREDIT, ALICE, 400)
    assert chain.balance(CREDIT, ALICE) == 400
    assert chain.balance(TOKEN, ALICE) == 600
    assert chain.balance(TOKEN, CREDIT) == 400
    chain.transfer(CREDIT, ALICE, BOB, 150)
    chain.withdraw(CREDIT, BOB, 50)
    assert (chain.balance(CREDIT, ALICE), chain.balance(CREDIT, BOB)) == (250, 100)
    assert chain.balance(TOKEN, BOB) == 50
    with pytest.raises(InsufficientBalanceError):
        chain.withdraw(CREDIT, BOB, 101)
    with pytest.raises(FakeChainError, match="native token"):
        chain.deposit(TOKEN, ALICE, 1)


def test_balance_at_a_past_height(chain: FakeChain) -> None:
    chain.mint("stx", ALICE, 100)
    middle = chain.tip_height
    chain.advance_blocks(5)
    chain.transfer("stx", ALICE, BOB, 40)
    assert chain.balance("stx", ALICE, at_height=middle - 1) == 0
    assert chain.balance("stx", ALICE, at_height=middle) == 100
    assert chain.balance("stx", ALICE) == 60


def test_advance_blocks_and_time(chain: FakeChain) -> None:
    assert chain.advance_blocks(3) == 1003
    assert chain.tip_time == DEFAULT_START_TIME + 30
    assert chain.advance_time(3600) == 1004
    assert chain.tip_time == DEFAULT_START_TIME + 3630
    with pytest.raises(FakeChainError):
        chain.advance_blocks(-1)


def test_blocks_by_time_include_synthesized_history(chain: FakeChain) -> None:
    chain.advance_blocks(2)
    assert chain.blocks.at_time(DEFAULT_START_TIME + 15).height == 1001  # type: ignore[union-attr]
    assert chain.blocks.at_time(DEFAULT_START_TIME - 1).height == 999  # type: ignore[union-attr]
    assert chain.blocks.at_time(0) is None
    old = chain.blocks.at_height(10)
    assert old is not None
    assert chain.blocks.by_hash(old.hash) == old


def test_add_native_tokens_makes_many_distinct_tokens(chain: FakeChain) -> None:
    ids = chain.add_native_tokens(450, prefix="bulk")
    assert len(set(ids)) == 450
    assert chain.token(ids[7]).asset_name == "bulk7"


def test_principals_are_stored_canonically(chain: FakeChain) -> None:
    chain.mint("stx", ALICE.lower().replace("s", "S", 1), 5)
    assert chain.balance("stx", ALICE) == 5


def test_demo_chain_is_seeded_and_realistic() -> None:
    chain = demo_chain(days=10)
    again = demo_chain(days=10)
    kinds = {token.kind for token in chain.tokens}
    assert kinds == {"native", "map"}
    charisma = chain.token("SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token")
    assert charisma.asset_name == "charisma"
    assert chain.tip_height == again.tip_height
    assert chain.tip_time - chain.blocks.at_height(150_000).time >= 9 * 86_400  # type: ignore[union-attr]
