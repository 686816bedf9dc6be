"""``ChainReader``: what the sync layer needs from the chain.

The sync layer and its tests depend on this protocol, not on
:class:`~balances.chain.client.StacksClient`, so a fake reader (or another data
source) can stand in. Every method raises on failure; none returns a default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from balances.chain.models import Block, ChainTip, ContractInterface, TokenMetadata
from balances.domain import Principal


@runtime_checkable
class ChainReader(Protocol):
    async def get_stx_balance(self, principal: str | Principal) -> int:
        """The STX balance in micro-STX."""
        ...

    async def get_ft_balances(self, principal: str | Principal) -> dict[str, int]:
        """Every native FT balance, keyed by asset identifier (all pages)."""
        ...

    async def get_ft_balance(self, principal: str | Principal, asset_identifier: str) -> int:
        """One native FT balance."""
        ...

    async def get_map_token_balance(self, contract_id: str, principal: str | Principal) -> int:
        """A map-based token balance (``get-balance``)."""
        ...

    async def get_token_metadata(self, contract_id: str, *, full: bool = True) -> TokenMetadata:
        """SIP-010 metadata (``full=False``: decimals and symbol only)."""
        ...

    async def get_contract_interface(self, contract_id: str) -> ContractInterface:
        """The token's kind (native or map-based) and asset name."""
        ...

    async def get_chain_tip(self) -> ChainTip:
        """The newest block."""
        ...

    async def get_block(self, height: int) -> Block:
        """The block at ``height``."""
        ...

    async def get_block_at(self, moment: datetime | int | float | str) -> Block:
        """The newest block at or before ``moment``."""
        ...

    async def get_balance_at(
        self, principal: str | Principal, token: str, index_block_hash: str
    ) -> int:
        """A balance exactly as of one block (``stx`` or a contract id)."""
        ...
