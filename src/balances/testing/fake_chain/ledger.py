"""The in-memory ledger behind the Stacks API stand-in: the driver tests and demos use.

By default every mutation is one transaction mined alone in a new block (height
+ 1, time + ``block_seconds``), so history has distinct heights. Several
transactions share a block inside ``with chain.block():``, wait in the mempool
inside ``with chain.pending():``, and ``chain.reorg(depth)`` replaces the top
blocks (see :mod:`~balances.testing.fake_chain.engine` and
:mod:`~balances.testing.fake_chain.reorg`).

Amounts are ints in base units (u128); an overdraft raises
:class:`InsufficientBalanceError` and changes nothing. Every mutation takes
``fee`` (micro-STX, default 0, paid by ``sponsor`` when given, else by the
sender's address), and ``status``: a transaction mined as ``abort_by_response``
or ``abort_by_post_condition`` pays its fee and does nothing else.
"""

from __future__ import annotations

from collections import Counter

from balances.chain.clarity import (
    NONE,
    Buffer,
    Some,
)
from balances.domain import Principal
from balances.testing.fake_chain.accounts import Account
from balances.testing.fake_chain.blocks import Block, BlockLog
from balances.testing.fake_chain.engine import TxEngine
from balances.testing.fake_chain.faults import FaultConfig
from balances.testing.fake_chain.prices import PricedChain
from balances.testing.fake_chain.records import (
    STX_KEY,
    AssetKind,
    CallArg,
    Event,
    FakeChainError,
    StxLock,
    TokenInfo,
    Tx,
    TxStatus,
    digest_hex,
)
from balances.testing.fake_chain.reorg import Reorg, reorganise
from balances.testing.fake_chain.signing import TxPlan
from balances.testing.fake_chain.tokens import TokenRegistry
from balances.testing.fake_chain.tx_parts import (
    asset_of,
    boot_address,
    canonical,
    checked_move,
    principal_arg,
    stack_args,
    token_print,
    uint_arg,
)

__all__ = ["DEFAULT_START_TIME", "Account", "FakeChain"]

#: 2024-01-01T00:00:00Z.
DEFAULT_START_TIME = 1_704_067_200
#: Burn blocks per PoX reward cycle on mainnet.
REWARD_CYCLE_BURN_BLOCKS = 2100


class FakeChain(TxEngine, PricedChain, TokenRegistry):
    """An in-memory Stacks chain: STX, native and map-based tokens, blocks, history,
    a mempool, reorgs, and USD prices (``chain.set_price``, ``chain.prices``)."""

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
        self._init_engine(salt, BlockLog(salt, start_height, start_time, block_seconds))
        self.faults = FaultConfig()
        self.requests: Counter[str] = Counter()
        self.api_keys: Counter[str] = Counter()  # x-api-key values seen ("" when absent)

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
        """Mine ``count`` blocks (the pending transactions, else empty), ``block_seconds``
        apart; return the new tip height."""
        if count < 0:
            raise FakeChainError(f"count must be >= 0, got {count}")
        for _ in range(count):
            self.mine_block()
        return self.tip_height

    def advance_time(self, seconds: int) -> int:
        """Mine one block ``seconds`` after the tip (a quiet stretch); return its height."""
        if seconds < 0:
            raise FakeChainError(f"seconds must be >= 0, got {seconds}")
        return self.mine_block(self.tip_time + seconds).height

    def reorg(self, depth: int, *, seed: int = 0, keep: float = 0.5) -> Reorg:
        """Orphan the top ``depth`` blocks and mine ``depth + 1`` new ones in their place
        (see :func:`~balances.testing.fake_chain.reorg.reorganise`)."""
        return reorganise(self, depth, seed=seed, keep=keep)

    def reset_requests(self) -> None:
        self.requests.clear()
        self.api_keys.clear()

    # --- reads ---------------------------------------------------------------

    def balance(self, token: str, principal: str, at_height: int | None = None) -> int:
        """Ground truth: ``principal``'s ``token`` balance (now, or after block ``at_height``).
        STX counts locked STX, as the API's ``balance`` does."""
        return self.book.balance(canonical(principal), self._token_key(token), at_height)

    def locked(self, principal: str) -> int:
        """STX of ``principal`` locked by stacking at the tip."""
        return self.book.locked(canonical(principal), self.tip.burn_block_height)

    def available(self, principal: str) -> int:
        """Spendable STX: the balance less the locked part."""
        return self.balance(STX_KEY, principal) - self.locked(principal)

    def lock_info(self, principal: str) -> tuple[int, int, str, int, int] | None:
        """(amount, unlock burn height, lock tx id, stacks height, burn height) while locked."""
        lock = self.book.locks.get(canonical(principal))
        if lock is None or not self.locked(principal):
            return None
        return (lock.amount, lock.unlock_burn_height, lock.tx_id, lock.height, lock.burn_height)

    def total_supply(self, token: str) -> int:
        return self.book.supply[self._token_key(token)]

    def accounts(self, principal: str) -> dict[str, Account]:
        """Every token ``principal`` touched in a canonical block (keys: ``stx`` or contract id)."""
        return dict(self.book.accounts.get(principal, {}))

    def transactions_of(self, principal: str) -> list[Tx]:
        """Canonical transactions the API indexes under ``principal``, oldest first."""
        return list(self._by_principal.get(principal, ()))

    def transaction(self, tx_id: str) -> Tx | None:
        """A mined transaction: its canonical inclusion, else its latest orphaned one."""
        key = tx_id.lower()
        return self._txs.get(key if key.startswith("0x") else "0x" + key)

    def state_tag(self, principal: str) -> str:
        """Changes whenever a transaction touching ``principal`` is mined (for ETags)."""
        txs = self._by_principal.get(principal)
        last = f"{txs[-1].tx_id}:{txs[-1].block_hash}" if txs else "none"
        return digest_hex(self._salt, "etag", principal, last)[2:34]

    # --- mutations -----------------------------------------------------------

    def mint(
        self,
        token: str,
        recipient: str,
        amount: int,
        *,
        fee: int = 0,
        sponsor: str | None = None,
        status: TxStatus = "success",
    ) -> str:
        """Create ``amount`` of ``token`` for ``recipient``; returns the tx id.

        STX arrive by a ``coinbase`` (an alternate recipient when not the sender's own
        address), a native token by its deployer calling ``mint``, a map token by a deposit.
        """
        recipient = canonical(recipient)
        if self._is_stx(token):
            move = checked_move("stx", STX_KEY, STX_KEY, None, recipient, amount)
            origin = Principal.parse(recipient).address
            alt = recipient if recipient != origin else None
            plan = TxPlan(origin, "coinbase", (move,), recipient=alt)
            return self._submit(plan, fee, sponsor, status)
        info = self.token(token)
        if info.kind == "map":
            return self.deposit(
                info.contract_id, recipient, amount, fee=fee, sponsor=sponsor, status=status
            )
        move = checked_move("ft", info.contract_id, asset_of(info), None, recipient, amount)
        args = (uint_arg("amount", amount), principal_arg("recipient", recipient))
        plan = TxPlan(info.deployer, "contract_call", (move,), info.contract_id, "mint", args)
        return self._submit(plan, fee, sponsor, status)

    def transfer(
        self,
        token: str,
        sender: str,
        recipient: str,
        amount: int,
        *,
        fee: int = 0,
        sponsor: str | None = None,
        status: TxStatus = "success",
        memo: bytes = b"",
    ) -> str:
        """Move ``amount`` of ``token`` from ``sender`` to ``recipient``; returns the tx id.

        STX go by a ``token_transfer`` payload (``memo``: up to 34 bytes), tokens by a
        ``transfer`` call; a map token's transfer prints ``{event: "transfer", ...}``.
        A contract principal sends through a call made by its deployer's address.
        """
        sender, recipient = canonical(sender), canonical(recipient)
        if sender == recipient:
            raise FakeChainError("sender and recipient are the same principal (SIP-010 err u2)")
        payer = Principal.parse(sender).address
        if self._is_stx(token):
            move = checked_move("stx", STX_KEY, STX_KEY, sender, recipient, amount)
            plan = TxPlan(payer, "token_transfer", (move,), recipient=recipient, amount=amount)
            return self._submit(plan, fee, sponsor, status, memo)
        info = self.token(token)
        kind: AssetKind = "map" if info.kind == "map" else "ft"
        move = checked_move(kind, info.contract_id, asset_of(info), sender, recipient, amount)
        events: tuple[Event, ...] = (move,)
        if info.kind == "map":
            events += (token_print(info, "transfer", sender, amount, recipient),)
        args = (
            uint_arg("amount", amount),
            principal_arg("sender", sender),
            principal_arg("recipient", recipient),
            CallArg("memo", "(optional (buff 34))", Some(Buffer(memo)) if memo else NONE),
        )
        plan = TxPlan(payer, "contract_call", events, info.contract_id, "transfer", args)
        return self._submit(plan, fee, sponsor, status)

    def burn(
        self,
        token: str,
        sender: str,
        amount: int,
        *,
        fee: int = 0,
        sponsor: str | None = None,
        status: TxStatus = "success",
    ) -> str:
        """Destroy ``amount`` of ``sender``'s ``token``; returns the tx id."""
        sender = canonical(sender)
        payer = Principal.parse(sender).address
        if self._is_stx(token):
            move = checked_move("stx", STX_KEY, STX_KEY, sender, None, amount)
            burner = f"{boot_address(self.network)}.burn-stx"
            plan = TxPlan(
                payer, "contract_call", (move,), burner, "burn", (uint_arg("amount", amount),)
            )
            return self._submit(plan, fee, sponsor, status)
        info = self.token(token)
        if info.kind == "map":
            return self.withdraw(
                info.contract_id, sender, amount, fee=fee, sponsor=sponsor, status=status
            )
        move = checked_move("ft", info.contract_id, asset_of(info), sender, None, amount)
        args = (uint_arg("amount", amount), principal_arg("sender", sender))
        plan = TxPlan(payer, "contract_call", (move,), info.contract_id, "burn", args)
        return self._submit(plan, fee, sponsor, status)

    def deposit(
        self,
        map_token: str,
        principal: str,
        amount: int,
        *,
        fee: int = 0,
        sponsor: str | None = None,
        status: TxStatus = "success",
    ) -> str:
        """Credit a map-based token (prints ``{event: "deposit"}``); locks the base token if any."""
        info, principal = self._map_token(map_token), canonical(principal)
        events: list[Event] = []
        if info.base_token is not None:
            base = self.token(info.base_token)
            events.append(
                checked_move(
                    "ft", base.contract_id, asset_of(base), principal, info.contract_id, amount
                )
            )
        events.append(
            checked_move("map", info.contract_id, info.contract_id, None, principal, amount)
        )
        events.append(token_print(info, "deposit", principal, amount))
        return self._map_call(info, "deposit", principal, amount, events, fee, sponsor, status)

    def withdraw(
        self,
        map_token: str,
        principal: str,
        amount: int,
        *,
        fee: int = 0,
        sponsor: str | None = None,
        status: TxStatus = "success",
    ) -> str:
        """Debit a map-based token (prints ``{event: "withdraw"}``); releases the base token."""
        info, principal = self._map_token(map_token), canonical(principal)
        events: list[Event] = [
            checked_move("map", info.contract_id, info.contract_id, principal, None, amount)
        ]
        if info.base_token is not None:
            base = self.token(info.base_token)
            events.append(
                checked_move(
                    "ft", base.contract_id, asset_of(base), info.contract_id, principal, amount
                )
            )
        events.append(token_print(info, "withdraw", principal, amount))
        return self._map_call(info, "withdraw", principal, amount, events, fee, sponsor, status)

    def lock_stx(
        self,
        principal: str,
        amount: int,
        *,
        cycles: int = 1,
        fee: int = 0,
        sponsor: str | None = None,
        status: TxStatus = "success",
    ) -> str:
        """Stack ``amount`` STX for ``cycles`` reward cycles (``pox-4.stack-stx``): the
        balance keeps them, ``available`` does not, until the unlock burn height."""
        principal = canonical(principal)
        if "." in principal:
            raise FakeChainError(
                "only a standard address can stack (tx-sender must be the stacker)"
            )
        if not 1 <= cycles <= 12:
            raise FakeChainError(f"cycles must be in 1..12, got {cycles}")
        checked_move("stx", STX_KEY, STX_KEY, principal, None, amount)  # validates the amount
        start = self.blocks.burn_height_at(self.tip_time + self.blocks.block_seconds)
        unlock = start + cycles * REWARD_CYCLE_BURN_BLOCKS
        pox = f"{boot_address(self.network)}.pox-4"
        lock = StxLock(principal, amount, unlock, pox)
        plan = TxPlan(
            principal,
            "contract_call",
            (lock,),
            pox,
            "stack-stx",
            stack_args(amount, start, cycles),
        )
        return self._submit(plan, fee, sponsor, status)

    # --- internals -----------------------------------------------------------

    def _map_call(
        self,
        info: TokenInfo,
        function: str,
        principal: str,
        amount: int,
        events: list[Event],
        fee: int,
        sponsor: str | None,
        status: TxStatus,
    ) -> str:
        args = (uint_arg("amount", amount), CallArg("recipient", "(optional principal)", NONE))
        payer = Principal.parse(principal).address
        plan = TxPlan(payer, "contract_call", tuple(events), info.contract_id, function, args)
        return self._submit(plan, fee, sponsor, status)

    def _map_token(self, text: str) -> TokenInfo:
        info = self.token(text)
        if info.kind != "map":
            raise FakeChainError(
                f"{info.contract_id} is a native token; deposit/withdraw need a map token"
            )
        return info

    def _is_stx(self, token: str) -> bool:
        return token.strip().lower() == STX_KEY

    def _token_key(self, token: str) -> str:
        return STX_KEY if self._is_stx(token) else self.token(token).contract_id
