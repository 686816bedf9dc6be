"""The Stacks API stand-in: an in-memory ledger served with the Hiro API's shapes.

Drive a :class:`FakeChain` (mint, transfer, burn, deposit, advance blocks), serve it
with :func:`serve_fake_chain` on a free loopback port, switch faults on through
``chain.faults`` and hold request budgets with ``chain.requests``::

    chain = FakeChain()
    chain.add_native_token("SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token", "charisma")
    chain.mint("stx", "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7", 1_000_000)
    async with serve_fake_chain(chain) as server:
        ...  # httpx.AsyncClient(base_url=server.url)
"""

from balances.testing.fake_chain.app import ROUTE_TEMPLATES, create_fake_chain_app
from balances.testing.fake_chain.blocks import Block
from balances.testing.fake_chain.demo import (
    CHARISMA_SUBNET,
    DEMO_ADDRESSES,
    demo_activity,
    demo_chain,
)
from balances.testing.fake_chain.faults import DEPRECATION_WARNING, FaultConfig
from balances.testing.fake_chain.ledger import DEFAULT_START_TIME, FakeChain
from balances.testing.fake_chain.producer import BlockProducer, Produced
from balances.testing.fake_chain.records import (
    FakeChainError,
    InsufficientBalanceError,
    TokenInfo,
    Tx,
    UnknownTokenError,
    fake_address,
)
from balances.testing.fake_chain.server import (
    FakeChainServer,
    run_fake_chain_forever,
    serve_fake_chain,
)

__all__ = [
    "CHARISMA_SUBNET",
    "DEFAULT_START_TIME",
    "DEMO_ADDRESSES",
    "DEPRECATION_WARNING",
    "ROUTE_TEMPLATES",
    "Block",
    "BlockProducer",
    "FakeChain",
    "FakeChainError",
    "FakeChainServer",
    "FaultConfig",
    "InsufficientBalanceError",
    "Produced",
    "TokenInfo",
    "Tx",
    "UnknownTokenError",
    "create_fake_chain_app",
    "demo_activity",
    "demo_chain",
    "fake_address",
    "run_fake_chain_forever",
    "serve_fake_chain",
]
