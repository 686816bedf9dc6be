"""SIP-005 transaction wire format: the bytes of ``raw_tx`` and the tx id they hash to.

Layout (stacks-core ``StacksTransaction::consensus_serialize``; all integers
big-endian)::

    version u8 (0x00 mainnet, 0x80 testnet) | chain_id u32 (1 / 0x80000000)
    auth: 0x04 standard  + origin condition
        | 0x05 sponsored + origin condition + sponsor condition
        condition (single signature): hash_mode u8 (0x00 P2PKH) | signer hash160 [20]
            | nonce u64 | fee u64 | key_encoding u8 (0x00 compressed) | signature [65]
    anchor_mode u8 (1 on-chain only, 2 off-chain only, 3 any)
    post_condition_mode u8 (1 allow, 2 deny) | post_conditions: u32 count + items
    payload: 0x00 token transfer: recipient (Clarity principal) | amount u64 | memo [34]
           | 0x02 contract call: address (version u8 + hash160) | contract name (u8 len)
                 | function name (u8 len) | args: u32 count + Clarity values
           | 0x04 coinbase: [32]
           | 0x05 coinbase to an alternate recipient: [32] | recipient (Clarity principal)

The tx id is SHA-512/256 of these bytes (checked against the real testnet block in
``reference/chainhook/v1-fixtures``). In a sponsored transaction the sponsor's
condition carries the fee and the origin's fee is 0, as stacks.js builds them. The
stand-in signs nothing: signatures are 65 dummy bytes, so a consumer can read the
payer, nonce and fee but cannot verify a signature. Post-conditions are never
written (count 0); a transaction the stand-in marks ``abort_by_post_condition`` uses
mode deny, under which any asset movement without a post-condition aborts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from balances.chain.c32 import c32_address_decode
from balances.chain.clarity import ClarityValue, principal_from_text, serialize
from balances.testing.fake_chain.records import FakeChainError

U64_LIMIT = 1 << 64
MEMO_LENGTH = 34
SIGNATURE_LENGTH = 65
#: (transaction version byte, chain id) per network.
NETWORK_BYTES = {"mainnet": (0x00, 0x00000001), "testnet": (0x80, 0x80000000)}
AUTH_STANDARD, AUTH_SPONSORED = 0x04, 0x05
ANCHOR_ANY = 0x03
MODE_ALLOW, MODE_DENY = 0x01, 0x02
PAYLOAD_TOKEN_TRANSFER, PAYLOAD_CONTRACT_CALL = 0x00, 0x02
PAYLOAD_COINBASE, PAYLOAD_COINBASE_ALT = 0x04, 0x05
HASH_MODE_P2PKH = 0x00
KEY_COMPRESSED = 0x00


def _u64(value: int, what: str) -> bytes:
    if not 0 <= value < U64_LIMIT:
        raise FakeChainError(f"{what} must fit in a u64 on the wire, got {value}")
    return value.to_bytes(8, "big")


def _name(text: str) -> bytes:
    data = text.encode("ascii")
    return len(data).to_bytes(1, "big") + data


@dataclass(frozen=True, slots=True)
class SpendingCondition:
    """A single-signature spending condition: who signs, with which nonce and fee."""

    signer: bytes  # hash160 of the public key
    nonce: int
    fee: int
    hash_mode: int = HASH_MODE_P2PKH
    key_encoding: int = KEY_COMPRESSED
    signature: bytes = b"\x00" * SIGNATURE_LENGTH

    @classmethod
    def for_address(cls, address: str, nonce: int, fee: int) -> SpendingCondition:
        """The condition of a standard address, with a dummy signature."""
        _, hash160 = c32_address_decode(address)
        digest = hashlib.sha256(b"fake-chain-signature:" + hash160 + nonce.to_bytes(8, "big"))
        return cls(hash160, nonce, fee, signature=b"\x01" + digest.digest() * 2)

    def serialize(self) -> bytes:
        if len(self.signer) != 20 or len(self.signature) != SIGNATURE_LENGTH:
            raise FakeChainError("a spending condition needs a 20-byte signer, 65-byte signature")
        return (
            bytes([self.hash_mode])
            + self.signer
            + _u64(self.nonce, "nonce")
            + _u64(self.fee, "fee")
            + bytes([self.key_encoding])
            + self.signature
        )


@dataclass(frozen=True, slots=True)
class TokenTransferPayload:
    recipient: str  # an address or contract id
    amount: int
    memo: bytes = b""

    def serialize(self) -> bytes:
        if len(self.memo) > MEMO_LENGTH:
            raise FakeChainError(f"a memo holds at most {MEMO_LENGTH} bytes")
        return (
            bytes([PAYLOAD_TOKEN_TRANSFER])
            + serialize(principal_from_text(self.recipient))
            + _u64(self.amount, "a token-transfer amount")
            + self.memo.ljust(MEMO_LENGTH, b"\x00")
        )


@dataclass(frozen=True, slots=True)
class ContractCallPayload:
    contract_id: str
    function_name: str
    args: tuple[ClarityValue, ...] = ()

    def serialize(self) -> bytes:
        address, name = self.contract_id.split(".", 1)
        version, hash160 = c32_address_decode(address)
        out = bytearray([PAYLOAD_CONTRACT_CALL, version])
        out += hash160 + _name(name) + _name(self.function_name)
        out += len(self.args).to_bytes(4, "big")
        for arg in self.args:
            out += serialize(arg)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class CoinbasePayload:
    buffer: bytes  # 32 bytes
    alt_recipient: str | None = None

    def serialize(self) -> bytes:
        if len(self.buffer) != 32:
            raise FakeChainError("a coinbase payload holds exactly 32 bytes")
        if self.alt_recipient is None:
            return bytes([PAYLOAD_COINBASE]) + self.buffer
        recipient = serialize(principal_from_text(self.alt_recipient))
        return bytes([PAYLOAD_COINBASE_ALT]) + self.buffer + recipient


Payload = TokenTransferPayload | ContractCallPayload | CoinbasePayload


@dataclass(frozen=True, slots=True)
class StacksTransaction:
    """One transaction, ready to serialize (see the module docstring for the layout)."""

    network: str
    origin: SpendingCondition
    payload: Payload
    sponsor: SpendingCondition | None = None
    anchor_mode: int = ANCHOR_ANY
    post_condition_mode: int = MODE_ALLOW

    def serialize(self) -> bytes:
        version, chain_id = NETWORK_BYTES[self.network]
        out = bytearray([version]) + chain_id.to_bytes(4, "big")
        if self.sponsor is None:
            out += bytes([AUTH_STANDARD]) + self.origin.serialize()
        else:
            out += bytes([AUTH_SPONSORED]) + self.origin.serialize() + self.sponsor.serialize()
        out += bytes([self.anchor_mode, self.post_condition_mode]) + (0).to_bytes(4, "big")
        return bytes(out + self.payload.serialize())


def tx_id_of(raw: bytes) -> str:
    """``0x`` + SHA-512/256 of the serialized transaction, as the node computes it."""
    return "0x" + hashlib.new("sha512_256", raw).hexdigest()


def payload_offset(raw: bytes) -> int:
    """Where the payload starts in a transaction this module wrote (no post-conditions)."""
    condition = 1 + 20 + 8 + 8 + 1 + SIGNATURE_LENGTH
    auth = 1 + condition * (2 if raw[5] == AUTH_SPONSORED else 1)
    return 1 + 4 + auth + 2 + 4
