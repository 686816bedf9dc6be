"""Retractions: a reorg voids the changes orphaned blocks made (docs/ingestion.md).

A :class:`Retraction` names one change that no longer happened (its token, amount
and stamp) and the state the pair had before it (None: nothing was stored, so a
native token is back to its listing's zero and any other token to unknown).

Folding rules, extending those of :mod:`balances.domain.current`:

- a retraction replaces the stored state only when that state *is* the voided
  change (same amount and stamp); a newer state (a later read, a later block)
  stays: it already superseded the orphaned one;
- the voided change's history point is removed wherever it is (journal tail,
  month blob), and the day it fell on closes with what is left;
- a retraction folds after the change it voids: the journal orders them (the
  ingestor writes it later, in a later record or segment), and folding the same
  retraction twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from balances.domain import BalancePoint
from balances.domain.current import AddressBalances, Stamp, TokenKindName, TokenState


@dataclass(frozen=True, slots=True)
class Retraction:
    """The change of ``key`` to ``amount`` at ``stamp`` is void; ``restored`` is the state
    before it."""

    key: str
    kind: TokenKindName
    amount: int
    stamp: Stamp
    restored: TokenState | None = None

    def voids(self, state: TokenState | None) -> bool:
        return state is not None and state.stamp == self.stamp and state.amount == self.amount

    @property
    def point(self) -> BalancePoint:
        """The history point the voided change made."""
        at = datetime.fromtimestamp(self.stamp.at, UTC)
        return BalancePoint(at, self.amount, self.stamp.block_height)


def apply_retractions(
    balances: AddressBalances | None, retractions: Iterable[Retraction]
) -> AddressBalances | None:
    """``balances`` with each retraction folded, in order."""
    if balances is None:
        return None
    tokens = dict(balances.tokens)
    changed = False
    for retraction in retractions:
        if retraction.voids(tokens.get(retraction.key)):
            changed = True
            if retraction.restored is None:
                del tokens[retraction.key]
            else:
                tokens[retraction.key] = retraction.restored
    return replace(balances, tokens=tokens) if changed else balances


PointKey = tuple[str, datetime, int, int | None]  # (token key, at, amount, height)


def point_key(key: str, point: BalancePoint) -> PointKey:
    return (key, point.at, point.amount, point.block_height)


class Voided:
    """The history points retractions voided. A point without a height (a daily
    close, which keeps none) matches on token, time and amount alone."""

    __slots__ = ("_exact", "_loose")

    def __init__(self, retractions: Iterable[Retraction] = ()) -> None:
        self._exact: set[PointKey] = set()
        self._loose: set[tuple[str, datetime, int]] = set()
        self.add(retractions)

    def add(self, retractions: Iterable[Retraction]) -> None:
        for r in retractions:
            key = point_key(r.key, r.point)
            self._exact.add(key)
            self._loose.add(key[:3])

    def discard(self, key: str, point: BalancePoint) -> None:
        """A change made again after its retraction (a new fork did the same) stands."""
        exact = point_key(key, point)
        if exact in self._exact:
            self._exact.discard(exact)
            self._loose.discard(exact[:3])

    def __bool__(self) -> bool:
        return bool(self._exact)

    def __contains__(self, item: tuple[str, BalancePoint]) -> bool:
        key, point = item
        if point.block_height is None:
            return (key, point.at, point.amount) in self._loose
        return point_key(key, point) in self._exact

    def keep(self, key: str, points: Iterable[BalancePoint]) -> list[BalancePoint]:
        """``points`` of token ``key`` but the voided ones."""
        return [p for p in points if (key, p) not in self]
