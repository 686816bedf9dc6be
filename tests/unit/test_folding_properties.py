"""The folding laws (docs/folding.md) over generated journals, against a plain model.

A journal here is a list of entries: *records* (reads of tokens, maybe a complete
listing) and *failures* (a refresh whose read of one key failed). The model below
says what folding any set of them must give, written from the laws and not from
the production code: per key the greatest read, the greatest listing, and per key
the newest failure when it is newer than what it concerns. The production rules
(``apply_changes``, ``merge``, ``merge_views``) must agree for every order, every
grouping into segments and views, and any number of copies of an entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lsm_store import Clock

from balances.blobs import MemoryBlobStore
from balances.domain import Principal, TokenId
from balances.domain.current import (
    LISTING_KEY,
    AddressBalances,
    AddressUpdate,
    Change,
    Stamp,
    TokenKindName,
    apply_changes,
    merge,
    merge_views,
)
from balances.errors import BalancesError, ChainUnavailableError, RateLimitedError
from balances.stores.sharded.journal import Record
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.testing import fake_address

ADDRESS = fake_address("folding-holder")
DEPLOYER = fake_address("folding-deployer")
NATIVE_A, NATIVE_B = f"{DEPLOYER}.token-a", f"{DEPLOYER}.token-b"
MAPPED = f"{DEPLOYER}.token-subnet"
KEY_KINDS: dict[str, TokenKindName] = {"stx": "stx", NATIVE_A: "native", NATIVE_B: "native"}
KEY_KINDS[MAPPED] = "map"
KEYS = list(KEY_KINDS)
#: Few distinct times and heights, so equal stamps (and equal times with other
#: heights, or none) are common rather than rare.
T0 = 1_704_283_200.0  # 2024-01-03T12:00:00Z
TIMES = [T0, T0 + 60, T0 + 120]
HEIGHTS = [None, 0, 1, 7]
AMOUNTS = [0, 1, 2, 2**128 - 1]
ERRORS: list[BalancesError] = [
    ChainUnavailableError("503 from the API"),
    ChainUnavailableError("timed out"),
    RateLimitedError("429", retry_after=5.0),
]
FAST = settings(max_examples=150, deadline=None)

# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    key: str
    kind: TokenKindName
    amount: int
    at: float
    height: int | None


@dataclass(frozen=True)
class Listed:
    at: float
    height: int | None


@dataclass(frozen=True)
class Failed:
    key: str
    error: int  # index into ERRORS
    at: float
    height: int | None


@dataclass(frozen=True)
class Rec:
    """One journal record: reads of one address, and maybe a complete listing."""

    reads: tuple[Read, ...]
    listed: Listed | None


Entry = Rec | Failed


def rank(at: float, height: int | None) -> tuple[float, int]:
    """Later time first; at one time a known height beats none, a higher one a lower."""
    return at, -1 if height is None else height


def read_rank(read: Read) -> tuple[tuple[float, int], int, str]:
    return rank(read.at, read.height), read.amount, read.kind


def failure_rank(failed: Failed) -> tuple[tuple[float, int], str, str]:
    error = ERRORS[failed.error]
    return rank(failed.at, failed.height), type(error).__name__, str(error)


@dataclass(frozen=True)
class Model:
    """What folding a set of entries must give (plain values, easy to compare)."""

    tokens: dict[str, tuple[int, float, int | None, str]]
    listing: tuple[float, int | None] | None
    failures: dict[str, tuple[str, str, float, int | None]]


def atoms(entries: Iterable[Entry]) -> tuple[list[Read], list[Listed], list[Failed]]:
    reads: list[Read] = []
    listings: list[Listed] = []
    failures: list[Failed] = []
    for entry in entries:
        if isinstance(entry, Failed):
            failures.append(entry)
        else:
            reads += entry.reads
            listings += [] if entry.listed is None else [entry.listed]
    return reads, listings, failures


def model(entries: Iterable[Entry]) -> Model:
    reads, listings, failures = atoms(entries)
    tokens = {}
    for key in {read.key for read in reads}:
        best = sorted((r for r in reads if r.key == key), key=read_rank)[-1]
        tokens[key] = (best.amount, best.at, best.height, best.kind)
    listing = None
    if listings:
        newest = sorted(listings, key=lambda s: rank(s.at, s.height))[-1]
        listing = (newest.at, newest.height)
    shown = {}
    for key in {failed.key for failed in failures}:
        newest_failure = sorted((f for f in failures if f.key == key), key=failure_rank)[-1]
        if key == LISTING_KEY:
            concerned = listing
        else:
            concerned = None if key not in tokens else tokens[key][1:3]
        failure_at = rank(newest_failure.at, newest_failure.height)
        if concerned is None or failure_at > rank(*concerned):
            error = ERRORS[newest_failure.error]
            shown[key] = (
                type(error).__name__,
                str(error),
                newest_failure.at,
                newest_failure.height,
            )
    return Model(tokens, listing, shown)


def seen(view: AddressBalances | None) -> Model:
    """A production view as the model's plain values."""
    if view is None:
        return Model({}, None, {})
    tokens = {
        key: (state.amount, state.stamp.at, state.stamp.block_height, state.kind)
        for key, state in view.tokens.items()
    }
    listing = None if view.listing is None else (view.listing.at, view.listing.block_height)
    failures = {
        key: (type(f.error).__name__, str(f.error), f.stamp.at, f.stamp.block_height)
        for key, f in view.failures.items()
    }
    return Model(tokens, listing, failures)


# --- entries as the production code sees them ----------------------------------------------


def changes_of(rec: Rec) -> tuple[Change, ...]:
    return tuple(
        Change(ADDRESS, r.key, r.kind, None, r.amount, Stamp(r.at, r.height)) for r in rec.reads
    )


def listing_of(rec: Rec) -> Stamp | None:
    return None if rec.listed is None else Stamp(rec.listed.at, rec.listed.height)


def fold_entry(view: AddressBalances | None, entry: Entry) -> AddressBalances:
    """One entry laid over ``view``: a record as the journal folds it, a failure as a
    refresh that read nothing (``merge`` with only an error)."""
    if isinstance(entry, Failed):
        stamp = Stamp(entry.at, entry.height)
        update = AddressUpdate(ADDRESS, stamp, {}, errors={entry.key: ERRORS[entry.error]})
        return merge(view, update).balances
    return apply_changes(view, ADDRESS, changes_of(entry), listing_of(entry))


def fold(entries: Iterable[Entry], view: AddressBalances | None = None) -> AddressBalances | None:
    for entry in entries:
        view = fold_entry(view, entry)
    return view


# --- strategies ------------------------------------------------------------------------------

times = st.sampled_from(TIMES)
heights = st.sampled_from(HEIGHTS)


@st.composite
def reads(draw: st.DrawFn) -> Read:
    key = draw(st.sampled_from(KEYS))
    # Now and then a key read as another kind, so the kind's place in the order counts.
    kind = draw(st.sampled_from([KEY_KINDS[key], KEY_KINDS[key], "native", "map"]))
    return Read(key, kind, draw(st.sampled_from(AMOUNTS)), draw(times), draw(heights))


records = st.builds(
    Rec, st.lists(reads(), max_size=4).map(tuple), st.none() | st.builds(Listed, times, heights)
)
failures = st.builds(
    Failed,
    st.sampled_from([*KEYS, LISTING_KEY]),
    st.integers(0, len(ERRORS) - 1),
    times,
    heights,
)
entries = st.one_of(records, records, failures)
journals = st.lists(entries, max_size=10)


@st.composite
def regrouped(draw: st.DrawFn, journal: list[Entry]) -> list[list[Entry]]:
    """``journal`` reordered, with some entries repeated, cut into segments."""
    copies = draw(st.lists(st.sampled_from(journal), max_size=3)) if journal else []
    shuffled = draw(st.permutations([*journal, *copies]))
    cuts = sorted(draw(st.lists(st.integers(0, len(shuffled)), max_size=4)))
    bounds = [0, *cuts, len(shuffled)]
    return [shuffled[a:b] for a, b in pairwise(bounds)]


def join_all(views: Sequence[AddressBalances | None], order: Sequence[bool]) -> Model:
    """Join the views left to right, each time putting the new one first or second."""
    total: AddressBalances | None = None
    for view, first in zip(views, order, strict=False):
        if view is None:
            continue
        if total is None:
            total = view
        else:
            total = merge_views(view, total) if first else merge_views(total, view)
    return seen(total)


# --- the laws ----------------------------------------------------------------------------------


@FAST
@given(journals)
def test_folding_in_journal_order_gives_the_model(journal: list[Entry]) -> None:
    assert seen(fold(journal)) == model(journal)


@FAST
@given(st.data(), journals)
def test_any_order_grouping_and_repetition_gives_the_same_result(
    data: st.DataObject, journal: list[Entry]
) -> None:
    segments = data.draw(regrouped(journal))
    views = [fold(segment) for segment in segments]
    order = data.draw(st.lists(st.booleans(), min_size=len(views), max_size=len(views)))
    assert join_all(views, order) == model(journal)


@FAST
@given(st.data(), journals)
def test_a_view_folds_onto_a_shard_view_as_its_records_would(
    data: st.DataObject, journal: list[Entry]
) -> None:
    """Compaction folds records onto the shard's view; a reader lays the tail's view
    over it: both are the fold of the whole journal."""
    cut = data.draw(st.integers(0, len(journal)))
    shard = fold(journal[:cut])
    tail = fold(journal[cut:])
    assert seen(fold(journal[cut:], shard)) == model(journal)
    if shard is not None and tail is not None:
        assert seen(merge_views(shard, tail)) == seen(merge_views(tail, shard)) == model(journal)


@FAST
@given(journals, journals)
def test_joining_views_is_commutative_associative_and_idempotent(
    first: list[Entry], second: list[Entry]
) -> None:
    a = fold(first) or AddressBalances(ADDRESS)
    b = fold(second) or AddressBalances(ADDRESS)
    c = fold([*second, *first]) or AddressBalances(ADDRESS)
    assert merge_views(a, a) == a
    assert seen(merge_views(a, b)) == seen(merge_views(b, a))
    left, right = merge_views(merge_views(a, b), c), merge_views(a, merge_views(b, c))
    assert seen(left) == seen(right)
    joined = merge_views(a, b)
    assert merge_views(joined, b) == joined  # folding b twice changes nothing


# --- merge: a refresh over what the journal holds ------------------------------------------------


@st.composite
def updates(draw: st.DrawFn) -> AddressUpdate:
    amounts = {r.key: (r.amount, r.kind) for r in draw(st.lists(reads(), max_size=4))}
    errors = {
        key: ERRORS[index]
        for key, index in draw(
            st.dictionaries(
                st.sampled_from([*KEYS, LISTING_KEY]), st.integers(0, len(ERRORS) - 1), max_size=2
            )
        ).items()
        if key not in amounts
    }
    complete = draw(st.booleans()) and LISTING_KEY not in errors
    return AddressUpdate(
        ADDRESS, Stamp(draw(times), draw(heights)), amounts, complete, errors=errors
    )


def update_entries(update: AddressUpdate, known: Model) -> list[Entry]:
    """The update as model entries: its reads, a zero for every known native token a
    complete listing left out, its listing and its failures."""
    at, height = update.stamp.at, update.stamp.block_height
    found = [Read(k, kind, amount, at, height) for k, (amount, kind) in update.amounts.items()]
    listed = None
    if update.listing_complete:
        listed = Listed(at, height)
        zeroed = [k for k, v in known.tokens.items() if v[3] == "native"]
        found += [Read(k, "native", 0, at, height) for k in zeroed if k not in update.amounts]
    failed: list[Entry] = [
        Failed(key, ERRORS.index(error), at, height) for key, error in update.errors.items()
    ]
    return [Rec(tuple(found), listed), *failed]


def moves(read: Read, known: Model) -> bool:
    """The model's change: a first read, or a later read of another amount."""
    before = known.tokens.get(read.key)
    if before is None:
        return True
    amount, at, height, kind = before
    was = Read(read.key, kind, amount, at, height)  # type: ignore[arg-type]
    return amount != read.amount and read_rank(read) > read_rank(was)


@FAST
@given(journals, updates())
def test_merge_joins_the_refresh_and_reports_exactly_what_moved(
    journal: list[Entry], update: AddressUpdate
) -> None:
    current = fold(journal)
    known = seen(current)
    merged = merge(current, update)
    entries = update_entries(update, known)
    assert seen(merged.balances) == model([*journal, *entries])
    rec = entries[0]
    assert isinstance(rec, Rec)
    expected = {
        (read.key, known.tokens[read.key][0] if read.key in known.tokens else None, read.amount)
        for read in rec.reads
        if moves(read, known)
    }
    assert {(c.key, c.old, c.new) for c in merged.changes} == expected
    assert all(c.stamp == update.stamp and c.address == ADDRESS for c in merged.changes)
    first_listing = known.listing is None and update.listing_complete
    assert merged.needs_write == (bool(expected) or first_listing)


@FAST
@given(journals, updates())
def test_the_journal_record_of_a_merge_reproduces_its_amounts(
    journal: list[Entry], update: AddressUpdate
) -> None:
    """What a layout writes for a merge (its changes and listing), folded onto the
    same journal, gives every amount the merge decided."""
    current = fold(journal)
    merged = merge(current, update)
    listing = update.stamp if update.listing_complete else None
    replayed = apply_changes(current, ADDRESS, merged.changes, listing)
    assert replayed.listing == merged.balances.listing
    assert set(replayed.tokens) == set(merged.balances.tokens)
    for key in [*KEYS, f"{DEPLOYER}.never-seen"]:
        token, kind = TokenId.parse(key), KEY_KINDS.get(key, "native")
        shown, stored = merged.balances.state(token, kind), replayed.state(token, kind)
        assert (shown and shown.amount) == (stored and stored.amount)


@FAST
@given(journals, updates())
def test_merging_a_refresh_twice_changes_nothing_the_second_time(
    journal: list[Entry], update: AddressUpdate
) -> None:
    once = merge(fold(journal), update)
    twice = merge(once.balances, update)
    assert twice.balances == once.balances
    assert twice.changes == ()
    assert twice.needs_write is False


# --- the same laws through the sharded layout -----------------------------------------------------

GRACE = 600.0


async def through_the_layout(segments: list[list[Rec]], compact_after: set[int]) -> Any:
    """Write each segment (records only: failures are never stored), compacting after
    the chosen ones; a fresh replica then loads the address."""
    blobs, wall = MemoryBlobStore(), Clock(T0 + 3_600)
    settings = LsmSettings(shards=2, compact_grace_seconds=GRACE)
    writer = ShardedStore(blobs, settings, clock=Clock(0.0), wall_clock=wall)
    for index, segment in enumerate(segments):
        records = [Record(ADDRESS, changes_of(rec), listing_of(rec)) for rec in segment]
        if records:
            await writer.journal.append(records)
        wall.now += 1.0
        if index in compact_after:
            await writer.maintain(wall.now + GRACE)
    reader = ShardedStore(blobs, settings, clock=Clock(0.0), wall_clock=wall)
    return await reader.load(Principal.parse(ADDRESS))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.lists(records, max_size=8))
def test_the_sharded_layout_folds_segments_and_compactions_like_the_model(
    data: st.DataObject, journal: list[Rec]
) -> None:
    segments: list[list[Rec]] = [list(s) for s in data.draw(regrouped(list(journal)))]  # type: ignore[arg-type]
    compact_after = set(data.draw(st.lists(st.integers(0, len(segments) - 1), max_size=3)))
    loaded = asyncio.run(through_the_layout(segments, compact_after))
    assert seen(loaded) == model(journal)


def test_the_model_is_not_trivial() -> None:
    """The model decides ties the way the laws say (a check of the checker)."""
    low, high = Read(NATIVE_A, "native", 1, T0, None), Read(NATIVE_A, "native", 0, T0, 0)
    assert model([Rec((high, low), None)]).tokens[NATIVE_A][0] == 0  # a height beats none
    bigger = Read(NATIVE_A, "native", 2, T0, 0)
    assert model([Rec((bigger, high), None)]).tokens[NATIVE_A][0] == 2  # then the amount
    failed = Failed(NATIVE_A, 0, T0, 0)
    assert model([Rec((high,), None), failed]).failures == {}  # a read at its stamp clears it
