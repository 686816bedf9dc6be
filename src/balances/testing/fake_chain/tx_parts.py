"""Building blocks of the fake ledger's transactions: moves, call arguments, prints.

Each mutation of :class:`~balances.testing.fake_chain.ledger.FakeChain` describes
itself with these before it is signed: the asset moves it makes (validated
amounts), the contract-call arguments as a wallet would send them (Clarity
values with their ABI names and types), and the ``print`` a map-based token's
contract emits.
"""

from __future__ import annotations

from balances.chain.clarity import (
    NONE,
    Buffer,
    ClarityValue,
    StringAscii,
    Tuple,
    UInt,
    principal_from_text,
)
from balances.domain import MAX_AMOUNT, Principal
from balances.testing.fake_chain.records import (
    AssetKind,
    CallArg,
    FakeChainError,
    Move,
    PrintEvent,
    TokenInfo,
)


def canonical(principal: str) -> str:
    return str(Principal.parse(principal))


def asset_of(info: TokenInfo) -> str:
    return info.asset_identifier or info.contract_id


def checked_move(
    kind: AssetKind, token: str, asset: str, sender: str | None, recipient: str | None, amount: int
) -> Move:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise FakeChainError(f"amount must be an int in 1..2**128-1 (base units), got {amount!r}")
    return Move(kind, token, asset, sender, recipient, amount)


def uint_arg(name: str, amount: int) -> CallArg:
    return CallArg(name, "uint", UInt(amount))


def principal_arg(name: str, principal: str) -> CallArg:
    return CallArg(name, "principal", principal_from_text(principal))


def stack_args(amount: int, start_burn_height: int, cycles: int) -> tuple[CallArg, ...]:
    pox_address = Tuple({"version": Buffer(b"\x04"), "hashbytes": Buffer(bytes(32))})
    return (
        uint_arg("amount-ustx", amount),
        CallArg("pox-addr", "(tuple (hashbytes (buff 32)) (version (buff 1)))", pox_address),
        uint_arg("start-burn-ht", start_burn_height),
        uint_arg("lock-period", cycles),
        CallArg("signer-sig", "(optional (buff 65))", NONE),
        CallArg("signer-key", "(buff 33)", Buffer(b"\x02" + bytes(32))),
        uint_arg("max-amount", amount),
        uint_arg("auth-id", 1),
    )


def token_print(
    info: TokenInfo, event: str, sender: str, amount: int, recipient: str | None = None
) -> PrintEvent:
    fields: dict[str, ClarityValue] = {
        "event": StringAscii(event),
        "sender": principal_from_text(sender),
        "amount": UInt(amount),
    }
    if recipient is not None:
        fields["recipient"] = principal_from_text(recipient)
    return PrintEvent(info.contract_id, Tuple(fields))


def boot_address(network: str) -> str:
    return (
        "SP000000000000000000002Q6VF78" if network == "mainnet" else "ST000000000000000000002AMW42H"
    )
