"""A block producer: blocks at a steady rate with a realistic mix of transactions.

Each block holds ``txs_per_block`` transactions among a population of addresses
(any size: an address costs nothing until a block touches it): STX transfers with
fees, SIP-010 transfers, payments to contract principals (pools), and credits and
transfers of a map-based token, which print events as the real "subnet" tokens do.
Money enters only through blocks (the producer's hot wallets are funded by mints in
its first block), so a population that starts empty is exactly known at every
height, and the ledger is the ground truth to compare with.

Seeded: the same seed and population make the same blocks.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from balances.testing.fake_chain.blocks import Block
from balances.testing.fake_chain.ledger import FakeChain
from balances.testing.fake_chain.records import fake_address

#: Where each transaction goes, by share (they add up to 1).
MIX = (("stx", 0.40), ("ft", 0.35), ("pool", 0.10), ("map", 0.15))
FEE = 180  # micro-STX, a typical transfer's fee
HOT_WALLETS = 8
HOT_FUNDS = 10**15


@dataclass(slots=True)
class Produced:
    """What one block changed: its (principal, token) pairs, for checks and probes."""

    block: Block
    pairs: set[tuple[str, str]] = field(default_factory=set)


class BlockProducer:
    """Makes blocks on ``chain`` for ``population``; see the module docstring."""

    def __init__(
        self,
        chain: FakeChain,
        population: Sequence[str],
        *,
        txs_per_block: int = 50,
        seed: int = 0,
        tokens: int = 4,
        pools: int = 5,
    ) -> None:
        if not population:
            raise ValueError("the population needs at least one address")
        self.chain = chain
        self.population = population
        self.txs_per_block = txs_per_block
        self._rng = random.Random(seed)
        deployer = fake_address(f"producer-deployer-{seed}", chain.network)
        self.tokens = [f"{deployer}.producer-token-{i}" for i in range(tokens)]
        self.map_token = f"{deployer}.producer-credit-v1"
        self.pools = [f"{deployer}.producer-pool-{i}" for i in range(pools)]
        self.hot_wallets = [
            fake_address(f"producer-hot-{seed}-{i}", chain.network) for i in range(HOT_WALLETS)
        ]
        #: Population members that received something: they can send it on.
        self._holders: dict[str, list[str]] = {}
        self._funded = False

    @property
    def token_ids(self) -> list[str]:
        """Every token the producer moves (STX as ``stx``)."""
        return ["stx", *self.tokens, self.map_token]

    def fund(self, when: int | None = None) -> Block:
        """Deploy the tokens and fund the hot wallets, in one block."""
        for index, token in enumerate(self.tokens):
            self.chain.add_native_token(token, f"producer{index}", symbol=f"PT{index}")
        self.chain.add_map_token(self.map_token, symbol="PCR")
        with self.chain.block(when):
            for wallet in self.hot_wallets:
                self.chain.mint("stx", wallet, HOT_FUNDS)
                for token in self.tokens:
                    self.chain.mint(token, wallet, HOT_FUNDS)
        self._funded = True
        return self.chain.tip

    def produce_one(self, when: int | None = None) -> Produced:
        """Mine the next block (at ``when``, unix seconds; default: the chain's pace)."""
        if not self._funded:
            self.fund(when)
        pairs: set[tuple[str, str]] = set()
        with self.chain.block(when):
            for _ in range(self.txs_per_block):
                pairs |= self._one_transaction()
        return Produced(self.chain.tip, pairs)

    def mine_empty(self, when: int | None = None) -> Block:
        return self.chain.mine_block(when)

    async def run(
        self,
        interval: float,
        stop: asyncio.Event,
        on_block: Callable[[Produced], None] = lambda _: None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """A block every ``interval`` seconds (block time: the wall clock) until ``stop``."""
        while not stop.is_set():
            on_block(self.produce_one(int(wall_clock())))
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                continue

    # --- one transaction ----------------------------------------------------------

    def _one_transaction(self) -> set[tuple[str, str]]:
        kind = self._rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        recipient = self._rng.choice(self.population)
        if kind == "stx":
            return self._send("stx", recipient)
        if kind == "ft":
            return self._send(self._rng.choice(self.tokens), recipient)
        if kind == "pool":
            return self._send(self._rng.choice(self.tokens), self._rng.choice(self.pools))
        return self._credit(recipient)

    def _send(self, token: str, recipient: str) -> set[tuple[str, str]]:
        sender = self._sender(token, recipient)
        held = self.chain.balance(token, sender) if token != "stx" else self.chain.available(sender)
        pays_own_fee = "." not in sender  # a contract's call is paid by its deployer
        fee = FEE if pays_own_fee and self.chain.available(sender) > FEE + 1 else 0
        spendable = held - (fee if token == "stx" else 0)
        amount = max(1, min(spendable, self._amount()))
        if spendable < 1:
            sender, fee, amount = self._rng.choice(self.hot_wallets), FEE, self._amount()
        self.chain.transfer(token, sender, recipient, amount, fee=fee)
        self._holders.setdefault(token, []).append(recipient)
        pairs = {(sender, token), (recipient, token)}
        return pairs | ({(sender, "stx")} if fee else set())

    def _credit(self, recipient: str) -> set[tuple[str, str]]:
        """A map-token deposit, or a transfer between holders of the credit."""
        holders = self._holders.get(self.map_token, [])
        if holders and self._rng.random() < 0.4:
            sender = self._rng.choice(holders)
            held = self.chain.balance(self.map_token, sender)
            if held > 0 and sender != recipient:
                amount = max(1, min(held, self._amount()))
                self.chain.transfer(self.map_token, sender, recipient, amount)
                holders.append(recipient)
                return {(sender, self.map_token), (recipient, self.map_token)}
        self.chain.deposit(self.map_token, recipient, self._amount())
        self._holders.setdefault(self.map_token, []).append(recipient)
        return {(recipient, self.map_token)}

    def _sender(self, token: str, recipient: str) -> str:
        """A population member who received ``token`` before (most of the time), else
        a hot wallet."""
        holders = self._holders.get(token, [])
        if holders and self._rng.random() < 0.6:
            sender = self._rng.choice(holders)
            if sender != recipient:
                return sender
        return self._rng.choice(self.hot_wallets)

    def _amount(self) -> int:
        """Amounts spread over orders of magnitude, as real transfers are."""
        return int(10 ** self._rng.uniform(2, 9))
