"""One block for a whole bulk answer: balances read at different tips are never mixed.

Current balances come from reads made at different moments: those ingestion keeps
fresh are as of its cursor, others as of the tip of their last read. A bulk answer
takes the newest of those blocks and re-reads each balance behind it exactly as of
that block (the node's state after it: one account or ``get-balance`` read per
pair, through the rate-limited client), so every balance in it holds at that one
block. Re-reads are bounded by ``api.max_consistency_reads``; a balance beyond the
bound, or whose re-read fails, is an item error of its own, never a balance from
another block and never a zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from balances.chain.models import Block
from balances.domain import Balance
from balances.errors import BalancesError, BehindBlockError
from balances.service.balances import BalanceService
from balances.service.history import PortfolioHistory


@dataclass(frozen=True, slots=True)
class OneBlock:
    """Balances all as of ``block_height``; ``behind``: those that could not be."""

    balances: list[Balance]
    behind: list[tuple[Balance, BalancesError]]
    block_height: int | None


async def as_of_one_block(service: BalanceService, balances: Sequence[Balance]) -> OneBlock:
    """``balances`` as of the newest block any of them was read at (module docstring)."""
    block, found = await at_one_block(service, balances)
    shown = [item for item in found if isinstance(item, Balance)]
    behind = [
        (balance, item)
        for balance, item in zip(balances, found, strict=True)
        if isinstance(item, BalancesError)
    ]
    return OneBlock(shown, behind, block)


async def at_one_block(
    service: BalanceService, balances: Sequence[Balance]
) -> tuple[int | None, list[Balance | BalancesError]]:
    """(the block, each balance as of it or why it cannot be), in the order given."""
    heights = {b.block_height for b in balances}
    if len(heights) <= 1 and None not in heights:
        return next(iter(heights), None), list(balances)
    known = [h for h in heights if h is not None]
    target = max(known) if known else (await service.chain.get_chain_tip()).height
    lagging = [i for i, b in enumerate(balances) if b.block_height != target]
    found: list[Balance | BalancesError] = list(balances)
    try:
        block = await service.chain.get_block(target)
    except BalancesError as error:  # no re-read can name the block: every lagging one is out
        for i in lagging:
            found[i] = error
        return target, found
    budget = service.config.api.max_consistency_reads
    gate = asyncio.Semaphore(service.config.sync_concurrency)
    reread = await asyncio.gather(
        *(_reread(service, balances[i], block, gate) for i in lagging[:budget])
    )
    for i, item in zip(lagging, reread, strict=False):
        found[i] = item
    for i in lagging[budget:]:
        found[i] = BehindBlockError(
            f"read at block {balances[i].block_height}, behind the answer's block {target}, "
            f"and over the {budget} re-reads one answer may make "
            "(BALANCES_API__MAX_CONSISTENCY_READS); ask again, or with at_block"
        )
    return target, found


async def _reread(
    service: BalanceService, balance: Balance, block: Block, gate: asyncio.Semaphore
) -> Balance | BalancesError:
    """``balance`` read again exactly as of ``block`` (the node's state after it)."""
    async with gate:
        try:
            amount = await service.chain.get_balance_at(
                balance.address, balance.token_id.partition("::")[0], block.index_block_hash
            )
        except BalancesError as error:
            return error
    return dataclasses.replace(
        balance,
        amount=amount,
        block_height=block.height,
        updated_at=datetime.fromtimestamp(service.wall_clock(), UTC),
        source="chain",
        stale=False,
        error=None,
    )


def ends_on(history: PortfolioHistory, amounts: Mapping[str, Balance | BalancesError]) -> bool:
    """Whether the portfolio's last bucket holds exactly ``amounts`` (a token it does
    not list holds nothing)."""
    last = history.buckets[-1].amounts if history.buckets else {}
    return all(
        isinstance(now, Balance) and last.get(token, 0) == now.amount
        for token, now in amounts.items()
    )
