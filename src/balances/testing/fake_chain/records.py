"""Plain records the fake ledger keeps: tokens, asset moves, print events, transactions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from balances.chain.c32 import c32_address
from balances.chain.clarity import ClarityValue
from balances.errors import BalancesError

TokenKind = Literal["native", "map"]
AssetKind = Literal["stx", "ft", "map"]
TxType = Literal["token_transfer", "contract_call", "coinbase"]
STX_KEY = "stx"

_NETWORK_VERSIONS = {"mainnet": 22, "testnet": 26}


class FakeChainError(BalancesError, ValueError):
    """The fake ledger refused an operation (the message says why)."""


class InsufficientBalanceError(FakeChainError):
    """A transfer, burn or withdrawal larger than the balance: the ledger never goes negative."""


class UnknownTokenError(FakeChainError):
    """No token with that id was added to the fake chain."""


def fake_address(label: str, network: str = "mainnet") -> str:
    """A valid, deterministic standard address for ``label`` (``SP…`` or ``ST…``)."""
    if network not in _NETWORK_VERSIONS:
        raise FakeChainError(f"network must be mainnet or testnet, got {network!r}")
    hash160 = hashlib.sha256(f"fake-chain:{label}".encode()).digest()[:20]
    return c32_address(_NETWORK_VERSIONS[network], hash160)


def digest_hex(*parts: object) -> str:
    """``0x`` + 64 hex characters, deterministic in ``parts`` (hashes, tx ids)."""
    text = ":".join(str(part) for part in parts)
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token contract: a native ``define-fungible-token`` or a map-based credit token."""

    contract_id: str
    kind: TokenKind
    asset_name: str | None
    decimals: int
    symbol: str
    name: str
    token_uri: str | None
    base_token: str | None = None  # map tokens: the native token deposits lock

    @property
    def asset_identifier(self) -> str | None:
        return None if self.asset_name is None else f"{self.contract_id}::{self.asset_name}"

    @property
    def deployer(self) -> str:
        return self.contract_id.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Move:
    """One balance movement: a mint (no sender), burn (no recipient) or transfer."""

    kind: AssetKind
    token: str  # "stx", or the token's contract id
    asset: str  # "stx", the asset identifier (native) or the contract id (map)
    sender: str | None
    recipient: str | None
    amount: int

    @property
    def action(self) -> Literal["mint", "transfer", "burn"]:
        if self.sender is None:
            return "mint"
        return "burn" if self.recipient is None else "transfer"

    @property
    def asset_type_tag(self) -> int:
        """The v3 cursor tag: 1 for STX, 2 for fungible tokens."""
        return 1 if self.kind == "stx" else 2


@dataclass(frozen=True, slots=True)
class PrintEvent:
    """A ``print`` from a contract (a ``contract_log`` event)."""

    contract_id: str
    value: ClarityValue


Event = Move | PrintEvent


@dataclass(frozen=True, slots=True)
class Tx:
    """A confirmed transaction; every one is mined alone in its own block."""

    tx_id: str
    height: int
    tx_index: int
    sender: str
    nonce: int
    type: TxType
    contract_id: str | None
    function_name: str | None
    events: tuple[Event, ...]
    fee: int = 0

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(event for event in self.events if isinstance(event, Move))

    @property
    def involved(self) -> frozenset[str]:
        """Principals the API indexes this tx under: sender, asset parties, called contract."""
        found = {self.sender}
        for move in self.moves:
            if move.kind == "map":
                continue  # map balances are invisible to the API's indexer
            found.update(p for p in (move.sender, move.recipient) if p is not None)
        if self.contract_id is not None:
            found.add(self.contract_id)
        return frozenset(found)

    @property
    def position(self) -> tuple[int, int]:
        return (self.height, self.tx_index)
