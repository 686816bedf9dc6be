"""The shapes of the v3 history answers (transactions, balance changes, tx events).

Kept apart from :mod:`balances.chain.wire` (the balance reads) but built the same
way: only the fields backfill uses, strict types, and every surprise reported as
one :class:`~balances.errors.MalformedResponseError` by :func:`wire.parse`. A few
cross-field rules the schema cannot say are checked here too (a contract call
names its contract; ``net`` is ``received - sent``), because a wrong sign or a
missing contract id would silently corrupt a history walked backwards.
"""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import AfterValidator, PlainValidator, model_validator

from balances.chain.wire import Amount, AssetIdentifier, Cursor, Wire
from balances.domain import MAX_AMOUNT

_SIGNED = re.compile(r"-?[0-9]{1,40}")
_TX_ID = re.compile(r"0x[0-9a-fA-F]{64}")


def _signed_amount(value: object) -> int:
    if not isinstance(value, str):  # the API sends amounts as decimal strings
        raise ValueError(f"an amount must be a decimal string, got {type(value).__name__}")
    if not _SIGNED.fullmatch(value):
        raise ValueError(f"{value[:60]!r} is not a signed decimal amount")
    amount = int(value)
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"{value[:60]!r} is outside the u128 range")
    return amount


def _tx_id(value: str) -> str:
    if not _TX_ID.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a 0x-prefixed 64-hex transaction id")
    return value.lower()


#: A net change: a decimal string that may be negative, ``|x| <= 2**128 - 1``.
SignedAmount = Annotated[int, PlainValidator(_signed_amount)]
#: A transaction id, normalised to lower case (the API's ids compare that way).
TxId = Annotated[str, AfterValidator(_tx_id)]


class ChangeAmounts(Wire):
    sent: Amount
    received: Amount
    net: SignedAmount

    @model_validator(mode="after")
    def _net_adds_up(self) -> Self:
        if self.net != self.received - self.sent:
            raise ValueError(
                f"net {self.net} is not received - sent ({self.received} - {self.sent})"
            )
        return self


class TxBlockRef(Wire):
    height: int
    time: int | float
    tx_index: int


class ContractCallRef(Wire):
    contract_id: str
    function_name: str


class TxSummary(Wire):
    tx_id: TxId
    fee_rate: Amount
    block: TxBlockRef
    status: str
    type: str
    contract_call: ContractCallRef | None = None

    @model_validator(mode="after")
    def _call_named(self) -> Self:
        if self.type == "contract_call" and self.contract_call is None:
            raise ValueError("a contract_call transaction without its contract_call object")
        if self.block.height < 0 or self.block.time < 0:
            raise ValueError("a negative block height or time")
        return self


class StxChanges(Wire):
    stx: ChangeAmounts


class AffectedBalances(Wire):
    stx: bool
    ft: bool
    nft: bool


class PrincipalTxRow(Wire):
    transaction: TxSummary
    balance_changes: StxChanges
    affected_balances: AffectedBalances


class PrincipalTxPage(Wire):
    total: int
    limit: int
    cursor: Cursor
    results: list[PrincipalTxRow]


class AssetRef(Wire):
    """``{type: "stx"}`` or ``{type: "ft" | "nft", identifier: "ADDR.contract::asset"}``."""

    type: str
    identifier: AssetIdentifier | None = None


class BalanceChangeItem(Wire):
    tx_id: TxId
    asset: AssetRef
    balance_change: ChangeAmounts

    @model_validator(mode="after")
    def _asset_named(self) -> Self:
        if self.asset.type in ("ft", "nft") and self.asset.identifier is None:
            raise ValueError(f"an {self.asset.type} balance change without an identifier")
        return self


class BalanceChangePage(Wire):
    total: int
    limit: int
    cursor: Cursor
    results: list[BalanceChangeItem]


class ClarityHex(Wire):
    hex: str


class ContractLog(Wire):
    contract_id: str
    topic: str
    value: ClarityHex


class TxEventItem(Wire):
    event_index: int
    type: str
    contract_log: ContractLog | None = None

    @model_validator(mode="after")
    def _log_present(self) -> Self:
        if self.type == "contract_log" and self.contract_log is None:
            raise ValueError("a contract_log event without its contract_log object")
        return self


class TxEventPage(Wire):
    total: int
    limit: int
    cursor: Cursor
    results: list[TxEventItem]
