"""The in-memory ledger behind the Stacks API stand-in: the driver tests and demos use.

Every mutation is one transaction mined alone in a new block (height + 1, time +
``block_seconds``), so history has distinct heights. Amounts are ints in base
units (u128); an overdraft raises :class:`InsufficientBalanceError` and changes
nothing. Fees are zero, so STX balances move only by the amounts you send.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from balances.chain.clarity import ClarityValue, StringAscii, Tuple, UInt, principal_from_text
from balances.domain import MAX_AMOUNT, Principal
from balances.testing.fake_chain.blocks import Block, BlockLog
from balances.testing.fake_chain.faults import FaultConfig
from balances.testing.fake_chain.prices import PricedChain
from balances.testing.fake_chain.records import (
    STX_KEY,
    AssetKind,
    Event,
    FakeChainError,
    InsufficientBalanceError,
    Move,
    PrintEvent,
    TokenInfo,
    Tx,
    TxType,
    digest_hex,
)
from balances.testing.fake_chain.tokens import TokenRegistry

#: 2024-01-01T00:00:00Z.
DEFAULT_START_TIME = 1_704_067_200


@dataclass(slots=True)
class Account:
    """One principal's position in one token, with its history by height."""

    balance: int = 0
    sent: int = 0
    received: int = 0
    heights: list[int] = field(default_factory=list)
    snapshots: list[tuple[int, int, int]] = field(default_factory=list)  # balance, sent, received

    def at(self, height: int | None) -> tuple[int, int, int]:
        """(balance, sent, received) as of the end of block ``height`` (None: now)."""
        if height is None:
            return (self.balance, self.sent, self.received)
        position = bisect.bisect_right(self.heights, height) - 1
        return self.snapshots[position] if position >= 0 else (0, 0, 0)


@dataclass(frozen=True, slots=True)
class _TxPlan:
    sender: str
    type: TxType
    contract_id: str | None
    function_name: str | None
    events: tuple[Event, ...]


class FakeChain(PricedChain, TokenRegistry):
    """An in-memory Stacks chain: STX, native and map-based tokens, blocks, history,
    and USD prices (``chain.set_price``, ``chain.prices``)."""

    def __init__(
        self,
        network: str = "mainnet",
        start_height: int = 1000,
        start_time: int = DEFAULT_START_TIME,
        block_seconds: int = 10,
    ) -> None:
        if network not in ("mainnet", "testnet"):
            raise FakeChainError(f"network must be 'mainnet' or 'testnet', got {network!r}")
        super().__init__(network)
        salt = f"{network}:{start_height}:{start_time}"
        self.blocks = BlockLog(salt, start_height, start_time, block_seconds)
        self.faults = FaultConfig()
        self.requests: Counter[str] = Counter()
        self.api_keys: Counter[str] = Counter()  # x-api-key values seen ("" when absent)
        self._salt = salt
        self._accounts: dict[str, dict[str, Account]] = {}  # principal -> token key -> account
        self._supply: Counter[str] = Counter()
        self._txs: dict[str, Tx] = {}
        self._by_principal: dict[str, list[Tx]] = {}
        self._nonces: Counter[str] = Counter()

    # --- chain state ---------------------------------------------------------

    @property
    def tip(self) -> Block:
        return self.blocks.tip

    @property
    def tip_height(self) -> int:
        return self.blocks.tip.height

    @property
    def tip_time(self) -> int:
        return self.blocks.tip.time

    def advance_blocks(self, count: int = 1) -> int:
        """Mine ``count`` empty blocks, ``block_seconds`` apart; return the new tip height."""
        if count < 0:
            raise FakeChainError(f"count must be >= 0, got {count}")
        for _ in range(count):
            self.blocks.mine(self.tip_time + self.blocks.block_seconds)
        return self.tip_height

    def advance_time(self, seconds: int) -> int:
        """Mine one empty block ``seconds`` after the tip (a quiet stretch); return its height."""
        if seconds < 0:
            raise FakeChainError(f"seconds must be >= 0, got {seconds}")
        return self.blocks.mine(self.tip_time + seconds).height

    def reset_requests(self) -> None:
        self.requests.clear()
        self.api_keys.clear()

    # --- reads ---------------------------------------------------------------

    def balance(self, token: str, principal: str, at_height: int | None = None) -> int:
        """Ground truth: ``principal``'s ``token`` balance (now, or after block ``at_height``)."""
        key = STX_KEY if token.strip().lower() == STX_KEY else self.token(token).contract_id
        account = self._accounts.get(_canonical(principal), {}).get(key)
        return 0 if account is None else account.at(at_height)[0]

    def total_supply(self, token: str) -> int:
        key = STX_KEY if token.strip().lower() == STX_KEY else self.token(token).contract_id
        return self._supply[key]

    def accounts(self, principal: str) -> dict[str, Account]:
        """Every token ``principal`` ever touched (keys: ``stx`` or contract id)."""
        return dict(self._accounts.get(principal, {}))

    def transactions_of(self, principal: str) -> list[Tx]:
        """Transactions the API indexes under ``principal``, oldest first."""
        return list(self._by_principal.get(principal, ()))

    def transaction(self, tx_id: str) -> Tx | None:
        key = tx_id.lower()
        return self._txs.get(key if key.startswith("0x") else "0x" + key)

    def state_tag(self, principal: str) -> str:
        """Changes whenever a transaction touching ``principal`` is mined (for ETags)."""
        txs = self._by_principal.get(principal)
        last = txs[-1].tx_id if txs else "none"
        return digest_hex(self._salt, "etag", principal, last)[2:34]

    # --- mutations -----------------------------------------------------------

    def mint(self, token: str, recipient: str, amount: int) -> str:
        """Create ``amount`` of ``token`` for ``recipient``; returns the tx id."""
        recipient = _canonical(recipient)
        if token.strip().lower() == STX_KEY:
            move = _move("stx", STX_KEY, STX_KEY, None, recipient, amount)
            return self._commit(
                _TxPlan(Principal.parse(recipient).address, "coinbase", None, None, (move,))
            )
        info = self.token(token)
        if info.kind == "map":
            return self.deposit(info.contract_id, recipient, amount)
        move = _move("ft", info.contract_id, _asset(info), None, recipient, amount)
        return self._commit(
            _TxPlan(info.deployer, "contract_call", info.contract_id, "mint", (move,))
        )

    def transfer(self, token: str, sender: str, recipient: str, amount: int) -> str:
        """Move ``amount`` of ``token`` from ``sender`` to ``recipient``; returns the tx id."""
        sender, recipient = _canonical(sender), _canonical(recipient)
        if sender == recipient:
            raise FakeChainError("sender and recipient are the same principal (SIP-010 err u2)")
        payer = Principal.parse(sender).address
        if token.strip().lower() == STX_KEY:
            move = _move("stx", STX_KEY, STX_KEY, sender, recipient, amount)
            return self._commit(_TxPlan(payer, "token_transfer", None, None, (move,)))
        info = self.token(token)
        kind: AssetKind = "map" if info.kind == "map" else "ft"
        move = _move(kind, info.contract_id, _asset(info), sender, recipient, amount)
        events: tuple[Event, ...] = (move,)
        if info.kind == "map":
            events += (_print(info, "transfer", sender, amount, recipient),)
        return self._commit(_TxPlan(payer, "contract_call", info.contract_id, "transfer", events))

    def burn(self, token: str, sender: str, amount: int) -> str:
        """Destroy ``amount`` of ``sender``'s ``token``; returns the tx id."""
        sender = _canonical(sender)
        payer = Principal.parse(sender).address
        if token.strip().lower() == STX_KEY:
            move = _move("stx", STX_KEY, STX_KEY, sender, None, amount)
            burner = f"{_boot_address(self.network)}.burn-stx"
            return self._commit(_TxPlan(payer, "contract_call", burner, "burn", (move,)))
        info = self.token(token)
        if info.kind == "map":
            return self.withdraw(info.contract_id, sender, amount)
        move = _move("ft", info.contract_id, _asset(info), sender, None, amount)
        return self._commit(_TxPlan(payer, "contract_call", info.contract_id, "burn", (move,)))

    def deposit(self, map_token: str, principal: str, amount: int) -> str:
        """Credit a map-based token (prints ``{event: "deposit"}``); locks the base token if any."""
        info, principal = self._map_token(map_token), _canonical(principal)
        events: list[Event] = []
        if info.base_token is not None:
            base = self.token(info.base_token)
            events.append(
                _move("ft", base.contract_id, _asset(base), principal, info.contract_id, amount)
            )
        events.append(_move("map", info.contract_id, info.contract_id, None, principal, amount))
        events.append(_print(info, "deposit", principal, amount))
        payer = Principal.parse(principal).address
        return self._commit(
            _TxPlan(payer, "contract_call", info.contract_id, "deposit", tuple(events))
        )

    def withdraw(self, map_token: str, principal: str, amount: int) -> str:
        """Debit a map-based token (prints ``{event: "withdraw"}``); releases the base token."""
        info, principal = self._map_token(map_token), _canonical(principal)
        events: list[Event] = [
            _move("map", info.contract_id, info.contract_id, principal, None, amount)
        ]
        if info.base_token is not None:
            base = self.token(info.base_token)
            events.append(
                _move("ft", base.contract_id, _asset(base), info.contract_id, principal, amount)
            )
        events.append(_print(info, "withdraw", principal, amount))
        payer = Principal.parse(principal).address
        return self._commit(
            _TxPlan(payer, "contract_call", info.contract_id, "withdraw", tuple(events))
        )

    # --- internals -----------------------------------------------------------

    def _map_token(self, text: str) -> TokenInfo:
        info = self.token(text)
        if info.kind != "map":
            raise FakeChainError(
                f"{info.contract_id} is a native token; deposit/withdraw need a map token"
            )
        return info

    def _check(self, moves: Iterable[Move]) -> None:
        """Refuse the whole transaction if any step would overdraw or overflow."""
        delta: Counter[tuple[str, str]] = Counter()
        supply: Counter[str] = Counter()
        for move in moves:
            if move.sender is not None:
                have = self.balance(move.token, move.sender) + delta[(move.token, move.sender)]
                if have < move.amount:
                    raise InsufficientBalanceError(
                        f"{move.sender} holds {have} of {move.asset}, cannot send {move.amount}"
                    )
                delta[(move.token, move.sender)] -= move.amount
            else:
                supply[move.token] += move.amount
            if move.recipient is not None:
                delta[(move.token, move.recipient)] += move.amount
            if self._supply[move.token] + supply[move.token] > MAX_AMOUNT:
                raise FakeChainError(
                    f"minting {move.amount} would overflow {move.asset}'s u128 supply"
                )

    def _commit(self, plan: _TxPlan) -> str:
        moves = [event for event in plan.events if isinstance(event, Move)]
        self._check(moves)
        height = self.tip_height + 1
        tx_id = digest_hex(self._salt, "tx", height)
        tx = Tx(
            tx_id=tx_id,
            height=height,
            tx_index=0,
            sender=plan.sender,
            nonce=self._nonces[plan.sender],
            type=plan.type,
            contract_id=plan.contract_id,
            function_name=plan.function_name,
            events=plan.events,
        )
        self._nonces[plan.sender] += 1
        self.blocks.mine(self.tip_time + self.blocks.block_seconds, (tx_id,))
        for move in moves:
            self._apply(move, height)
        self._txs[tx_id] = tx
        for principal in sorted(tx.involved):
            self._by_principal.setdefault(principal, []).append(tx)
        return tx_id

    def _apply(self, move: Move, height: int) -> None:
        if move.sender is None:
            self._supply[move.token] += move.amount
        else:
            account = self._account(move.sender, move.token)
            account.balance -= move.amount
            account.sent += move.amount
            _snapshot(account, height)
        if move.recipient is None:
            self._supply[move.token] -= move.amount
        else:
            account = self._account(move.recipient, move.token)
            account.balance += move.amount
            account.received += move.amount
            _snapshot(account, height)

    def _account(self, principal: str, token: str) -> Account:
        return self._accounts.setdefault(principal, {}).setdefault(token, Account())


def _snapshot(account: Account, height: int) -> None:
    state = (account.balance, account.sent, account.received)
    if account.heights and account.heights[-1] == height:
        account.snapshots[-1] = state
    else:
        account.heights.append(height)
        account.snapshots.append(state)


def _canonical(principal: str) -> str:
    return str(Principal.parse(principal))


def _asset(info: TokenInfo) -> str:
    return info.asset_identifier or info.contract_id


def _move(
    kind: AssetKind, token: str, asset: str, sender: str | None, recipient: str | None, amount: int
) -> Move:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise FakeChainError(f"amount must be an int in 1..2**128-1 (base units), got {amount!r}")
    return Move(kind, token, asset, sender, recipient, amount)


def _print(
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


def _boot_address(network: str) -> str:
    return (
        "SP000000000000000000002Q6VF78" if network == "mainnet" else "ST000000000000000000002AMW42H"
    )
