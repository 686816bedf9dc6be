"""The change feed's entries: every balance change the service applied, numbered.

A :class:`ChangeDraft` is what a writer knows when it applies a change; the feed
gives it a sequence number and it becomes a :class:`FeedEntry`. A *retraction*
says that a reorg undid an earlier change: it names the block it undid and, where
the feed still holds it, the sequence number of the change (``retracts``).

Amounts are exact integers here and decimal strings on the wire (u128 does not fit
a JSON number). ``previous``/``amount`` None means unknown, never zero.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from balances.domain.principals import Principal
from balances.domain.tokens import MAX_AMOUNT, TokenId
from balances.errors import RequestTooLargeError, ValidationError

EntryType = Literal["change", "retraction"]
_TYPES: tuple[EntryType, ...] = ("change", "retraction")


@dataclass(frozen=True, slots=True)
class ChangeDraft:
    """One balance change of one (address, token) as applied, before it is numbered."""

    type: EntryType
    address: str
    token: str
    kind: str
    previous: int | None
    amount: int | None
    block_height: int | None
    block_hash: str | None
    source: str
    at: float
    tx_ids: tuple[str, ...] = ()

    @property
    def delta(self) -> int | None:
        """``amount - previous``, or None when either is unknown."""
        if self.previous is None or self.amount is None:
            return None
        return self.amount - self.previous


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A numbered change: ``seq`` grows by one per entry, across restarts."""

    seq: int
    change: ChangeDraft
    #: For a retraction: the sequence number of the change it undoes (when known).
    retracts: int | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.change
        delta = c.delta
        return {
            "seq": self.seq,
            "type": c.type,
            "address": c.address,
            "token": c.token,
            "kind": c.kind,
            "previous": None if c.previous is None else str(c.previous),
            "amount": None if c.amount is None else str(c.amount),
            "delta": None if delta is None else str(delta),
            "block_height": c.block_height,
            "block_hash": c.block_hash,
            "tx_ids": list(c.tx_ids),
            "source": c.source,
            "at": c.at,
            "retracts": self.retracts,
        }


def decode_entry(data: Mapping[str, Any]) -> FeedEntry:
    """The entry :meth:`FeedEntry.to_json` wrote (ValueError/KeyError/TypeError when
    it is not one)."""
    kind = data["type"]
    if kind not in _TYPES:
        raise ValueError(f"entry type {kind!r}")
    draft = ChangeDraft(
        type=kind,
        address=_text(data["address"]),
        token=_text(data["token"]),
        kind=_text(data["kind"]),
        previous=_amount(data["previous"]),
        amount=_amount(data["amount"]),
        block_height=_optional_int(data["block_height"]),
        block_hash=None if data["block_hash"] is None else _text(data["block_hash"]),
        source=_text(data["source"]),
        at=float(data["at"]),
        tx_ids=tuple(_text(tx) for tx in data["tx_ids"]),
    )
    seq = _optional_int(data["seq"])
    if seq is None:
        raise ValueError("an entry has a sequence number")
    return FeedEntry(seq, draft, _optional_int(data["retracts"]))


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """Which entries a consumer wants: empty sets mean every address (or token)."""

    addresses: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()

    @classmethod
    def of(cls, addresses: Collection[str] = (), tokens: Collection[str] = ()) -> FeedFilter:
        return cls(frozenset(addresses), frozenset(tokens))

    @classmethod
    def checked(
        cls,
        addresses: Sequence[str],
        tokens: Sequence[str],
        *,
        max_addresses: int,
        skip_blanks: bool = True,
    ) -> FeedFilter:
        """The filter of a stream or a subscription from user input: every address a
        principal, every token a token id, at most ``max_addresses`` addresses
        (InvalidAddressError, InvalidTokenIdError, RequestTooLargeError). Blank
        items are skipped (``a,,b`` in a URL) unless ``skip_blanks`` is off."""
        if not skip_blanks:
            for blank in (item for item in [*addresses, *tokens] if not item.strip()):
                raise ValidationError(f"an empty address or token id ({blank!r}) in the filter")
        cleaned = [a.strip() for a in addresses if a.strip()]
        if len(cleaned) > max_addresses:
            raise RequestTooLargeError(
                f"{len(cleaned)} addresses: a filter holds at most {max_addresses} "
                "(open several streams or subscriptions, or filter by token)"
            )
        principals = {str(Principal.parse(address)) for address in cleaned}
        token_ids = {str(TokenId.parse(t.strip())) for t in tokens if t.strip()}
        return cls(frozenset(principals), frozenset(token_ids))

    def matches(self, entry: FeedEntry) -> bool:
        change = entry.change
        if self.addresses and change.address not in self.addresses:
            return False
        if not self.tokens:
            return True
        key = change.token
        contract, _, asset = key.partition("::")
        if key in self.tokens or contract in self.tokens:
            return True
        # A contract's only token is kept under the contract id, not its asset id.
        return not asset and any(t.partition("::")[0] == key for t in self.tokens)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _amount(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        raise ValueError(f"amount {value!r}")
    amount = int(value)
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount {value} exceeds u128")
    return amount
