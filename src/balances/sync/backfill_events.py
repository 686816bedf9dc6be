"""What a map-based token's ``print`` events say about one holder's balance.

Map-based ("subnet") tokens keep balances in a Clarity map; the API's balance
changes never mention them, so their history is folded from the prints of their
own contract (PROTOCOLS.md section 6). The shapes understood are the ones the
stand-in and Charisma's wrappers print:

- ``{event: "deposit", sender, amount, recipient?}`` credits ``recipient``, or
  ``sender`` when there is none (``deposit (amount, recipient?)``);
- ``{event: "withdraw", sender, amount, recipient?}`` debits ``sender`` (the
  recipient receives the *base* token, a native FT the balance changes cover);
- ``{event: "transfer" | "x-transfer", sender, recipient, amount}`` moves
  ``amount`` from ``sender`` to ``recipient``.

Anything else the token's contract prints (another event name, a missing or
mistyped field, a print that is not a tuple) is :class:`Unreadable`: the caller
cannot know whether the holder's balance moved, so it must stop that token's
history there rather than guess.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from balances.chain.clarity import (
    NONE,
    ClarityValue,
    ContractPrincipal,
    Some,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    Tuple,
    UInt,
)
from balances.chain.history import TxEvent

_TRANSFERS = frozenset({"transfer", "x-transfer"})


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A print whose effect on balances cannot be known; ``reason`` says why."""

    reason: str


#: A holder's signed change of one token in one transaction, or why it is unknown.
Delta = int | Unreadable


class _UnreadableError(Exception):
    """Raised inside :func:`print_delta`; never escapes it."""


def map_token_deltas(
    events: Sequence[TxEvent], contracts: Collection[str], holder: str
) -> dict[str, Delta]:
    """Per map-token contract in ``contracts`` that printed in ``events``: ``holder``'s
    net change, or the first :class:`Unreadable` print."""
    deltas: dict[str, Delta] = {}
    for event in events:
        contract = event.contract_id
        if contract is None or contract not in contracts:
            continue
        if event.type != "contract_log" or event.topic != "print":
            continue
        known = deltas.get(contract, 0)
        if isinstance(known, Unreadable):
            continue
        delta = print_delta(event.value, holder)
        deltas[contract] = delta if isinstance(delta, Unreadable) else known + delta
    return deltas


def print_delta(value: ClarityValue | None, holder: str) -> Delta:
    """``holder``'s signed change from one print of a map-based token."""
    try:
        return _delta(value, holder)
    except _UnreadableError as error:
        return Unreadable(str(error))


def _delta(value: ClarityValue | None, holder: str) -> int:
    if not isinstance(value, Tuple):
        raise _UnreadableError("a print that is not a tuple")
    fields = value.fields
    name = _event_name(fields)
    amount = fields.get("amount")
    if not isinstance(amount, UInt):
        raise _UnreadableError(f"a {name!r} print without a uint amount")
    sender, recipient = _party(fields, "sender", name), _party(fields, "recipient", name)
    if name == "deposit":
        credited = recipient or sender
        if credited is None:
            raise _UnreadableError("a 'deposit' print naming no one")
        return amount.value if credited == holder else 0
    if name == "withdraw":
        if sender is None:
            raise _UnreadableError("a 'withdraw' print without a sender")
        return -amount.value if sender == holder else 0
    if name in _TRANSFERS:
        if sender is None or recipient is None:
            raise _UnreadableError(f"a {name!r} print without both sender and recipient")
        return (amount.value if recipient == holder else 0) - (
            amount.value if sender == holder else 0
        )
    raise _UnreadableError(f"an event {name!r} whose effect on balances is not known")


def _event_name(fields: Mapping[str, ClarityValue]) -> str:
    name = fields.get("event")
    if isinstance(name, StringAscii | StringUtf8):
        return name.text
    raise _UnreadableError("a print without an event name")


def _party(fields: Mapping[str, ClarityValue], field: str, name: str) -> str | None:
    """The principal in ``field`` (bare or ``(some p)``), None when absent or ``none``."""
    value = fields.get(field)
    if isinstance(value, Some):
        value = value.value
    if value is None or value == NONE:
        return None
    if isinstance(value, StandardPrincipal | ContractPrincipal):
        return str(value)
    raise _UnreadableError(f"a {name!r} print whose {field} is not a principal")
