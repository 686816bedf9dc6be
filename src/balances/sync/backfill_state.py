"""The state of one backfill walk, how a transaction folds into it, and its checkpoint form.

The walk goes newest to oldest. Each tracked token keeps its *running amount*:
the amount after the next (older) transaction to fold. Folding a transaction
that moved the token records a change point at the transaction's block (the
running amount: what the holder had after it), then subtracts the transaction's
net change, giving the amount before it. Everything here is pure, and the whole
state round-trips through JSON, so a walk resumed from its checkpoint folds the
same transactions into the same points.

Tokens stop, each on its own, when the walk can no longer be trusted for them: no
anchor amount or height, a ``print`` that cannot be read, or an amount that would
leave ``0..2**128-1`` (transactions missing from the API's index, or a stale
anchor). A stopped token's history starts at its last point.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from balances.chain.history import PrincipalTx
from balances.domain import MAX_AMOUNT
from balances.domain.current import STX_KEY, AddressBalances, Change, Stamp, TokenKindName
from balances.stores.encoding import corrupt
from balances.sync.backfill_events import Delta, Unreadable

_UNKNOWN_THEN = "not in the anchor: its amount then is unknown"
_NO_LISTING = "not in the anchor, which has no complete native listing: its amount then is unknown"
_NO_HEIGHT = "the anchor's read of it has no block height"


@dataclass(slots=True)
class Track:
    """One token in the walk; ``first`` is the time of its oldest point so far."""

    kind: TokenKindName
    amount: int
    anchor_height: int
    first: float | None = None
    stopped: str | None = None

    @property
    def active(self) -> bool:
        return self.stopped is None


@dataclass(frozen=True, slots=True)
class Plan:
    """What the walk was asked for. ``listing_height`` is the height of the anchor's
    complete native listing (native tokens it lacks were zero then), if it had one."""

    tokens: tuple[str, ...] | None
    map_tokens: tuple[str, ...]
    since: float | None
    listing_height: int | None

    def wants(self, key: str) -> bool:
        return self.tokens is None or key in self.tokens


@dataclass(slots=True)
class WalkState:
    """A walk in progress: per-token tracks, the next page's cursor, and counters."""

    address: str
    plan: Plan
    tracks: dict[str, Track]
    assets: dict[str, str] = field(default_factory=dict)  # asset identifier -> key
    cursor: str | None = None
    pages: int = 0
    txs: int = 0
    points: int = 0
    done: bool = False
    residuals: dict[str, int] = field(default_factory=dict)

    def active(self, kind: TokenKindName) -> dict[str, Track]:
        return {k: t for k, t in self.tracks.items() if t.kind == kind and t.active}

    def may_discover(self) -> bool:
        """Whether a native token not tracked yet could still join the walk."""
        if self.plan.tokens is None:
            return True
        return any(key not in self.tracks for key in self.plan.tokens)

    def has_work(self) -> bool:
        """Whether walking on can still give a point (a native token met without an
        anchor listing would stop at once, so it is no reason to walk)."""
        if any(t.active for t in self.tracks.values()):
            return True
        return self.may_discover() and self.plan.listing_height is not None

    def native_ceiling(self) -> int | None:
        """The highest block whose native FT changes matter (None: none matter)."""
        heights = [t.anchor_height for t in self.active("native").values()]
        if self.may_discover() and self.plan.listing_height is not None:
            heights.append(self.plan.listing_height)
        return max(heights, default=None)

    def key_for_asset(self, asset: str) -> str | None:
        """The track key of a native asset identifier, tracking it if it is new and
        wanted; None when the walk does not follow it."""
        key = self.assets.get(asset)
        if key is None:
            key = _new_asset_key(asset, self.tracks, self.assets)
            self.assets[asset] = key
        if key not in self.tracks and self.plan.wants(key):
            height = self.plan.listing_height
            self.tracks[key] = (
                Track("native", 0, height)
                if height is not None
                else Track("native", 0, 0, stopped=_NO_LISTING)
            )
        return key if key in self.tracks else None


def _new_asset_key(asset: str, tracks: Mapping[str, Track], assets: Mapping[str, str]) -> str:
    """The contract id (as :func:`~balances.domain.current.token_key`), unless the
    anchor keys this asset by its identifier or another asset of the contract
    already holds the contract id (a contract defining several tokens)."""
    contract = asset.partition("::")[0]
    if asset in tracks or contract in assets.values():
        return asset
    return contract


def start_state(
    address: str,
    anchor: AddressBalances,
    tokens: Collection[str] | None,
    map_tokens: Collection[str],
    since: float | None,
) -> WalkState:
    """A fresh walk from ``anchor``: a track per wanted anchor token and map token."""
    listing = anchor.listing
    plan = Plan(
        None if tokens is None else tuple(sorted({_key(token) for token in tokens})),
        tuple(sorted(set(map_tokens))),
        since,
        None if listing is None else listing.block_height,
    )
    tracks: dict[str, Track] = {}
    for key, state in anchor.tokens.items():
        kind: TokenKindName = "map" if key in plan.map_tokens else state.kind
        if plan.wants(key):
            height = state.stamp.block_height
            stopped = _NO_HEIGHT if height is None else None
            tracks[key] = Track(kind, state.amount, height or 0, stopped=stopped)
    for key in (STX_KEY, *plan.map_tokens):
        if key not in tracks and plan.wants(key):
            kind = "stx" if key == STX_KEY else "map"
            tracks[key] = Track(kind, 0, 0, stopped=_UNKNOWN_THEN)
    return WalkState(address, plan, tracks)


def _key(text: str) -> str:
    """A key as :class:`AddressBalances` spells it (``stx`` in any case is STX)."""
    key = text.strip()
    return STX_KEY if key.lower() == STX_KEY else key


def apply_tx(state: WalkState, tx: PrincipalTx, deltas: Mapping[str, Delta]) -> list[Change]:
    """Fold one transaction (``deltas``: native and map tokens by key; STX comes from
    the transaction itself); the change points it gives, by key."""
    moves = dict(deltas)
    if tx.stx_net:
        moves[STX_KEY] = tx.stx_net
    changes: list[Change] = []
    for key in sorted(moves):
        track = state.tracks.get(key)
        if track is None or not track.active or tx.block_height > track.anchor_height:
            continue  # not followed, stopped, or after the anchor (live sync's part)
        change = _step(state.address, key, track, tx, moves[key])
        if change is not None:
            changes.append(change)
    return changes


def _step(address: str, key: str, track: Track, tx: PrincipalTx, delta: Delta) -> Change | None:
    """The point of ``tx`` for one token (None: it did not move), stepping the track
    back to the amount before ``tx`` or stopping it there."""
    if delta == 0:
        return None
    stamp = Stamp(tx.block_time, tx.block_height)
    change = Change(address, key, track.kind, None, track.amount, stamp)
    track.first = tx.block_time
    where = f"tx {tx.tx_id} at height {tx.block_height}"
    if isinstance(delta, Unreadable):
        track.stopped = f"{delta.reason} ({where})"
        return change
    before = track.amount - delta
    if 0 <= before <= MAX_AMOUNT:
        track.amount = before
    else:
        track.stopped = (
            f"the amount before {where} would be {before}: transactions missing "
            "from the API's index, or a stale anchor"
        )
    return change


def close_at_since(state: WalkState) -> list[Change]:
    """The amount in force at ``since`` of every active token, as a point there."""
    since = state.plan.since
    assert since is not None
    changes = []
    for key, track in sorted(state.tracks.items()):
        if track.active:
            changes.append(Change(state.address, key, track.kind, None, track.amount, Stamp(since)))
            track.first = since
    return changes


def close_at_end(state: WalkState) -> None:
    """The history ran out: every active token should be back at zero; what is not
    is a residual (transactions the API does not index under this holder)."""
    state.residuals = {
        key: track.amount for key, track in state.tracks.items() if track.active and track.amount
    }


# --- the checkpoint form ------------------------------------------------------


def state_to_json(state: WalkState) -> dict[str, Any]:
    """The state as JSON (amounts as decimal strings: u128 does not fit a number)."""
    plan = state.plan
    return {
        "address": state.address,
        "plan": {
            "tokens": None if plan.tokens is None else list(plan.tokens),
            "map_tokens": list(plan.map_tokens),
            "since": plan.since,
            "listing_height": plan.listing_height,
        },
        "tracks": {
            key: {
                "kind": t.kind,
                "amount": str(t.amount),
                "anchor_height": t.anchor_height,
                "first": t.first,
                "stopped": t.stopped,
            }
            for key, t in state.tracks.items()
        },
        "assets": dict(state.assets),
        "cursor": state.cursor,
        "pages": state.pages,
        "txs": state.txs,
        "points": state.points,
        "done": state.done,
        "residuals": {key: str(amount) for key, amount in state.residuals.items()},
    }


def state_from_json(body: Mapping[str, Any], where: str) -> WalkState:
    """The inverse of :func:`state_to_json`; CorruptBlobError for a body it did not write."""
    try:
        plan = body["plan"]
        tokens = plan["tokens"]
        return WalkState(
            address=str(body["address"]),
            plan=Plan(
                None if tokens is None else tuple(map(str, tokens)),
                tuple(map(str, plan["map_tokens"])),
                None if plan["since"] is None else float(plan["since"]),
                None if plan["listing_height"] is None else int(plan["listing_height"]),
            ),
            tracks={str(key): _track(value) for key, value in body["tracks"].items()},
            assets={str(k): str(v) for k, v in body["assets"].items()},
            cursor=None if body["cursor"] is None else str(body["cursor"]),
            pages=int(body["pages"]),
            txs=int(body["txs"]),
            points=int(body["points"]),
            done=bool(body["done"]),
            residuals={str(k): int(v) for k, v in body["residuals"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise corrupt(
            where, f"not a backfill checkpoint ({type(error).__name__}: {error})"
        ) from error


def _track(value: Mapping[str, Any]) -> Track:
    kind = value["kind"]
    if kind not in ("stx", "native", "map"):
        raise ValueError(f"unknown token kind {kind!r}")
    first = value["first"]
    stopped = value["stopped"]
    return Track(
        kind,
        int(value["amount"]),
        int(value["anchor_height"]),
        None if first is None else float(first),
        None if stopped is None else str(stopped),
    )
