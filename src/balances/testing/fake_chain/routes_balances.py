"""Balance routes: STX and native fungible tokens, in the API's v3, v2 and v1 shapes.

Map-based tokens never appear here: the API only sees ``define-fungible-token``
balances. Amounts are decimal strings.
"""

from __future__ import annotations

import re
from typing import Any

from balances.testing.fake_chain.http import (
    ASSET_RE,
    Ctx,
    Reply,
    bad_request,
    cursor_page,
    path_principal,
    query_cursor,
    query_limit,
    query_offset,
)
from balances.testing.fake_chain.ledger import Account
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.records import STX_KEY

FT_CURSOR = r"(\d+):(.+)"


def _native_positions(
    ctx: Ctx, principal: str, height: int | None = None
) -> list[tuple[str, Account]]:
    """(asset identifier, account) for every native token the principal touched."""
    found = []
    for key, account in ctx.chain.accounts(principal).items():
        info = ctx.chain.find_contract(key) if key != STX_KEY else None
        if info is not None and info.asset_identifier is not None:
            found.append((info.asset_identifier, account))
    return found


def _held(ctx: Ctx, principal: str) -> list[tuple[str, int]]:
    """Non-zero native balances, by balance descending then asset identifier."""
    held = [
        (asset, acct.balance) for asset, acct in _native_positions(ctx, principal) if acct.balance
    ]
    held.sort(key=lambda item: (-item[1], item[0]))
    return held


def _stx(ctx: Ctx, principal: str) -> int:
    return ctx.chain.balance(STX_KEY, principal)


# --- v3 ---------------------------------------------------------------------


def v3_stx(ctx: Ctx) -> Reply:
    balance = str(_stx(ctx, path_principal(ctx)))
    return Reply(body={"balance": balance, "available": balance, "locked": None, "mempool": None})


def v3_ft_list(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    limit = query_limit(ctx, 100, 200)
    match = query_cursor(ctx, FT_CURSOR)
    start = None if match is None else (-int(match[1]), match[2])
    held = _held(ctx, principal)
    keys = [(-balance, asset) for asset, balance in held]
    page, envelope = cursor_page(held, keys, limit, start, lambda item: f"{item[1]}:{item[0]}")
    results = [{"asset_identifier": asset, "balance": str(balance)} for asset, balance in page]
    return Reply(body={**envelope, "results": results})


def v3_ft_one(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    asset = _asset_param(ctx, "asset_identifier")
    return Reply(
        body={"asset_identifier": asset, "balance": str(_ft_balance(ctx, principal, asset))}
    )


def _asset_param(ctx: Ctx, name: str) -> str:
    text = ctx.params[name]
    if not ASSET_RE.fullmatch(text):
        raise bad_request(
            f"params/{name} must be an asset identifier ADDR.contract::asset, got {text!r}"
        )
    return text


def _ft_balance(ctx: Ctx, principal: str, asset: str) -> int:
    contract_id, _, asset_name = asset.partition("::")
    info = ctx.chain.find_contract(contract_id)
    if info is None or info.kind != "native" or info.asset_name != asset_name:
        return 0  # the API does not know the token either: zero, not 404
    return ctx.chain.balance(contract_id, principal)


# --- v2 (deprecated) ----------------------------------------------------------


def v2_stx(ctx: Ctx) -> Reply:
    balance = str(_stx(ctx, path_principal(ctx)))
    body: dict[str, Any] = {
        "balance": balance,
        "total_miner_rewards_received": "0",
        "lock_tx_id": "",
        "locked": "0",
        "lock_height": 0,
        "burnchain_lock_height": 0,
        "burnchain_unlock_height": 0,
    }
    if ctx.query.get("include_mempool") == "true":
        body.update(
            estimated_balance=balance, pending_balance_inbound="0", pending_balance_outbound="0"
        )
    return Reply(body=body)


def v2_ft_list(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    limit, offset = query_limit(ctx, 100, 200), query_offset(ctx)
    held = _held(ctx, principal)
    results = [
        {"token": asset, "balance": str(balance)}
        for asset, balance in held[offset : offset + limit]
    ]
    return Reply(body={"limit": limit, "offset": offset, "total": len(held), "results": results})


def v2_ft_one(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    asset = _asset_param(ctx, "token")
    return Reply(body={"balance": str(_ft_balance(ctx, principal, asset))})


# --- v1 (deprecated) ----------------------------------------------------------


def _until_height(ctx: Ctx) -> int | None:
    """``until_block``: a height or a block hash (400 when neither, 404-free: unknown is tip)."""
    raw = ctx.query.get("until_block")
    if raw is None:
        return None
    if re.fullmatch(r"\d{1,12}", raw):
        return min(int(raw), ctx.chain.tip_height)
    found = ctx.chain.blocks.by_hash(raw) if re.fullmatch(r"(0x)?[a-fA-F0-9]{64}", raw) else None
    if found is None:
        raise bad_request(
            f"querystring/until_block must be a block height or a known block hash, got {raw!r}"
        )
    return found.height


def _v1_stx(ctx: Ctx, principal: str, height: int | None) -> dict[str, Any]:
    account = ctx.chain.accounts(principal).get(STX_KEY)
    balance, sent, received = (0, 0, 0) if account is None else account.at(height)
    body: dict[str, Any] = {"balance": str(balance)}
    if height is None:
        body.update(
            estimated_balance=str(balance),
            pending_balance_inbound="0",
            pending_balance_outbound="0",
        )
    body.update(
        total_sent=str(sent),
        total_received=str(received),
        total_fees_sent="0",
        total_miner_rewards_received="0",
        lock_tx_id="",
        locked="0",
        lock_height=0,
        burnchain_lock_height=0,
        burnchain_unlock_height=0,
    )
    return body


def v1_stx(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    return Reply(body=_v1_stx(ctx, principal, _until_height(ctx)))


def v1_balances(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    height = _until_height(ctx)
    tokens = {}
    for asset, account in sorted(_native_positions(ctx, principal)):
        balance, sent, received = account.at(height)
        if height is None or account.heights[0] <= height:
            tokens[asset] = {
                "balance": str(balance),
                "total_sent": str(sent),
                "total_received": str(received),
            }
    body = {
        "stx": _v1_stx(ctx, principal, height),
        "fungible_tokens": tokens,
        "non_fungible_tokens": {},
    }
    return Reply(body=body)


_V3 = "/extended/v3/principals/{principal}/balances"
_V2 = "/extended/v2/addresses/{principal}/balances"
_V1 = "/extended/v1/address/{principal}"

ROUTES = [
    RouteSpec("GET", f"{_V3}/stx", v3_stx, v3_balance=True, etag=True),
    RouteSpec("GET", f"{_V3}/ft", v3_ft_list, v3_balance=True, etag=True),
    RouteSpec("GET", f"{_V3}/ft/{{asset_identifier}}", v3_ft_one, v3_balance=True, etag=True),
    RouteSpec("GET", f"{_V2}/stx", v2_stx, deprecated=True, etag=True),
    RouteSpec("GET", f"{_V2}/ft", v2_ft_list, deprecated=True, etag=True),
    RouteSpec("GET", f"{_V2}/ft/{{token}}", v2_ft_one, deprecated=True, etag=True),
    RouteSpec("GET", f"{_V1}/stx", v1_stx, deprecated=True, etag=True),
    RouteSpec("GET", f"{_V1}/balances", v1_balances, deprecated=True, etag=True),
]
