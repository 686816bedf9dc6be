"""A seeded, realistic ledger for the offline demo (``balances testing fake-chain``)."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from balances.testing.fake_chain.ledger import FakeChain
from balances.testing.fake_chain.records import fake_address

CHARISMA_DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"
CHARISMA = f"{CHARISMA_DEPLOYER}.charisma-token"
CHARISMA_SUBNET = f"{CHARISMA_DEPLOYER}.charisma-token-subnet-v1"
SBTC = "SM3VDXK3WZZSA84XXFKAFAF15NNZX32CTSG82JFQ4.sbtc-token"
ALEX = "SP3K8BC0PPEVCV7NZ6QSRWPQ2JE9E5B6N3PA0KBR9.age000-governance-token"
AEUSDC = "SP3Y2ZSH8P7D50B0VBTSX11S7XSG24M1VB9YFQA4K.token-aeusdc"
#: Well-known mainnet addresses, so the demo's data looks like the real thing.
DEMO_ADDRESSES = (
    "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7",
    "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE",
    "SP318Q55DEKHRXJK696033DQN5C54D9K2EE6DHRWP",
    "SP000000000000000000002Q6VF78.pox-4",
)
DAY = 86_400
HOUR = 3_600
#: (start price in USD, daily volatility, decimal places) of each priced demo token.
DEMO_PRICES: dict[str, tuple[float, float, int]] = {
    "stx": (1.60, 0.05, 4),
    CHARISMA: (0.012, 0.08, 6),
    SBTC: (42_500.0, 0.03, 2),
    ALEX: (0.18, 0.06, 5),
    AEUSDC: (1.0, 0.001, 4),
}


def _add_tokens(chain: FakeChain) -> None:
    chain.add_native_token(
        CHARISMA,
        "charisma",
        symbol="CHA",
        name="Charisma",
        token_uri="https://charisma.rocks/charisma.json",
    )
    chain.add_native_token(SBTC, "sbtc-token", decimals=8, symbol="sBTC", name="sBTC")
    chain.add_native_token(ALEX, "alex", decimals=8, symbol="ALEX", name="ALEX Token")
    chain.add_native_token(AEUSDC, "aeUSDC", symbol="aeUSDC", name="Ethereum USDC via Allbridge")
    chain.add_map_token(
        CHARISMA_SUBNET, symbol="CHA", name="Charisma", token_uri=None, base_token=CHARISMA
    )


#: Where the demo history ends unless told otherwise: 2024-04-01T00:00:00Z.
DEMO_END = 1_711_929_600


def demo_chain(days: int = 90, seed: int = 7, end: int = DEMO_END) -> FakeChain:
    """A mainnet chain whose history spans ``days``: STX, four native tokens whose asset
    names differ from their contract names (``charisma-token::charisma``), and the
    map-based ``charisma-token-subnet-v1`` credit token, for :data:`DEMO_ADDRESSES`.
    The history runs from ``days`` before ``end`` (unix seconds) up to about ``end``.
    """
    rng = random.Random(seed)
    start = end - days * DAY
    chain = FakeChain(network="mainnet", start_height=150_000, start_time=start, block_seconds=10)
    _add_tokens(chain)
    holders = list(DEMO_ADDRESSES)
    treasury = fake_address("demo-treasury")
    for token, amount in (
        ("stx", 10**13),
        (CHARISMA, 10**13),
        (SBTC, 10**9),
        (ALEX, 10**14),
        (AEUSDC, 10**12),
    ):
        chain.mint(token, treasury, amount)
    for holder in holders:
        chain.transfer("stx", treasury, holder, rng.randrange(10**9, 10**11))
        chain.transfer(CHARISMA, treasury, holder, rng.randrange(10**9, 10**11))
    for _ in range(days):
        chain.advance_time(DAY - 60)
        _demo_day(chain, rng, treasury, holders)
    _seed_prices(chain, random.Random(f"{seed}:prices"), start)
    return chain


def _seed_prices(chain: FakeChain, rng: random.Random, start: int) -> None:
    """An hourly random walk of USD prices from ``start`` to the tip (aeUSDC stays near
    1); the credit token is priced like the charisma it is backed by. The walk has its
    own RNG, so the ledger's transactions are the same with or without prices."""
    hours = (chain.tip_time - start) // HOUR
    for token, (price, daily_volatility, places) in DEMO_PRICES.items():
        sigma = daily_volatility / math.sqrt(24)
        for hour in range(hours + 1):
            usd = Decimal(repr(price)).quantize(Decimal(1).scaleb(-places))
            chain.set_price(token, usd, at=start + hour * HOUR)
            if token == CHARISMA:
                chain.set_price(CHARISMA_SUBNET, usd, at=start + hour * HOUR)
            price = _step(rng, price, sigma, pegged=token == AEUSDC)


def _step(rng: random.Random, price: float, sigma: float, *, pegged: bool) -> float:
    """One step of a log-normal walk; a pegged price is pulled back towards 1."""
    moved = price * math.exp(rng.gauss(0.0, sigma))
    return 1.0 + (moved - 1.0) * 0.5 if pegged else moved


def _demo_day(chain: FakeChain, rng: random.Random, treasury: str, holders: list[str]) -> None:
    """A few transactions: payouts from the treasury, trades between holders, credits."""
    holder = rng.choice(holders)
    token = rng.choice(["stx", CHARISMA, SBTC, ALEX, AEUSDC])
    chain.transfer(token, treasury, holder, max(1, chain.balance(token, treasury) // 500))
    sender, recipient = rng.sample(holders, 2)
    amount = chain.balance(CHARISMA, sender) // 20
    if amount:
        chain.transfer(CHARISMA, sender, recipient, amount)
    standard = [h for h in holders if "." not in h]
    depositor = rng.choice(standard)
    credit = chain.balance(CHARISMA, depositor) // 10
    if credit and rng.random() < 0.5:
        chain.deposit(CHARISMA_SUBNET, depositor, credit)
    elif chain.balance(CHARISMA_SUBNET, depositor):
        chain.withdraw(
            CHARISMA_SUBNET, depositor, chain.balance(CHARISMA_SUBNET, depositor) // 2 or 1
        )


def demo_activity(chain: FakeChain, rng: random.Random, now: float) -> None:
    """A moment of live activity: the chain catches up with ``now`` (unix seconds) and
    a transfer or a credit happens, as :func:`demo_chain`'s days do."""
    if now > chain.tip_time:
        chain.advance_time(int(now - chain.tip_time))
    treasury = fake_address("demo-treasury")
    _demo_day(chain, rng, treasury, list(DEMO_ADDRESSES))
