"""Plain records the fake ledger keeps: tokens, asset moves, print and lock events, transactions.

A transaction exists twice over: its :class:`TxIntent` is what the sender signed (the
same bytes in the mempool and in every block that includes it, so the tx id stays
the same across a reorg), and each inclusion in a block is a :class:`Tx`.
"""

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
#: The node's and the API's ``status`` of a mined transaction (``problematic_skipped`` aside).
TxStatus = Literal["success", "abort_by_response", "abort_by_post_condition"]
TX_STATUSES: tuple[TxStatus, ...] = ("success", "abort_by_response", "abort_by_post_condition")
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


@dataclass(frozen=True, slots=True)
class StxLock:
    """STX locked by stacking (``stx_lock``): the balance keeps it, ``available`` does not."""

    locked_address: str
    amount: int
    unlock_burn_height: int
    contract_id: str  # the PoX contract, e.g. ``SP000000000000000000002Q6VF78.pox-4``


Event = Move | PrintEvent | StxLock


@dataclass(frozen=True, slots=True)
class CallArg:
    """One contract-call argument: its ABI name and Clarity type, and the value."""

    name: str
    type: str  # Clarity's type syntax: ``uint``, ``principal``, ``(optional (buff 34))``
    value: ClarityValue


def api_events(events: tuple[Event, ...]) -> tuple[Event, ...]:
    """The events the node emits (and the API lists), in order: map-token moves are
    bookkeeping of the fake ledger only, a map token's contract prints instead."""
    return tuple(event for event in events if not (isinstance(event, Move) and event.kind == "map"))


@dataclass(frozen=True, slots=True)
class TxIntent:
    """A signed transaction: who pays what for which payload, and what it will do.

    ``events`` are the effects it has when it succeeds; ``status`` is the outcome
    the test asked for (a failed transaction pays its fee and has no events).
    ``raw`` is its SIP-005 serialization and ``tx_id`` the SHA-512/256 of it.
    """

    tx_id: str
    raw: bytes
    sender: str  # the origin's address (a contract's deployer when a contract acts)
    nonce: int
    fee: int
    sponsor: str | None
    sponsor_nonce: int | None
    type: TxType
    contract_id: str | None
    function_name: str | None
    args: tuple[CallArg, ...]
    recipient: str | None  # token_transfer recipient, coinbase alt recipient
    amount: int  # token_transfer amount
    events: tuple[Event, ...]
    status: TxStatus
    memo: bytes = b""  # token_transfer memo (up to 34 bytes)

    @property
    def payer(self) -> str:
        """Who pays the fee: the sponsor when there is one."""
        return self.sponsor or self.sender


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction as mined in one block (``events`` are empty when it failed)."""

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
    block_hash: str = ""
    sponsor: str | None = None
    sponsor_nonce: int | None = None
    status: TxStatus = "success"
    raw: bytes = b""
    args: tuple[CallArg, ...] = ()
    recipient: str | None = None
    amount: int = 0
    memo: bytes = b""

    @classmethod
    def mined(cls, intent: TxIntent, block_hash: str, height: int, tx_index: int) -> Tx:
        events = intent.events if intent.status == "success" else ()
        return cls(
            tx_id=intent.tx_id,
            height=height,
            tx_index=tx_index,
            sender=intent.sender,
            nonce=intent.nonce,
            type=intent.type,
            contract_id=intent.contract_id,
            function_name=intent.function_name,
            events=events,
            fee=intent.fee,
            block_hash=block_hash,
            sponsor=intent.sponsor,
            sponsor_nonce=intent.sponsor_nonce,
            status=intent.status,
            raw=intent.raw,
            args=intent.args,
            recipient=intent.recipient,
            amount=intent.amount,
            memo=intent.memo,
        )

    @property
    def payer(self) -> str:
        return self.sponsor or self.sender

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(event for event in self.events if isinstance(event, Move))

    @property
    def emitted(self) -> tuple[Event, ...]:
        """The events the node and the API report, in order (index = event_index)."""
        return api_events(self.events)

    @property
    def involved(self) -> frozenset[str]:
        """Principals the API indexes this tx under: sender, sponsor, asset parties,
        lockers, the called contract."""
        found = {self.sender}
        if self.sponsor is not None:
            found.add(self.sponsor)
        for event in self.emitted:
            if isinstance(event, Move):
                found.update(p for p in (event.sender, event.recipient) if p is not None)
            elif isinstance(event, StxLock):
                found.add(event.locked_address)
        if self.contract_id is not None:
            found.add(self.contract_id)
        return frozenset(found)

    @property
    def position(self) -> tuple[int, int]:
        return (self.height, self.tx_index)
