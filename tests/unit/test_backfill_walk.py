"""Backfill logic on a scripted history: prints, aborted txs, stops, checkpoints, races."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest

from balances.blobs import MemoryBlobStore
from balances.chain.clarity import (
    NONE,
    ClarityValue,
    Int,
    Some,
    StringAscii,
    StringUtf8,
    Tuple,
    UInt,
    principal_from_text,
)
from balances.chain.history import BalanceChange, PrincipalTx, TxEvent, TxPage
from balances.domain import Principal
from balances.domain.current import AddressBalances, Change, Stamp, TokenState
from balances.errors import CorruptBlobError, WriteConflictError
from balances.stores.encoding import encode_document
from balances.sync.backfill import CHECKPOINT_FORMAT, CHECKPOINT_KIND, Backfiller, checkpoint_key
from balances.sync.backfill_events import Unreadable, map_token_deltas, print_delta
from balances.sync.backfill_state import start_state, state_from_json, state_to_json

HOLDER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
OTHER = "SP3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZW9P3P0G"
DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"
NATIVE = f"{DEPLOYER}.charisma-token"
ASSET = f"{NATIVE}::charisma"
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"


def tx_id(n: int) -> str:
    return "0x" + f"{n:064x}"


def tx(
    n: int,
    *,
    stx: int = 0,
    ft: bool = False,
    status: str = "success",
    call: str | None = None,
    fee: int = 0,
) -> PrincipalTx:
    return PrincipalTx(
        tx_id=tx_id(n),
        block_height=100 + n,
        block_time=1_700_000_000.0 + 10 * n,
        tx_index=0,
        status=status,
        type="contract_call" if call else "token_transfer",
        fee=fee,
        contract_id=call,
        function_name="f" if call else None,
        stx_net=stx,
        affects_stx=stx != 0,
        affects_ft=ft,
    )


@dataclass
class ScriptedHistory:
    """A HistoryReader over fixed transactions (newest first), ``size`` per page."""

    txs: list[PrincipalTx]
    changes: dict[str, list[BalanceChange]] = field(default_factory=dict)
    events: dict[str, list[TxEvent]] = field(default_factory=dict)
    size: int = 2
    calls: list[str] = field(default_factory=list)
    on_page: Callable[[int], Awaitable[None]] | None = None

    async def get_principal_transactions(
        self, principal: str | Principal, *, cursor: str | None = None, limit: int = 50
    ) -> TxPage:
        start = int(cursor or 0)
        self.calls.append(f"txs {start}")
        if self.on_page is not None:
            await self.on_page(start)
        end = start + self.size
        following = str(end) if end < len(self.txs) else None
        return TxPage(tuple(self.txs[start:end]), following, len(self.txs))

    async def get_balance_changes(
        self, principal: str | Principal, tx_ids: Sequence[str]
    ) -> list[BalanceChange]:
        self.calls.append(f"changes {sorted(tx_ids)}")
        return [change for tx_id in tx_ids for change in self.changes.get(tx_id, [])]

    async def get_tx_events(self, tx_id: str) -> list[TxEvent]:
        self.calls.append(f"events {tx_id}")
        return self.events.get(tx_id, [])


@dataclass
class Layout:
    points: list[Change] = field(default_factory=list)

    async def record_history(self, address: Principal, changes: Sequence[Change]) -> None:
        self.points += changes


def anchor(amounts: dict[str, int], height: int | None = 200) -> AddressBalances:
    stamp = Stamp(1_800_000_000.0, height)
    kinds = {"stx": "stx", NATIVE: "native", CREDIT: "map"}
    tokens = {key: TokenState(amount, stamp, kinds[key]) for key, amount in amounts.items()}  # type: ignore[misc]
    return AddressBalances(HOLDER, tokens, listing=stamp)


def prints(*values: ClarityValue, contract: str = CREDIT) -> list[TxEvent]:
    return [TxEvent(i, "contract_log", contract, "print", value) for i, value in enumerate(values)]


def event(name: str, amount: int = 5, **parties: ClarityValue) -> Tuple:
    return Tuple({"event": StringAscii(name), "amount": UInt(amount), **parties})


ME, THEM = principal_from_text(HOLDER), principal_from_text(OTHER)


# --- prints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "delta"),
    [
        (event("deposit", sender=ME), 5),
        (event("deposit", sender=THEM, recipient=Some(ME)), 5),
        (event("deposit", sender=ME, recipient=THEM), 0),
        (event("deposit", sender=ME, recipient=NONE), 5),
        (event("withdraw", sender=ME, recipient=THEM), -5),
        (event("withdraw", sender=THEM), 0),
        (event("transfer", sender=ME, recipient=THEM), -5),
        (event("transfer", sender=THEM, recipient=ME), 5),
        (
            Tuple(
                {
                    "event": StringUtf8("x-transfer"),
                    "amount": UInt(2),
                    "sender": THEM,
                    "recipient": ME,
                }
            ),
            2,
        ),
    ],
)
def test_prints_that_are_understood(value: ClarityValue, delta: int) -> None:
    assert print_delta(value, HOLDER) == delta


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (UInt(5), "not a tuple"),
        (Tuple({"amount": UInt(5)}), "without an event name"),
        (Tuple({"event": UInt(1), "amount": UInt(5)}), "without an event name"),
        (event("x-redeem-note", sender=ME), "x-redeem-note"),
        (Tuple({"event": StringAscii("deposit"), "amount": Int(5), "sender": ME}), "uint"),
        (event("deposit", sender=StringAscii(HOLDER)), "not a principal"),
        (event("deposit"), "naming no one"),
        (event("withdraw"), "without a sender"),
        (event("transfer", sender=ME), "both sender and recipient"),
    ],
)
def test_prints_that_are_not(value: ClarityValue, reason: str) -> None:
    found = print_delta(value, HOLDER)
    assert isinstance(found, Unreadable)
    assert reason in found.reason


def test_deltas_sum_per_contract_and_stop_at_the_first_unreadable() -> None:
    events = [
        *prints(event("deposit", sender=ME, amount=7), event("withdraw", sender=ME, amount=2)),
        *prints(event("deposit", sender=ME), contract=NATIVE),  # not followed
        TxEvent(9, "contract_log", CREDIT, "not-print", UInt(1)),
        TxEvent(10, "ft_asset"),
    ]
    assert map_token_deltas(events, {CREDIT}, HOLDER) == {CREDIT: 5}
    odd = [*prints(UInt(1)), *prints(event("deposit", sender=ME))]
    assert isinstance(map_token_deltas(odd, {CREDIT}, HOLDER)[CREDIT], Unreadable)


# --- the walk -------------------------------------------------------------------


async def test_aborted_transactions_move_only_their_fee() -> None:
    history = ScriptedHistory(
        [
            tx(3, ft=True),
            tx(2, stx=-3, ft=True, status="abort_by_post_condition", call=CREDIT, fee=3),
            tx(1, stx=1_000),
        ],
        changes={tx_id(3): [BalanceChange(tx_id(3), "ft", ASSET, 50)]},
        size=5,
    )
    layout = Layout()
    report = await Backfiller(history, layout, MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), anchor({"stx": 997, NATIVE: 50, CREDIT: 0})
    )
    got = {(p.key, p.stamp.block_height, p.new) for p in layout.points}
    assert got == {(NATIVE, 103, 50), ("stx", 102, 997), ("stx", 101, 1_000)}
    assert history.calls == ["txs 0", f"changes {[tx_id(3)]}"]  # no events, no FT for tx 2
    assert report.residuals == {}


async def test_an_impossible_amount_stops_the_token_with_its_last_point() -> None:
    history = ScriptedHistory([tx(2, stx=-10), tx(1, stx=500)])
    layout = Layout()
    report = await Backfiller(history, layout, MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), anchor({"stx": 100})
    )
    assert [(p.stamp.block_height, p.new) for p in layout.points] == [(102, 100), (101, 110)]
    assert "would be -390" in report.stopped["stx"]
    assert report.done


async def test_an_anchor_without_height_or_amount_stops_at_once() -> None:
    history = ScriptedHistory([tx(1, stx=5)])
    report = await Backfiller(history, Layout(), MemoryBlobStore()).backfill(
        Principal.parse(HOLDER), anchor({"stx": 5}, height=None), map_tokens=[CREDIT]
    )
    assert "no block height" in report.stopped["stx"]
    assert "not in the anchor" in report.stopped[CREDIT]
    assert history.calls == []  # nothing left to walk


async def test_a_second_writer_of_the_checkpoint_is_a_conflict() -> None:
    blobs = MemoryBlobStore()
    key = checkpoint_key(HOLDER)

    async def intrude(start: int) -> None:
        if start == 2:  # another backfill of the holder wrote its own checkpoint
            theirs = state_to_json(start_state(HOLDER, anchor({"stx": 1}), None, [], None))
            other = encode_document(CHECKPOINT_KIND, CHECKPOINT_FORMAT, theirs)
            await blobs.put(key, other)

    history = ScriptedHistory([tx(n, stx=1) for n in range(6, 0, -1)], on_page=intrude)
    with pytest.raises(WriteConflictError, match="another backfill"):
        await Backfiller(history, Layout(), blobs).backfill(
            Principal.parse(HOLDER), anchor({"stx": 6})
        )


def test_the_checkpoint_round_trips_and_refuses_other_bodies() -> None:
    state = start_state(HOLDER, anchor({"stx": 2**128 - 1, NATIVE: 3}), None, [CREDIT], 12.5)
    state.cursor, state.pages, state.residuals = "9:0:1", 3, {NATIVE: 3}
    state.key_for_asset(f"{DEPLOYER}.other::x")
    body = state_to_json(state)
    assert state_from_json(body, "k") == state
    assert body["tracks"]["stx"]["amount"] == str(2**128 - 1)
    with pytest.raises(CorruptBlobError):
        state_from_json({**body, "tracks": {"stx": {"kind": "gold"}}}, "k")
    with pytest.raises(CorruptBlobError):
        state_from_json({"address": HOLDER}, "k")
