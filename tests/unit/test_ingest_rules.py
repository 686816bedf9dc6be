"""The rules that fold a block's events (balances.ingest.rules): deltas with fees,
failed transactions, anchoring, drift, listing zeros, map-token touches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balances.chain.clarity import (
    List,
    Some,
    StringAscii,
    Tuple,
    UInt,
    principal_from_text,
    to_hex,
)
from balances.chain.events import AssetMove, BlockRef, ChainBlock, ChainTx, ContractLog
from balances.domain import MAX_AMOUNT
from balances.domain.current import AddressBalances, Stamp, TokenState
from balances.ingest.rules import (
    AlreadyIn,
    Applied,
    NeedsRead,
    anchor_height,
    base_state,
    block_deltas,
    fold_delta,
    ingest_stamp,
    map_touches,
    principals_in_hex,
    token_key_of,
)
from balances.testing import fake_address

ALICE, BOB, CAROL = (fake_address(f"rules-{n}") for n in ("alice", "bob", "carol"))
TOKEN = f"{fake_address('rules-deployer')}.rules-token"
ASSET = f"{TOKEN}::rules"
MAP = f"{fake_address('rules-deployer')}.credits-subnet-v1"


def block(*txs: ChainTx, height: int = 10) -> ChainBlock:
    return ChainBlock(BlockRef(height, "0xb", "0xi"), BlockRef(height - 1, "0xa"), 1000.0, txs)


def tx(*moves: AssetMove, sender: str = ALICE, fee: int = 0, success: bool = True, **kw) -> ChainTx:  # type: ignore[no-untyped-def]
    return ChainTx("0x01", 0, sender, success, fee, kw.pop("payer", sender), moves=moves, **kw)


def state(amount: int, height: int | None, at: float = 900.0) -> TokenState:
    return TokenState(amount, Stamp(at, height), "stx")


def test_a_transfer_debits_the_sender_with_its_fee_and_credits_the_recipient() -> None:
    found = block_deltas(block(tx(AssetMove("stx", ALICE, BOB, 100), fee=3)), lambda a: True)
    assert found == {ALICE: {"stx": -103}, BOB: {"stx": 100}}


def test_a_failed_transaction_moves_only_its_fee() -> None:
    failed = tx(AssetMove(ASSET, ALICE, BOB, 100), fee=3, success=False)
    assert block_deltas(block(failed), lambda a: True) == {ALICE: {"stx": -3}}


def test_a_sponsor_pays_the_fee() -> None:
    sponsored = tx(AssetMove("stx", ALICE, BOB, 1), fee=5, payer=CAROL)
    found = block_deltas(block(sponsored), lambda a: True)
    assert found[CAROL] == {"stx": -5}
    assert found[ALICE] == {"stx": -1}


def test_untracked_addresses_are_left_out_and_zero_sums_kept() -> None:
    there_and_back = tx(AssetMove(ASSET, ALICE, BOB, 5), AssetMove(ASSET, BOB, ALICE, 5))
    found = block_deltas(block(there_and_back), lambda a: a == ALICE)
    assert found == {ALICE: {ASSET: 0}}


def test_mints_and_burns_have_one_party() -> None:
    found = block_deltas(
        block(tx(AssetMove(ASSET, None, BOB, 7), AssetMove(ASSET, BOB, None, 2))), lambda a: True
    )
    assert found == {BOB: {ASSET: 5}}


def test_miner_rewards_credit_their_recipient() -> None:
    rewarded = ChainBlock(BlockRef(5), BlockRef(4), 1.0, (), (AssetMove("stx", None, BOB, 9),))
    assert block_deltas(rewarded, lambda a: True) == {BOB: {"stx": 9}}


@pytest.mark.parametrize(
    ("base", "delta", "expected"),
    [
        (None, 5, NeedsRead("unknown")),
        (state(10, None), 5, NeedsRead("unanchored")),
        (state(10, 4), 5, NeedsRead("unanchored")),  # read before ingestion began
        (state(10, 5), 5, Applied(15)),  # read exactly where ingestion began
        (state(10, 9), -10, Applied(0)),
        (state(10, 9), -11, NeedsRead("drift")),  # below zero: what is stored drifted
        (state(MAX_AMOUNT, 9), 1, NeedsRead("drift")),  # above u128
        (state(10, 10), 5, AlreadyIn()),  # the read saw this block
        (state(10, 12), 5, AlreadyIn()),
    ],
)
def test_fold_delta(base: TokenState | None, delta: int, expected: object) -> None:
    assert fold_delta(base, delta, height=10, anchored_from=5) == expected


def test_a_native_token_absent_from_a_complete_listing_is_its_zero() -> None:
    listed = AddressBalances(ALICE, {}, Stamp(950.0, 8))
    found = base_state(listed, TOKEN, "native")
    assert found is not None
    assert found.amount == 0
    assert found.stamp.block_height == 8
    assert base_state(AddressBalances(ALICE, {}, None), TOKEN, "native") is None
    assert base_state(listed, "stx", "stx") is None  # a listing says nothing of STX


def test_a_complete_listing_confirms_the_native_amounts_it_covers() -> None:
    old = TokenState(4, Stamp(800.0, 3), "native")
    listed = AddressBalances(ALICE, {TOKEN: old}, Stamp(950.0, 8))
    found = base_state(listed, TOKEN, "native")
    assert found == TokenState(4, Stamp(950.0, 8), "native")
    newer = TokenState(4, Stamp(990.0, 9), "native")  # set by a later block: kept
    assert (
        base_state(AddressBalances(ALICE, {TOKEN: newer}, Stamp(950.0, 8)), TOKEN, "native")
        == newer
    )


def test_token_keys_follow_how_the_address_stores_them() -> None:
    assert token_key_of("stx", None) == ("stx", "stx")
    assert token_key_of(ASSET, None) == (TOKEN, "native")
    two = AddressBalances(ALICE, {f"{TOKEN}::other": TokenState(1, Stamp(1.0, 1), "native")})
    assert token_key_of(ASSET, two) == (ASSET, "native")  # a multi-asset contract


def test_anchor_height_is_the_oldest_of_stx_listing_and_map_reads() -> None:
    tokens = {"stx": state(1, 12), MAP: TokenState(2, Stamp(1.0, 11), "map")}
    balances = AddressBalances(ALICE, tokens, Stamp(1.0, 14))
    assert anchor_height(balances, [MAP]) == 11
    assert anchor_height(balances) == 12
    assert anchor_height(balances, [f"{MAP}-other"]) is None  # a map token never read
    assert anchor_height(AddressBalances(ALICE, tokens, None)) is None  # no listing


def test_ingest_stamps_never_go_back_before_the_read_they_build_on() -> None:
    assert ingest_stamp(1000.0, 10, {"stx": state(1, 9, at=990.0)}) == Stamp(1000.0, 10)
    assert ingest_stamp(1000.0, 10, {"stx": state(1, 9, at=1005.0)}) == Stamp(1005.0, 10)


def print_hex(**fields: object) -> str:
    values = {
        name: UInt(v)
        if isinstance(v, int)
        else principal_from_text(v)
        if isinstance(v, str) and v.startswith("S")
        else StringAscii(str(v))
        for name, v in fields.items()
    }
    return to_hex(Tuple(values))


def test_a_map_token_print_touches_every_principal_it_names() -> None:
    log = ContractLog(
        MAP, "print", print_hex(event="transfer", sender=ALICE, recipient=BOB, amount=5)
    )
    touched = map_touches(block(tx(sender=CAROL, logs=(log,))), lambda a, c: True, {MAP})
    assert touched == {(ALICE, MAP), (BOB, MAP), (CAROL, MAP)}


def test_a_call_to_a_map_token_touches_its_caller_and_only_followers_count() -> None:
    call = tx(sender=ALICE, contract_call=MAP)
    assert map_touches(block(call), lambda a, c: a == ALICE, {MAP}) == {(ALICE, MAP)}
    assert map_touches(block(call), lambda a, c: False, {MAP}) == set()
    failed = tx(sender=ALICE, contract_call=MAP, success=False)
    assert map_touches(block(failed), lambda a, c: True, {MAP}) == set()
    other = tx(sender=ALICE, contract_call=TOKEN)
    assert map_touches(block(other), lambda a, c: True, {MAP}) == set()


def test_an_undecodable_print_names_no_one() -> None:
    assert principals_in_hex("0xzz") == set()
    assert principals_in_hex(None) == set()


@given(
    st.lists(
        st.tuples(
            st.sampled_from([ALICE, BOB, CAROL, None]),
            st.sampled_from([ALICE, BOB, CAROL, None]),
            st.integers(0, 10**30),
        ),
        max_size=20,
    )
)
def test_deltas_sum_every_move(moves: list[tuple[str | None, str | None, int]]) -> None:
    """A property: each tracked party's delta is what it received minus what it sent."""
    chosen = [AssetMove("stx", s, r, a) for s, r, a in moves if s is not None or r is not None]
    found = block_deltas(block(tx(*chosen)), lambda a: True)
    for who in (ALICE, BOB, CAROL):
        expected = sum(m.amount for m in chosen if m.recipient == who) - sum(
            m.amount for m in chosen if m.sender == who
        )
        touched = any(who in (m.sender, m.recipient) for m in chosen)
        assert found.get(who, {}).get("stx") == (expected if touched else None)


# --- the boundaries mutation testing found unpinned (docs/folding.md) ---------------------


def test_a_sum_of_exactly_u128_max_folds() -> None:
    assert fold_delta(state(MAX_AMOUNT - 1, 9), 1, height=10, anchored_from=5) == Applied(
        MAX_AMOUNT
    )


def test_a_listing_zero_is_a_native_state_and_says_nothing_of_other_kinds() -> None:
    listing = Stamp(950.0, 8)
    listed = AddressBalances(ALICE, {"stx": state(1, 3, at=800.0)}, listing)
    assert base_state(listed, TOKEN, "native") == TokenState(0, listing, "native")
    assert base_state(listed, "stx", "stx") == state(1, 3, at=800.0)  # not restamped
    unlisted = AddressBalances(ALICE, {TOKEN: TokenState(4, Stamp(800.0, 3), "native")})
    assert base_state(unlisted, TOKEN, "native") == TokenState(4, Stamp(800.0, 3), "native")


@pytest.mark.parametrize(
    ("read", "listing", "confirmed"),
    [
        (Stamp(800.0, 3), Stamp(950.0, 3), False),  # same height: the listing adds nothing
        (Stamp(800.0, 3), Stamp(700.0, 8), False),  # a higher height but taken earlier
        (Stamp(950.0, 3), Stamp(950.0, 8), True),  # one time, a higher height
        (Stamp(800.0, None), Stamp(950.0, 0), True),  # a read at no height: any beats it
        (Stamp(800.0, 3), Stamp(950.0, None), False),  # a listing at no height confirms none
    ],
)
def test_a_listing_confirms_a_native_amount_only_from_a_later_height_and_time(
    read: Stamp, listing: Stamp, confirmed: bool
) -> None:
    old = TokenState(4, read, "native")
    found = base_state(AddressBalances(ALICE, {TOKEN: old}, listing), TOKEN, "native")
    assert found == (TokenState(4, listing, "native") if confirmed else old)


def test_every_transaction_of_a_block_is_looked_at_past_a_failed_or_unrelated_one() -> None:
    failed = tx(sender=BOB, contract_call=MAP, success=False)
    unrelated = tx(sender=BOB, contract_call=TOKEN)
    call = tx(sender=ALICE, contract_call=MAP)
    touched = map_touches(block(failed, unrelated, call), lambda a, c: True, {MAP})
    assert touched == {(ALICE, MAP)}


def test_the_parties_of_a_map_calls_moves_are_touched() -> None:
    call = tx(
        AssetMove("stx", BOB, None, 3),  # a burn: no recipient
        AssetMove(ASSET, None, CAROL, 1),  # a mint: no sender
        sender=ALICE,
        contract_call=MAP,
    )
    touched = map_touches(block(call), lambda a, c: True, {MAP})
    assert touched == {(ALICE, MAP), (BOB, MAP), (CAROL, MAP)}


def test_principals_inside_lists_and_optionals_are_found() -> None:
    nested = List((Some(principal_from_text(ALICE)), Tuple({"to": principal_from_text(BOB)})))
    assert principals_in_hex(to_hex(Some(nested))) == {ALICE, BOB}
