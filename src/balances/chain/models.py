"""What the chain client returns: small immutable result types."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class TokenKind(enum.Enum):
    """How a token keeps balances, which decides how they are read."""

    #: ``define-fungible-token``: listed by the API's balance endpoints.
    NATIVE = "native"
    #: A ``define-map`` of balances ("subnet" credit tokens): only ``get-balance`` reads it.
    MAP = "map"


@dataclass(frozen=True, slots=True)
class ContractInterface:
    """The parts of a contract's ABI that matter for balances."""

    contract_id: str
    kind: TokenKind
    #: The ``define-fungible-token`` name (native tokens only); often not the contract name.
    asset_name: str | None
    read_only_functions: frozenset[str] = field(default_factory=frozenset)

    @property
    def asset_identifier(self) -> str | None:
        """``ADDR.contract::asset`` for native tokens, as the balance endpoints key them."""
        if self.asset_name is None:
            return None
        return f"{self.contract_id}::{self.asset_name}"


@dataclass(frozen=True, slots=True)
class TokenMetadata:
    """SIP-010 metadata read through ``call-read``.

    ``decimals`` is required (a token without it cannot be displayed, so reading it
    failing is an error). The other getters are optional: when the contract answers
    one with ``(err ...)``, a wrong type, or ``okay:false`` (not defined), its field
    is None and its name is listed in ``unavailable`` with the reason. Transport
    failures (timeouts, 5xx, 429) are never turned into None: they raise, so an
    outage is not cached as "this token has no symbol".
    """

    contract_id: str
    decimals: int
    symbol: str | None = None
    name: str | None = None
    total_supply: int | None = None
    token_uri: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChainTip:
    """The newest block the API knows."""

    height: int
    hash: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Block:
    """A Stacks block (from ``/extended/v2/blocks/...``)."""

    height: int
    hash: str
    time: datetime
    index_block_hash: str
    burn_block_height: int
