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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from balances.domain import Balance
from balances.errors import BalancesError, BehindBlockError
from balances.service.balances import BalanceService


@dataclass(frozen=True, slots=True)
class OneBlock:
    """Balances all as of ``block_height``; ``behind``: those that could not be."""

    balances: list[Balance]
    behind: list[tuple[Balance, BalancesError]]
    block_height: int | None


async def as_of_one_block(service: BalanceService, balances: Sequence[Balance]) -> OneBlock:
    """``balances`` as of the newest block any of them was read at (module docstring)."""
    heights = {b.block_height for b in balances}
    if len(heights) <= 1 and None not in heights:
        return OneBlock(list(balances), [], next(iter(heights), None))
    known = [h for h in heights if h is not None]
    target = max(known) if known else (await service.chain.get_chain_tip()).height
    lagging = [b for b in balances if b.block_height != target]
    budget = service.config.api.max_consistency_reads
    try:
        block = await service.chain.get_block(target)
    except BalancesError as error:  # no re-read can name the block: every lagging one is out
        return OneBlock(
            [b for b in balances if b.block_height == target], [(b, error) for b in lagging], target
        )
    gate = asyncio.Semaphore(service.config.sync_concurrency)

    async def reread(balance: Balance) -> Balance | BalancesError:
        async with gate:
            try:
                amount = await service.chain.get_balance_at(
                    balance.address, balance.token_id.partition("::")[0], block.index_block_hash
                )
            except BalancesError as error:
                return error
        moment = datetime.fromtimestamp(service.wall_clock(), UTC)
        return dataclasses.replace(
            balance,
            amount=amount,
            block_height=target,
            updated_at=moment,
            source="chain",
            stale=False,
            error=None,
        )

    reread_ones = await asyncio.gather(*(reread(b) for b in lagging[:budget]))
    replaced = dict(zip((id(b) for b in lagging[:budget]), reread_ones, strict=True))
    over = {id(b) for b in lagging[budget:]}
    shown: list[Balance] = []
    behind: list[tuple[Balance, BalancesError]] = []
    for balance in balances:
        found = replaced.get(id(balance), balance)
        if id(balance) in over:
            found = BehindBlockError(
                f"read at block {balance.block_height}, behind the answer's block {target}, "
                f"and over the {budget} re-reads one answer may make "
                "(BALANCES_API__MAX_CONSISTENCY_READS); ask again, or with at_block"
            )
        if isinstance(found, BalancesError):
            behind.append((balance, found))
        else:
            shown.append(found)
    return OneBlock(shown, behind, target)
