"""Backfill against the Stacks API stand-in over loopback, checked against its ledger.

Every point a backfill writes must be the ledger's ground truth at that height,
and the set of points must be exactly the heights where the holder's balance
moved, up to the anchor. Interrupted walks must resume into the same points.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from conftest_client import stacks_client

from balances.blobs import MemoryBlobStore
from balances.chain.clarity import StringAscii, Tuple, UInt
from balances.chain.client import StacksClient
from balances.chain.routes import BALANCE_CHANGES, PRINCIPAL_TXS, TX_EVENTS
from balances.domain import Principal
from balances.domain.current import AddressBalances, Change, Stamp, TokenKindName, TokenState
from balances.errors import ChainUnavailableError
from balances.sync.backfill import Backfiller, BackfillReport, checkpoint_key
from balances.testing import FakeChain, FakeChainServer, fake_address
from balances.testing.fake_chain.records import PrintEvent

HOLDER = fake_address("backfill-holder")
BOB = fake_address("backfill-bob")
DEPLOYER = fake_address("backfill-deployer")
NATIVE = f"{DEPLOYER}.charisma-token"  # asset name "charisma" differs from the contract
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"
KINDS: dict[str, TokenKindName] = {"stx": "stx", NATIVE: "native", CREDIT: "map"}


@dataclass
class RecordingLayout:
    """Records ``record_history`` calls; ``fail_on`` raises on that call (1-based)."""

    calls: list[list[Change]] = field(default_factory=list)
    fail_on: int | None = None

    async def record_history(self, address: Principal, changes: Sequence[Change]) -> None:
        assert str(address) == HOLDER
        if self.fail_on is not None and len(self.calls) + 1 == self.fail_on:
            raise RuntimeError("the layout crashed")
        self.calls.append(list(changes))

    @property
    def points(self) -> list[Change]:
        return [change for call in self.calls for change in call]


def _round(chain: FakeChain, n: int) -> None:
    """One round of the holder's activity: every kind of move of every token."""
    chain.mint("stx", HOLDER, 1_000_000 + n)
    chain.mint(NATIVE, HOLDER, 900 + n)
    chain.transfer("stx", HOLDER, BOB, 1_200 + n)
    chain.transfer(NATIVE, HOLDER, BOB, 250)
    chain.transfer(NATIVE, BOB, HOLDER, 40 + n)
    chain.deposit(CREDIT, HOLDER, 300 + n)  # also moves NATIVE into the wrapper
    chain.withdraw(CREDIT, HOLDER, 120)
    chain.transfer(CREDIT, HOLDER, BOB, 30)
    chain.burn("stx", HOLDER, 1_000)
    chain.burn(NATIVE, HOLDER, 10)
    chain.mint("stx", BOB, 7)  # not the holder's business
    chain.advance_blocks(2)


@pytest.fixture
def fake_chain() -> FakeChain:
    """Seven rounds (70 holder txs: more than one page of 50) of mixed activity."""
    chain = FakeChain()
    chain.add_native_token(NATIVE, "charisma", symbol="CHA")
    chain.add_map_token(CREDIT, symbol="sCHA", base_token=NATIVE)
    chain.mint(NATIVE, BOB, 10_000)
    for n in range(7):
        _round(chain, n)
    return chain


@pytest.fixture
async def client(fake_chain_server: FakeChainServer) -> AsyncIterator[StacksClient]:
    async with stacks_client(fake_chain_server) as made:
        yield made


def anchor_of(chain: FakeChain) -> AddressBalances:
    """The holder's balances as a refresh at the current tip would have read them."""
    stamp = Stamp(float(chain.tip_time + 1), chain.tip_height)
    tokens = {
        key: TokenState(chain.balance(key, HOLDER), stamp, kind) for key, kind in KINDS.items()
    }
    return AddressBalances(HOLDER, tokens, listing=stamp)


def expected_points(chain: FakeChain, up_to: int) -> set[tuple[str, int, int]]:
    """(key, height, amount after) wherever the ledger moved the holder's balance."""
    found = set()
    for key in KINDS:
        account = chain.accounts(HOLDER)[key]
        for height, (amount, *_) in zip(account.heights, account.snapshots, strict=True):
            if height <= up_to:
                found.add((key, height, amount))
    return found


def as_tuples(points: Sequence[Change]) -> set[tuple[str, int, int]]:
    assert all(p.stamp.block_height is not None for p in points)
    return {(p.key, p.stamp.block_height or 0, p.new) for p in points}


def point_key(change: Change) -> tuple[str, float, int | None, int, str]:
    return (change.key, change.stamp.at, change.stamp.block_height, change.new, change.kind)


def run_points(layout: RecordingLayout) -> list[tuple[str, float, int | None, int, str]]:
    return sorted(point_key(change) for change in layout.points)


async def test_every_point_is_the_ledgers_ground_truth(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor, height = anchor_of(fake_chain), fake_chain.tip_height
    layout, seen = RecordingLayout(), []
    backfiller = Backfiller(client, layout, MemoryBlobStore())
    report = await backfiller.backfill(
        Principal.parse(HOLDER), anchor, progress=lambda done, total: seen.append((done, total))
    )
    points = layout.points
    for point in points:
        assert point.stamp.block_height is not None
        assert point.new == fake_chain.balance(
            point.key, HOLDER, at_height=point.stamp.block_height
        )
        block = fake_chain.blocks.at_height(point.stamp.block_height)
        assert block is not None
        assert point.stamp.at == block.time
        assert point.kind == KINDS[point.key]
        assert point.old is None
    assert as_tuples(points) == expected_points(fake_chain, height)
    assert len(points) == len(as_tuples(points))  # no duplicates
    total = len(fake_chain.transactions_of(HOLDER))
    assert report.done
    assert not report.resumed
    assert report.stopped == {}
    assert report.residuals == {}
    assert report.txs_seen == report.total_txs == total > 50
    assert report.points_written == len(points)
    assert report.pages == 2
    assert seen == [(50, total), (total, total)]
    oldest = datetime.fromtimestamp(min(p.stamp.at for p in points if p.key == NATIVE), UTC)
    assert report.first_point[NATIVE] == oldest
    assert fake_chain.requests[PRINCIPAL_TXS] == 2
    # FT changes: one request per 20 FT-moving txs of a page, not one per transaction.
    assert fake_chain.requests[BALANCE_CHANGES] <= 2 + total // 20
    assert fake_chain.requests[TX_EVENTS] == 7 * 3  # each call to the map token, once


async def test_newest_point_of_each_token_holds_the_anchor_amount(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor = anchor_of(fake_chain)
    layout = RecordingLayout()
    await Backfiller(client, layout, MemoryBlobStore()).backfill(Principal.parse(HOLDER), anchor)
    for key, state in anchor.tokens.items():
        newest = max((p for p in layout.points if p.key == key), key=lambda p: p.stamp.at)
        assert newest.new == state.amount
    series = pytest.importorskip("balances.domain.series")
    live = Change(
        HOLDER, "stx", "stx", None, anchor.tokens["stx"].amount, anchor.tokens["stx"].stamp
    )
    stx = [p.point() for p in layout.points if p.key == "stx"]
    assert series.normalize([*stx, live.point()]) == series.normalize(stx)  # the seam is a no-op


async def test_transactions_after_the_anchor_are_skipped(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor, height = anchor_of(fake_chain), fake_chain.tip_height
    _round(fake_chain, 99)  # after the anchor: live sync's part
    layout = RecordingLayout()
    report = await Backfiller(client, layout, MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), anchor
    )
    assert max(p.stamp.block_height or 0 for p in layout.points) <= height
    assert as_tuples(layout.points) == expected_points(fake_chain, height)
    assert report.txs_seen == len(fake_chain.transactions_of(HOLDER))  # walked, not folded


async def test_since_stops_early_with_the_amount_in_force(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor = anchor_of(fake_chain)
    txs = fake_chain.transactions_of(HOLDER)
    cut = txs[len(txs) - 12]  # a tx exactly at ``since`` is in force at ``since``
    block = fake_chain.blocks.at_height(cut.height)
    assert block is not None
    since = datetime.fromtimestamp(block.time, UTC)
    layout = RecordingLayout()
    report = await Backfiller(client, layout, MemoryBlobStore(), page_size=5).backfill(
        Principal.parse(HOLDER), anchor, since=since
    )
    at_since = [p for p in layout.points if p.stamp.at == block.time]
    assert {p.key for p in at_since} == set(KINDS)
    for point in at_since:
        assert point.stamp.block_height is None
        assert point.new == fake_chain.balance(point.key, HOLDER, at_height=cut.height)
    later = [p for p in layout.points if p.stamp.at != block.time]
    assert all(p.stamp.at > block.time for p in later)
    assert as_tuples(later) == {
        t for t in expected_points(fake_chain, anchor_height(anchor)) if t[1] > cut.height
    }
    assert report.txs_seen == 11
    assert report.done
    assert fake_chain.requests[PRINCIPAL_TXS] == 3  # 11 txs on 5-tx pages, not all of them
    assert all(t == datetime.fromtimestamp(block.time, UTC) for t in report.first_point.values())


def anchor_height(anchor: AddressBalances) -> int:
    return max(state.stamp.block_height or 0 for state in anchor.tokens.values())


async def test_a_layout_crash_resumes_into_the_same_points(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor, holder = anchor_of(fake_chain), Principal.parse(HOLDER)
    whole = RecordingLayout()
    await Backfiller(client, whole, MemoryBlobStore(), page_size=5).backfill(holder, anchor)

    blobs = MemoryBlobStore()
    crashing = RecordingLayout(fail_on=4)
    with pytest.raises(RuntimeError, match="crashed"):
        await Backfiller(client, crashing, blobs, page_size=5).backfill(holder, anchor)
    assert len(crashing.calls) == 3
    _round(fake_chain, 50)  # the service's anchor moves on meanwhile; the resume ignores it
    rest = RecordingLayout()
    report = await Backfiller(client, rest, blobs, page_size=5).backfill(
        holder, anchor_of(fake_chain)
    )
    assert report.resumed
    assert report.done
    combined = run_points(crashing) + run_points(rest)
    assert sorted(combined) == run_points(whole)  # exactly: no gap, no duplicate
    assert report.total_points == len(whole.points)


async def test_a_chain_outage_resumes_into_the_same_points(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor, holder = anchor_of(fake_chain), Principal.parse(HOLDER)
    whole = RecordingLayout()
    await Backfiller(client, whole, MemoryBlobStore(), page_size=7).backfill(holder, anchor)

    def outage_after_two_pages(done: int, total: int | None) -> None:
        if done == 14:
            fake_chain.faults.force_5xx = 3  # every retry of the next request fails

    blobs, first = MemoryBlobStore(), RecordingLayout()
    with pytest.raises(ChainUnavailableError):
        await Backfiller(client, first, blobs, page_size=7).backfill(
            holder, anchor, progress=outage_after_two_pages
        )
    rest = RecordingLayout()
    report = await Backfiller(client, rest, blobs, page_size=7).backfill(holder, anchor)
    assert report.resumed
    assert report.txs_seen == report.total_txs - 14
    assert sorted(run_points(first) + run_points(rest)) == run_points(whole)


async def test_a_finished_backfill_is_a_no_op_unless_forced(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor, holder, blobs = anchor_of(fake_chain), Principal.parse(HOLDER), MemoryBlobStore()
    first = RecordingLayout()
    done = await Backfiller(client, first, blobs).backfill(holder, anchor)
    assert (await blobs.head(checkpoint_key(HOLDER))).size > 0
    fake_chain.reset_requests()
    again = RecordingLayout()
    report = await Backfiller(client, again, blobs).backfill(holder, anchor)
    assert again.calls == []
    assert fake_chain.requests[PRINCIPAL_TXS] == 0
    assert report.already_done
    assert report.points_written == 0
    assert report.txs_seen == 0
    assert report.total_points == done.total_points
    forced = RecordingLayout()
    report = await Backfiller(client, forced, blobs).backfill(holder, anchor, force=True)
    assert not report.already_done
    assert run_points(forced) == run_points(first)


async def test_tokens_restricts_the_walk(fake_chain: FakeChain, client: StacksClient) -> None:
    anchor = anchor_of(fake_chain)
    layout = RecordingLayout()
    report = await Backfiller(client, layout, MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), anchor, tokens=["stx"]
    )
    assert {p.key for p in layout.points} == {"stx"}
    assert set(report.first_point) == {"stx"}
    assert fake_chain.requests[BALANCE_CHANGES] == 0
    assert fake_chain.requests[TX_EVENTS] == 0


async def test_a_native_token_met_in_history_joins_from_the_listing(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    old = f"{DEPLOYER}.old-token"
    fake_chain.add_native_token(old, "old")
    fake_chain.mint(old, HOLDER, 100)
    fake_chain.transfer(old, HOLDER, BOB, 100)  # gone by the anchor: not in its tokens
    anchor = anchor_of(fake_chain)
    layout = RecordingLayout()
    await Backfiller(client, layout, MemoryBlobStore()).backfill(Principal.parse(HOLDER), anchor)
    heights = fake_chain.accounts(HOLDER)[old].heights
    assert {t for t in as_tuples(layout.points) if t[0] == old} == {
        (old, heights[0], 100),
        (old, heights[1], 0),
    }
    assert next(p.kind for p in layout.points if p.key == old) == "native"

    unlisted = AddressBalances(HOLDER, anchor.tokens, listing=None)
    layout = RecordingLayout()
    report = await Backfiller(client, layout, MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), unlisted
    )
    assert old not in {p.key for p in layout.points}
    assert "no complete native listing" in report.stopped[old]


async def test_an_unreadable_print_stops_that_token_there(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    anchor = anchor_of(fake_chain)
    credit_txs = [tx for tx in fake_chain.transactions_of(HOLDER) if tx.contract_id == CREDIT]
    odd = credit_txs[-4]  # the fourth newest call to the map token
    strange = PrintEvent(CREDIT, Tuple({"event": StringAscii("x-redeem-note"), "amount": UInt(1)}))
    fake_chain._txs[odd.tx_id] = replace(odd, events=(*odd.events, strange))  # served as events
    layout = RecordingLayout()
    report = await Backfiller(client, layout, MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), anchor
    )
    credit = sorted((p for p in layout.points if p.key == CREDIT), key=lambda p: p.stamp.at)
    assert credit[0].stamp.block_height == odd.height  # its history starts there
    assert len(credit) == 4
    for point in credit:
        assert point.new == fake_chain.balance(CREDIT, HOLDER, at_height=point.stamp.block_height)
    assert "x-redeem-note" in report.stopped[CREDIT]
    assert odd.tx_id in report.stopped[CREDIT]
    assert as_tuples([p for p in layout.points if p.key != CREDIT]) == {
        t for t in expected_points(fake_chain, anchor_height(anchor)) if t[0] != CREDIT
    }


async def test_an_incoming_map_transfer_shows_as_a_residual(
    fake_chain: FakeChain, client: StacksClient
) -> None:
    fake_chain.deposit(CREDIT, BOB, 500)
    fake_chain.transfer(CREDIT, BOB, HOLDER, 5)  # indexed under BOB only
    anchor = anchor_of(fake_chain)
    report: BackfillReport = await Backfiller(
        client, RecordingLayout(), MemoryBlobStore()
    ).backfill(Principal.parse(HOLDER), anchor)
    assert report.residuals == {CREDIT: 5}


def test_failed_transactions_cannot_be_produced_by_the_stand_in() -> None:
    """The stand-in mines every transaction as ``success`` with zero fees, so aborted
    transactions are covered by scripted answers in tests/unit/test_chain_history.py."""
    chain = FakeChain()
    chain.mint("stx", HOLDER, 1)
    assert all(tx.fee == 0 for tx in chain.transactions_of(HOLDER))
