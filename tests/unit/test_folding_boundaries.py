"""Each boundary of the folding laws (docs/folding.md), one example at a time: equal
stamps, older and newer reads, the first complete listing, and which listing and
which failures stand when two views meet. Every rule is checked in both argument
orders where it has two, since the laws say the order does not matter."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from balances.blobs import MemoryBlobStore
from balances.domain import BalancePoint, Principal, TokenId
from balances.domain.current import (
    LISTING_KEY,
    AddressBalances,
    AddressUpdate,
    Change,
    Failure,
    Stamp,
    TokenKindName,
    TokenState,
    apply_changes,
    later_stamp,
    merge,
    merge_views,
    token_key,
)
from balances.errors import BalancesError, ChainUnavailableError, RateLimitedError
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.address_blobs import AddressBlobBalanceStore
from balances.testing import fake_address

ADDRESS = fake_address("boundary-holder")
DEPLOYER = fake_address("boundary-deployer")
NATIVE = f"{DEPLOYER}.token-a"
OTHER = f"{DEPLOYER}.token-b"
MAPPED = f"{DEPLOYER}.token-subnet"
T1, T2, T3 = Stamp(1_000.0, 10), Stamp(2_000.0, 20), Stamp(3_000.0, 30)
DOWN = ChainUnavailableError("503")
SLOW = ChainUnavailableError("timed out")


def update(
    stamp: Stamp,
    amounts: dict[str, tuple[int, TokenKindName]] | None = None,
    *,
    listing: bool = False,
    errors: dict[str, BalancesError] | None = None,
) -> AddressUpdate:
    return AddressUpdate(ADDRESS, stamp, amounts or {}, listing, errors or {})


def view(
    tokens: dict[str, TokenState] | None = None,
    listing: Stamp | None = None,
    failures: dict[str, Failure] | None = None,
) -> AddressBalances:
    return AddressBalances(ADDRESS, tokens or {}, listing, failures or {})


def change(key: str, amount: int, stamp: Stamp, kind: TokenKindName = "native") -> Change:
    return Change(ADDRESS, key, kind, None, amount, stamp)


def both_ways(a: AddressBalances, b: AddressBalances) -> AddressBalances:
    joined = merge_views(a, b)
    assert merge_views(b, a) == joined
    return joined


def errors_of(balances: AddressBalances) -> dict[str, BalancesError]:
    return {key: failure.error for key, failure in balances.failures.items()}


# --- equal stamps, older, newer ----------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(5, 3), (3, 5)])
def test_at_one_stamp_the_larger_amount_stands_whatever_the_order(first: int, second: int) -> None:
    folded = apply_changes(None, ADDRESS, [change(NATIVE, first, T2), change(NATIVE, second, T2)])
    assert folded.tokens[NATIVE] == TokenState(5, T2, "native")
    one_by_one = apply_changes(None, ADDRESS, [change(NATIVE, second, T2)])
    assert apply_changes(one_by_one, ADDRESS, [change(NATIVE, first, T2)]) == folded


def test_a_read_with_the_stored_stamp_and_a_smaller_amount_changes_nothing() -> None:
    stored = merge(None, update(T2, {NATIVE: (5, "native")})).balances
    merged = merge(stored, update(T2, {NATIVE: (3, "native")}))
    assert merged.balances.tokens[NATIVE] == TokenState(5, T2, "native")
    assert merged.changes == ()
    assert merged.needs_write is False


def test_a_read_with_the_stored_stamp_and_a_larger_amount_is_a_change() -> None:
    stored = merge(None, update(T2, {NATIVE: (5, "native")})).balances
    merged = merge(stored, update(T2, {NATIVE: (7, "native")}))
    assert merged.balances.tokens[NATIVE] == TokenState(7, T2, "native")
    assert [(c.key, c.old, c.new, c.stamp) for c in merged.changes] == [(NATIVE, 5, 7, T2)]
    assert merged.needs_write is True


def test_at_one_time_a_read_with_a_block_height_beats_one_without() -> None:
    unplaced, placed = Stamp(2_000.0, None), Stamp(2_000.0, 0)
    a = view({NATIVE: TokenState(9, unplaced, "native")})
    b = view({NATIVE: TokenState(1, placed, "native")})
    assert both_ways(a, b).tokens[NATIVE] == TokenState(1, placed, "native")
    merged = merge(a, update(placed, {NATIVE: (1, "native")}))
    assert [(c.old, c.new) for c in merged.changes] == [(9, 1)]
    assert merge(b, update(unplaced, {NATIVE: (9, "native")})).changes == ()


def test_at_one_time_the_higher_block_height_stands() -> None:
    low, high = Stamp(2_000.0, 1), Stamp(2_000.0, 2)
    a = view({NATIVE: TokenState(9, low, "native")})
    b = view({NATIVE: TokenState(1, high, "native")})
    assert both_ways(a, b).tokens[NATIVE] == TokenState(1, high, "native")
    assert later_stamp(low, high) == later_stamp(high, low) == high


def test_time_comes_before_block_height() -> None:
    """A replica whose tip lagged still read later: the later time stands."""
    earlier_high, later_low = Stamp(1_000.0, 50), Stamp(2_000.0, 5)
    a = view({NATIVE: TokenState(9, earlier_high, "native")})
    b = view({NATIVE: TokenState(1, later_low, "native")})
    assert both_ways(a, b).tokens[NATIVE].amount == 1


def test_at_one_stamp_and_amount_the_kind_decides_by_name() -> None:
    a = view({NATIVE: TokenState(4, T2, "map")})
    b = view({NATIVE: TokenState(4, T2, "native")})
    assert both_ways(a, b).tokens[NATIVE].kind == "native"


def test_an_older_change_never_replaces_a_newer_one_and_a_newer_does() -> None:
    newer = apply_changes(None, ADDRESS, [change(NATIVE, 7, T3)])
    assert apply_changes(newer, ADDRESS, [change(NATIVE, 1, T1)]) == newer
    older = apply_changes(None, ADDRESS, [change(NATIVE, 1, T1)])
    assert apply_changes(older, ADDRESS, [change(NATIVE, 7, T3)]) == newer


def test_a_newer_read_of_the_same_amount_only_confirms() -> None:
    stored = merge(None, update(T1, {NATIVE: (5, "native")})).balances
    merged = merge(stored, update(T2, {NATIVE: (5, "native")}))
    assert merged.changes == ()
    assert merged.needs_write is False
    assert merged.balances.tokens[NATIVE] == TokenState(5, T2, "native")  # fresher, in memory


# --- listings -------------------------------------------------------------------------------


def test_a_first_refresh_bringing_only_a_complete_listing_is_written() -> None:
    merged = merge(None, update(T1, listing=True))
    assert merged.needs_write is True
    assert merged.changes == ()
    assert merged.balances.listing == T1
    token = TokenId.parse(NATIVE)
    assert merged.balances.state(token, "native") == TokenState(0, T1, "native")
    assert merged.balances.state(TokenId.parse(MAPPED), "map") is None  # unknown, not zero


def test_a_first_refresh_whose_every_read_failed_is_not_written() -> None:
    merged = merge(None, update(T1, errors={"stx": DOWN, LISTING_KEY: DOWN}))
    assert merged.needs_write is False
    assert merged.balances.tokens == {}
    assert errors_of(merged.balances) == {"stx": DOWN, LISTING_KEY: DOWN}


def test_a_newer_complete_listing_over_a_stored_one_with_nothing_moved_is_not_written() -> None:
    stored = merge(None, update(T1, {NATIVE: (5, "native")}, listing=True)).balances
    merged = merge(stored, update(T2, {NATIVE: (5, "native")}, listing=True))
    assert merged.needs_write is False
    assert merged.balances.listing == T2


def test_an_older_complete_listing_leaves_the_newer_listing_and_reads() -> None:
    stored = merge(None, update(T2, {NATIVE: (5, "native")}, listing=True)).balances
    merged = merge(stored, update(T1, listing=True))
    assert merged.balances.listing == T2
    assert merged.balances.tokens[NATIVE] == TokenState(5, T2, "native")
    assert merged.needs_write is False


def test_the_later_listing_stands_when_views_meet() -> None:
    assert both_ways(view(listing=T1), view(listing=T3)).listing == T3
    assert both_ways(view(listing=T2), view()).listing == T2
    assert apply_changes(view(listing=T3), ADDRESS, [], T1).listing == T3
    assert apply_changes(view(listing=T1), ADDRESS, [], T3).listing == T3


def test_a_listing_speaks_only_for_native_tokens_absent_from_the_view() -> None:
    """The journal keeps changes, not confirmations: a token stamped before the
    listing was confirmed unchanged by it and keeps its amount."""
    folded = apply_changes(None, ADDRESS, [change(NATIVE, 5, T1)], T2)
    assert folded.state(TokenId.parse(NATIVE), "native") == TokenState(5, T1, "native")
    assert folded.state(TokenId.parse(OTHER), "native") == TokenState(0, T2, "native")


def test_a_complete_listing_zeroes_stored_native_tokens_it_left_out() -> None:
    stored = merge(
        None, update(T1, {NATIVE: (5, "native"), MAPPED: (3, "map"), "stx": (2, "stx")})
    ).balances
    merged = merge(stored, update(T2, listing=True))
    assert [(c.key, c.old, c.new, c.stamp) for c in merged.changes] == [(NATIVE, 5, 0, T2)]
    assert merged.balances.tokens[MAPPED] == TokenState(3, T1, "map")
    assert merged.balances.tokens["stx"] == TokenState(2, T1, "stx")


async def test_the_listing_only_first_refresh_survives_both_layouts() -> None:
    first = update(T1, listing=True)
    blobs = MemoryBlobStore()
    principal = Principal.parse(ADDRESS)
    per_address = AddressBlobBalanceStore(blobs)
    assert (await per_address.apply(first)).needs_write is True
    assert await AddressBlobBalanceStore(blobs).load(principal) == view(listing=T1)

    settings = LsmSettings(shards=2, compact_grace_seconds=0.0)
    sharded = ShardedStore(MemoryBlobStore(), settings, wall_clock=lambda: T1.at)
    await sharded.apply(first)
    assert await ShardedStore(sharded.blobs, settings).load(principal) == view(listing=T1)
    report = await sharded.maintain(T1.at + 1)  # a shard whose records hold no change
    assert report.segments_folded == 1
    assert await ShardedStore(sharded.blobs, settings).load(principal) == view(listing=T1)


# --- failures ---------------------------------------------------------------------------------


def test_a_failure_newer_than_the_other_views_read_stands() -> None:
    failed = view(failures={NATIVE: Failure(DOWN, T3)})
    read = view({NATIVE: TokenState(5, T2, "native")})
    assert errors_of(both_ways(failed, read)) == {NATIVE: DOWN}


@pytest.mark.parametrize("read_at", [T2, T3], ids=["newer-read", "read-at-its-stamp"])
def test_a_read_at_or_after_a_failure_clears_it(read_at: Stamp) -> None:
    failed = view(failures={NATIVE: Failure(DOWN, T2)})
    read = view({NATIVE: TokenState(5, read_at, "native")})
    assert both_ways(failed, read).failures == {}
    assert apply_changes(failed, ADDRESS, [change(NATIVE, 5, read_at)]).failures == {}


def test_of_two_failures_of_one_key_the_newer_stands() -> None:
    older = view(failures={"stx": Failure(DOWN, T1)})
    newer = view(failures={"stx": Failure(SLOW, T2)})
    assert errors_of(both_ways(older, newer)) == {"stx": SLOW}


def test_two_failures_at_one_stamp_are_decided_by_type_then_message() -> None:
    limited = RateLimitedError("429")
    a = view(failures={"stx": Failure(DOWN, T2)})
    b = view(failures={"stx": Failure(SLOW, T2)})
    c = view(failures={"stx": Failure(limited, T2)})
    assert errors_of(both_ways(a, b)) == {"stx": SLOW}  # "timed out" > "503"
    assert errors_of(both_ways(a, c)) == {"stx": limited}  # RateLimitedError > Chain...


def test_a_listing_failure_is_cleared_only_by_a_listing_at_or_after_it() -> None:
    failed = view(failures={LISTING_KEY: Failure(DOWN, T2)})
    assert errors_of(both_ways(failed, view(listing=T1))) == {LISTING_KEY: DOWN}
    assert both_ways(failed, view(listing=T2)).failures == {}
    # A native token's own read is not a listing.
    assert errors_of(both_ways(failed, view({NATIVE: TokenState(1, T3, "native")}))) == {
        LISTING_KEY: DOWN
    }


def test_a_native_token_read_after_the_listing_failed_shows_no_error() -> None:
    stored = merge(None, update(T1, {NATIVE: (5, "native"), OTHER: (6, "native")}, listing=True))
    failed = merge(stored.balances, update(T2, errors={LISTING_KEY: DOWN})).balances
    one = merge(failed, update(T3, {NATIVE: (4, "native")})).balances
    assert one.error(TokenId.parse(NATIVE), "native") is None
    assert one.error(TokenId.parse(OTHER), "native") is DOWN
    assert one.error(TokenId.parse(f"{DEPLOYER}.never-held"), "native") is DOWN
    assert one.error(TokenId.parse(MAPPED), "map") is None


def test_a_failed_read_in_an_older_refresh_does_not_mark_a_newer_amount() -> None:
    stored = merge(None, update(T3, {"stx": (5, "stx")})).balances
    late = merge(stored, update(T2, errors={"stx": DOWN}))
    assert late.balances.failures == {}
    assert late.balances.error(TokenId.parse("stx"), "stx") is None


def test_failures_do_not_move_amounts_and_are_not_written() -> None:
    stored = merge(None, update(T1, {"stx": (5, "stx")})).balances
    merged = merge(stored, update(T2, errors={"stx": DOWN}))
    assert merged.balances.tokens == stored.tokens
    assert merged.needs_write is False
    assert errors_of(merged.balances) == {"stx": DOWN}


def test_a_multi_asset_tokens_failure_is_found_by_its_asset_identifier() -> None:
    asset = f"{DEPLOYER}.multi::gold"
    failed = view(failures={asset: Failure(DOWN, T2)})
    assert failed.error(TokenId.parse(asset), "native") is DOWN


def test_a_token_is_found_under_its_asset_identifier_before_its_contract_id() -> None:
    """A contract with several tokens keeps each under its asset identifier; one with
    a single token keeps it under the contract id, whichever way it is asked for."""
    asset, contract = f"{DEPLOYER}.multi::gold", f"{DEPLOYER}.multi"
    token = TokenId.parse(asset)
    assert token_key(token) == contract
    both = view({asset: TokenState(3, T2, "native"), contract: TokenState(8, T1, "native")})
    assert both.state(token, "native") == TokenState(3, T2, "native")
    alone = view({contract: TokenState(8, T1, "native")})
    assert alone.state(token, "native") == TokenState(8, T1, "native")
    assert alone.state(TokenId.parse(contract), "native") == TokenState(8, T1, "native")
    failed = view(failures={contract: Failure(DOWN, T2)})
    assert failed.error(token, "native") is DOWN
    assert failed.error(TokenId.parse(f"{DEPLOYER}.other"), "native") is None


def test_a_native_token_read_by_the_refresh_whose_listing_failed_shows_no_error() -> None:
    """A read at the failure's own stamp clears it, as everywhere (docs/folding.md)."""
    balances = merge(None, update(T1, {NATIVE: (5, "native")}, errors={LISTING_KEY: DOWN}))
    assert balances.balances.error(TokenId.parse(NATIVE), "native") is None
    assert balances.balances.error(TokenId.parse(OTHER), "native") is DOWN


def test_a_change_is_a_point_at_its_utc_time_and_height(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")  # the local zone must not leak in
    time.tzset()
    try:
        point = change(NATIVE, 5, Stamp(1_704_283_200.5, 42)).point()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert point == BalancePoint(datetime(2024, 1, 3, 12, 0, 0, 500_000, UTC), 5, 42)
    assert point.at.tzinfo is UTC


def test_a_native_token_without_any_state_shows_the_listing_failure() -> None:
    failed = view(failures={LISTING_KEY: Failure(DOWN, T1)})
    assert failed.state(TokenId.parse(NATIVE), "native") is None
    assert failed.error(TokenId.parse(NATIVE), "native") is DOWN


def test_newest_is_the_latest_read_or_listing() -> None:
    assert view({NATIVE: TokenState(1, T1, "native")}, listing=T2).newest == T2.at
    assert view({NATIVE: TokenState(1, T3, "native")}, listing=T2).newest == T3.at
    assert view().newest is None


def test_the_service_path_keeps_stored_amounts_under_a_refresh_that_was_not_stored() -> None:
    """A refresh that could not be stored is laid over what was stored: its newer
    reads and failures stand, the stored amounts it did not re-read too."""
    stored = merge(None, update(T1, {"stx": (5, "stx"), NATIVE: (2, "native")})).balances
    fresh = merge(None, update(T2, {"stx": (6, "stx")}, errors={NATIVE: DOWN})).balances
    shown = both_ways(stored, fresh)
    assert {key: state.amount for key, state in shown.tokens.items()} == {"stx": 6, NATIVE: 2}
    assert shown.error(TokenId.parse(NATIVE), "native") is DOWN
