"""A synthetic fleet: addresses, the tokens each holds, and how their amounts move.

Addresses are valid mainnet principals; tokens are contract ids drawn from a
universe whose popularity falls off as 1/rank (most wallets hold the big tokens,
each also holds some of the long tail), so shared blobs compress as real ones do,
no better. Amounts are u128-ish: 4 to 24 decimal digits, and a change moves one
token's amount within its order of magnitude. Everything comes from one seeded
``random.Random``: a run is reproducible.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from balances.chain.c32 import c32_address
from balances.domain import Principal
from balances.domain.current import AddressUpdate, Change, Stamp, TokenKindName

MAINNET = 22
NATIVE: TokenKindName = "native"
#: Stacks block height at the fleet's epoch; blocks come about every 6 seconds.
EPOCH_HEIGHT = 1_000_000
BLOCK_SECONDS = 6


def address_of(label: str) -> str:
    """A valid, deterministic mainnet address for ``label``."""
    return c32_address(MAINNET, hashlib.sha256(f"costmodel:{label}".encode()).digest()[:20])


def token_universe(size: int) -> list[str]:
    """``size`` contract ids, most popular first."""
    return [f"{address_of(f'deployer-{i}')}.{_contract_name(i)}" for i in range(size)]


def _contract_name(index: int) -> str:
    stem = hashlib.sha256(f"token-{index}".encode()).hexdigest()[: 4 + index % 7]
    letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in stem)
    return f"{letters}-token"


def first_amount(rng: random.Random) -> int:
    digits = rng.randint(4, 24)
    return rng.randrange(10 ** (digits - 1), 10**digits)


def next_amount(old: int, rng: random.Random) -> int:
    """A new amount in the same order of magnitude, never equal to ``old``."""
    while True:
        new = max(1, old + rng.randint(-old // 2, old // 2 + 1))
        if new != old:
            return new


@dataclass(slots=True)
class Fleet:
    """The addresses and, per address, the tokens held and their amounts *now*."""

    epoch: float
    addresses: list[str]
    holdings: list[tuple[str, ...]]
    amounts: list[list[int]]
    rng: random.Random
    principals: list[Principal] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.principals = [Principal.parse(address) for address in self.addresses]

    @property
    def indices(self) -> range:
        return range(len(self.addresses))

    def stamp(self, at: float) -> Stamp:
        return Stamp(at, EPOCH_HEIGHT + int((at - self.epoch) // BLOCK_SECONDS))

    def update(self, index: int, at: float) -> AddressUpdate:
        """What a sync of address ``index`` at ``at`` reads: every token, listed."""
        amounts = {
            key: (amount, NATIVE)
            for key, amount in zip(self.holdings[index], self.amounts[index], strict=True)
        }
        return AddressUpdate(self.addresses[index], self.stamp(at), amounts, listing_complete=True)

    def unchanged(self, index: int, at: float) -> AddressUpdate:
        """A refresh of address ``index`` that re-reads one token and finds it unchanged
        (a cheap stand-in for a full refresh that changed nothing: the same blob work)."""
        key, amount = self.holdings[index][0], self.amounts[index][0]
        return AddressUpdate(self.addresses[index], self.stamp(at), {key: (amount, NATIVE)})

    def change(self, index: int, token: int, at: float) -> Change:
        """Move one token's amount (the world changes); the change point it makes."""
        old = self.amounts[index][token]
        new = self.amounts[index][token] = next_amount(old, self.rng)
        key = self.holdings[index][token]
        return Change(self.addresses[index], key, NATIVE, old, new, self.stamp(at))

    def creation(self, index: int, at: float) -> list[Change]:
        """The first sync of address ``index``: every token appears."""
        stamp = self.stamp(at)
        address = self.addresses[index]
        pairs = zip(self.holdings[index], self.amounts[index], strict=True)
        return [Change(address, key, NATIVE, None, amount, stamp) for key, amount in pairs]


def make_fleet(count: int, tokens: int, universe: int, epoch: datetime, seed: int) -> Fleet:
    """``count`` addresses holding ``tokens`` tokens each, drawn by popularity."""
    rng = random.Random(seed)
    names = token_universe(max(universe, tokens))
    addresses = [address_of(f"{seed}-holder-{i}") for i in range(count)]
    holdings = [tuple(sorted(_draw(names, tokens, rng))) for _ in addresses]
    amounts = [[first_amount(rng) for _ in held] for held in holdings]
    return Fleet(epoch.timestamp(), addresses, holdings, amounts, rng)


def _draw(names: list[str], count: int, rng: random.Random) -> Iterator[str]:
    """``count`` distinct names, each weighted 1/rank (Efraimidis-Spirakis keys)."""
    keyed = ((rng.random() ** (rank + 1), name) for rank, name in enumerate(names))
    return (name for _, name in heapq.nlargest(count, keyed))


@dataclass(frozen=True, slots=True)
class Event:
    """One balance change: address ``address``'s ``token``-th token moves at ``at``."""

    at: float
    address: int
    token: int


def changes_between(
    fleet: Fleet, start: float, end: float, per_day: float, interval: int
) -> list[Event]:
    """Each address's changes in ``[start, end)``, at sync times spread uniformly at
    random (a change is seen by the next sync), oldest first."""
    cycles = int((end - start) // interval)
    count = round(per_day * (end - start) / 86_400)
    tokens = len(fleet.holdings[0]) if fleet.holdings else 0
    rng = fleet.rng
    events = [
        Event(start + rng.randrange(cycles) * interval, index, rng.randrange(tokens))
        for index in range(len(fleet.addresses))
        for _ in range(count)
    ]
    events.sort(key=lambda e: (e.at, e.address))
    return events
