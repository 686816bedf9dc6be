"""What a serialized Stacks transaction says about balances: who pays the fee, how much,
and (for pending transactions) what its payload will move.

A node's event observer sends transactions as raw bytes only, so the fee and payer
come from the wire format (SIP-005, "Transaction encoding"):

``version (1) | chain id (4) | authorization | anchor mode (1) | post-condition mode (1)
| post conditions (u32 count, each) | payload``

The authorization is ``0x04`` (standard: the origin's spending condition) or
``0x05`` (sponsored: the origin's, then the sponsor's, who pays). A spending
condition is ``hash mode (1) | signer hash160 (20) | nonce (8) | fee (8)`` then,
single-sig (modes 0x00, 0x02), ``key encoding (1) | signature (65)``, or, multisig
(0x01, 0x03, 0x05, 0x07), ``u32 field count | fields | u16 signatures required``.
The signer's address version follows the mode and the network (single-sig: P/T,
multisig: M/N); the version byte 0x00 is mainnet, 0x80 testnet.

Only token transfers (payload 0x00) and calls of a SIP-010 ``transfer`` (payload
0x02 with ``(amount uint) (sender principal) (recipient principal) ...``) say what
they will move; other payloads are read for the fee alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from balances.chain.c32 import c32_address
from balances.chain.clarity import ContractPrincipal, StandardPrincipal, UInt
from balances.chain.clarity_decode import deserialize_at
from balances.chain.events import STX_ASSET, AssetMove
from balances.errors import ClarityDecodeError, InvalidDeliveryError

_SINGLE_SIG = frozenset({0x00, 0x02})
_MULTI_SIG = frozenset({0x01, 0x03, 0x05, 0x07})
_STANDARD, _SPONSORED = 0x04, 0x05
_VERSIONS = {False: {"single": 22, "multi": 20}, True: {"single": 26, "multi": 21}}
_SIGNATURE_FIELD = {0x00: 33, 0x01: 65, 0x02: 65, 0x03: 65}


@dataclass(frozen=True, slots=True)
class RawTx:
    """The balance-relevant parts of one transaction."""

    sender: str
    payer: str
    fee: int
    nonce: int
    #: ``ADDR.contract`` of a contract call, else None.
    contract_call: str | None = None
    function_name: str | None = None
    #: What the payload will move (pending balances): an STX transfer, or a SIP-010
    #: ``transfer`` call keyed by the called contract.
    moves: tuple[AssetMove, ...] = ()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise InvalidDeliveryError(
                f"a raw transaction ends at byte {len(self.data)}, {size} more bytes expected"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def name(self) -> str:
        return self.take(self.uint(1)).decode("ascii", errors="replace")


def parse_raw_tx(raw: str | bytes) -> RawTx:
    """Decode ``raw`` (bytes or hex, ``0x`` optional); InvalidDeliveryError if it is not a
    transaction."""
    data = _bytes(raw)
    reader = _Reader(data)
    testnet = bool(reader.uint(1) & 0x80)
    reader.take(4)  # chain id
    auth = reader.uint(1)
    if auth not in (_STANDARD, _SPONSORED):
        raise InvalidDeliveryError(f"unknown authorization type 0x{auth:02x}")
    origin, origin_fee, nonce = _spending_condition(reader, testnet)
    payer, fee = origin, origin_fee
    if auth == _SPONSORED:
        payer, fee, _ = _spending_condition(reader, testnet)
    reader.take(2)  # anchor mode, post-condition mode
    for _ in range(reader.uint(4)):
        _skip_post_condition(reader)
    call, function, moves = _payload(reader, origin)
    return RawTx(origin, payer, fee, nonce, call, function, moves)


def _bytes(raw: str | bytes) -> bytes:
    if isinstance(raw, bytes):
        return raw
    text = raw[2:] if raw[:2] in ("0x", "0X") else raw
    try:
        return bytes.fromhex(text)
    except ValueError as error:
        raise InvalidDeliveryError(f"a raw transaction is not hex: {error}") from error


def _spending_condition(reader: _Reader, testnet: bool) -> tuple[str, int, int]:
    mode = reader.uint(1)
    signer = reader.take(20)
    nonce, fee = reader.uint(8), reader.uint(8)
    if mode in _SINGLE_SIG:
        reader.take(1 + 65)
        kind = "single"
    elif mode in _MULTI_SIG:
        for _ in range(reader.uint(4)):
            field = reader.uint(1)
            if field not in _SIGNATURE_FIELD:
                raise InvalidDeliveryError(f"unknown multisig field type 0x{field:02x}")
            reader.take(_SIGNATURE_FIELD[field])
        reader.take(2)
        kind = "multi"
    else:
        raise InvalidDeliveryError(f"unknown hash mode 0x{mode:02x}")
    return c32_address(_VERSIONS[testnet][kind], signer), fee, nonce


def _skip_principal(reader: _Reader) -> None:
    kind = reader.uint(1)
    if kind == 0x02:
        reader.take(21)
    elif kind == 0x03:
        reader.take(21)
        reader.name()
    elif kind != 0x01:
        raise InvalidDeliveryError(f"unknown post-condition principal 0x{kind:02x}")


def _skip_post_condition(reader: _Reader) -> None:
    kind = reader.uint(1)
    _skip_principal(reader)
    if kind == 0x00:  # STX: code, amount
        reader.take(1 + 8)
    elif kind == 0x01:  # fungible: asset info, code, amount
        reader.take(21)
        reader.name()
        reader.name()
        reader.take(1 + 8)
    elif kind == 0x02:  # non-fungible: asset info, value, code
        reader.take(21)
        reader.name()
        reader.name()
        _, reader.pos = _value(reader)
        reader.take(1)
    else:
        raise InvalidDeliveryError(f"unknown post-condition type 0x{kind:02x}")


def _value(reader: _Reader) -> tuple[object, int]:
    try:
        return deserialize_at(reader.data, reader.pos)
    except ClarityDecodeError as error:
        raise InvalidDeliveryError(
            f"a raw transaction holds a bad Clarity value: {error}"
        ) from error


def _payload(reader: _Reader, origin: str) -> tuple[str | None, str | None, tuple[AssetMove, ...]]:
    kind = reader.uint(1)
    if kind == 0x00:  # token transfer: recipient, amount, memo
        recipient, reader.pos = _value(reader)
        amount = reader.uint(8)
        if not isinstance(recipient, StandardPrincipal | ContractPrincipal):
            raise InvalidDeliveryError("a token transfer to something that is not a principal")
        return None, None, (AssetMove(STX_ASSET, origin, str(recipient), amount),)
    if kind != 0x02:
        return None, None, ()  # deployments, coinbase, tenure changes: the fee alone
    version, hash160 = reader.uint(1), reader.take(20)
    contract = f"{c32_address(version, hash160)}.{reader.name()}"
    function = reader.name()
    args = []
    for _ in range(reader.uint(4)):
        value, reader.pos = _value(reader)
        args.append(value)
    return contract, function, _sip010_transfer(contract, function, args)


def _sip010_transfer(contract: str, function: str, args: list[object]) -> tuple[AssetMove, ...]:
    if function != "transfer" or len(args) < 3:
        return ()
    amount, sender, recipient = args[:3]
    principals = StandardPrincipal | ContractPrincipal
    if (
        isinstance(amount, UInt)
        and isinstance(sender, principals)
        and isinstance(recipient, principals)
    ):
        return (AssetMove(contract, str(sender), str(recipient), amount.value),)
    return ()
