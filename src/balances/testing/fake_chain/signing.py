"""Signing a fake transaction: a :class:`TxPlan` becomes a :class:`TxIntent` with the
SIP-005 bytes (:mod:`~balances.testing.fake_chain.txwire`) its tx id hashes.

The fee sits in the origin's spending condition, or in the sponsor's when there
is a sponsor (the origin's is then 0), as stacks.js builds them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from balances.testing.fake_chain.records import CallArg, Event, TxIntent, TxStatus, TxType
from balances.testing.fake_chain.txwire import (
    MODE_ALLOW,
    MODE_DENY,
    CoinbasePayload,
    ContractCallPayload,
    Payload,
    SpendingCondition,
    StacksTransaction,
    TokenTransferPayload,
    tx_id_of,
)


@dataclass(frozen=True, slots=True)
class TxPlan:
    """What a transaction does, before anyone signs it."""

    sender: str  # the origin: a standard address
    type: TxType
    events: tuple[Event, ...]
    contract_id: str | None = None
    function_name: str | None = None
    args: tuple[CallArg, ...] = ()
    recipient: str | None = None
    amount: int = 0


def sign(
    plan: TxPlan,
    network: str,
    salt: str,
    nonce: int,
    fee: int,
    sponsoring: tuple[str | None, int | None],
    status: TxStatus,
    memo: bytes,
) -> TxIntent:
    """Serialize ``plan`` as signed by its sender (and its sponsor, when given)."""
    sponsor, sponsor_nonce = sponsoring
    origin = SpendingCondition.for_address(plan.sender, nonce, 0 if sponsor else fee)
    sponsor_condition = (
        None if sponsor is None else SpendingCondition.for_address(sponsor, sponsor_nonce or 0, fee)
    )
    wire = StacksTransaction(
        network,
        origin,
        _payload(plan, salt, nonce, memo),
        sponsor=sponsor_condition,
        post_condition_mode=MODE_DENY if status == "abort_by_post_condition" else MODE_ALLOW,
    )
    raw = wire.serialize()
    return TxIntent(
        tx_id=tx_id_of(raw),
        raw=raw,
        sender=plan.sender,
        nonce=nonce,
        fee=fee,
        sponsor=sponsor,
        sponsor_nonce=sponsor_nonce,
        type=plan.type,
        contract_id=plan.contract_id,
        function_name=plan.function_name,
        args=plan.args,
        recipient=plan.recipient,
        amount=plan.amount,
        events=plan.events,
        status=status,
        memo=memo,
    )


def _payload(plan: TxPlan, salt: str, nonce: int, memo: bytes) -> Payload:
    if plan.type == "token_transfer":
        assert plan.recipient is not None
        return TokenTransferPayload(plan.recipient, plan.amount, memo)
    if plan.type == "coinbase":
        seed = f"{salt}:coinbase:{plan.sender}:{nonce}".encode()
        return CoinbasePayload(hashlib.sha256(seed).digest(), plan.recipient)
    assert plan.contract_id is not None
    assert plan.function_name is not None
    return ContractCallPayload(
        plan.contract_id, plan.function_name, tuple(arg.value for arg in plan.args)
    )
