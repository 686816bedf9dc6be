"""Public test doubles: the Stacks API stand-in, a Vercel Blob stand-in, a local S3 server.

Names load lazily, so importing :mod:`balances.testing` (or one of its modules)
does not pull in Starlette and uvicorn until the stand-in is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from balances.testing.fake_chain import (
        CHARISMA_SUBNET,
        DEMO_ADDRESSES,
        BlockProducer,
        FakeChain,
        FakeChainError,
        FakeChainServer,
        FaultConfig,
        InsufficientBalanceError,
        Produced,
        UnknownTokenError,
        create_fake_chain_app,
        demo_activity,
        demo_chain,
        fake_address,
        run_fake_chain_forever,
        serve_fake_chain,
    )
    from balances.testing.s3_server import MotoS3Server
    from balances.testing.vercel_blob import VercelBlobStandIn

__all__ = [
    "CHARISMA_SUBNET",
    "DEMO_ADDRESSES",
    "BlockProducer",
    "FakeChain",
    "FakeChainError",
    "FakeChainServer",
    "FaultConfig",
    "InsufficientBalanceError",
    "MotoS3Server",
    "Produced",
    "UnknownTokenError",
    "VercelBlobStandIn",
    "create_fake_chain_app",
    "demo_activity",
    "demo_chain",
    "fake_address",
    "run_fake_chain_forever",
    "serve_fake_chain",
]

_FAKE_CHAIN = "balances.testing.fake_chain"
#: name -> module that defines it; a new public name goes in ``__all__``, the
#: ``TYPE_CHECKING`` import above, and here.
_LAZY: dict[str, str] = {
    **dict.fromkeys(__all__, _FAKE_CHAIN),
    "MotoS3Server": "balances.testing.s3_server",
    "VercelBlobStandIn": "balances.testing.vercel_blob",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
