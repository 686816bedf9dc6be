"""What a block follower reads: a block's transactions, transactions with their
events, and the node's account state as of a block.

- ``GET /extended/v3/blocks/{height_or_hash}/transactions``: v3 summaries in
  ``tx_index`` order, ``limit`` 1..50 (default 20), cursor
  ``block_height:microblock_sequence:tx_index`` naming a page's first transaction;
  404 for a block the API does not know. An orphaned block answers by its hash.
- ``GET /extended/v1/tx/multiple?tx_id=...``: ``{tx_id: {found, result}}``, each
  mined transaction's events cut to ``[event_offset, event_offset + event_limit)``
  (limit 0..100, default 20) with ``event_count`` saying how many there are; a
  pending one in the mempool shape, an unknown one ``found: false``.
- ``GET /v2/accounts/{principal}?proof=0&tip=``: the node's account (u128 amounts as
  big-endian hex) as of the block whose index hash is ``tip`` (orphaned blocks too),
  404 for an unknown one; a malformed ``tip`` reads the chain tip, as the node does.

Shapes: ``reference/stacks-api/openapi.yaml`` (9.0.2) and
``reference/stacks-node-rpc/components/schemas/account-data.schema.yaml``.
"""

from __future__ import annotations

import re

from balances.testing.fake_chain.blocks import Block
from balances.testing.fake_chain.http import (
    Ctx,
    Reply,
    api_error,
    bad_request,
    path_principal,
    plain_error,
    query_cursor,
    query_limit,
)
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.records import STX_KEY
from balances.testing.fake_chain.tx_json import (
    MICROBLOCK_SEQUENCE_NONE,
    mempool_transaction_v1,
    summary_v3,
    transaction_v1,
)

TX_ID_RE = re.compile(r"(0x)?[a-fA-F0-9]{64}")
_HEIGHT_RE = re.compile(r"\d{1,12}")
_HASH_RE = re.compile(r"(0x)?[a-fA-F0-9]{64}")
_INDEX_HASH_RE = re.compile(r"[0-9a-f]{64}")
#: The API reads the ``tx_id`` list from a URL; beyond this many it refuses.
MULTIPLE_MAX_IDS = 200


def _block_of(ctx: Ctx) -> Block:
    text = ctx.params["height_or_hash"]
    blocks = ctx.chain.blocks
    if text == "latest":
        found: Block | None = blocks.tip
    elif _HEIGHT_RE.fullmatch(text):
        found = blocks.at_height(int(text))
    elif _HASH_RE.fullmatch(text):
        found = blocks.by_hash(text)
    else:
        raise bad_request(
            "params/height_or_hash must be 'latest', a block height or a 0x block hash, "
            f"got {text!r}"
        )
    if found is None:
        raise api_error(404, "Block not found", f"no block {text}")
    return found


def block_transactions(ctx: Ctx) -> Reply:
    block = _block_of(ctx)
    limit = query_limit(ctx, 20, 50)
    match = query_cursor(ctx, r"([0-9]+):([0-9]+):([0-9]+)")
    txs = ctx.chain.block_transactions(block)
    begin = 0
    if match is not None:
        if int(match[1]) != block.height:
            raise bad_request(f"querystring/cursor names block {match[1]}, not {block.height}")
        begin = next((i for i, tx in enumerate(txs) if tx.tx_index >= int(match[3])), len(txs))
    end = begin + limit

    def cursor(position: int) -> str:
        return f"{block.height}:{MICROBLOCK_SEQUENCE_NONE}:{txs[position].tx_index}"

    envelope = {
        "limit": limit,
        "total": len(txs),
        "cursor": {
            "next": cursor(end) if end < len(txs) else None,
            "previous": cursor(max(0, begin - limit)) if begin > 0 else None,
            "current": cursor(begin) if begin < len(txs) else None,
        },
    }
    results = [summary_v3(ctx.chain, tx) for tx in txs[begin:end]]
    return Reply(body={**envelope, "results": results})


def _event_window(ctx: Ctx) -> tuple[int, int]:
    def number(name: str, default: int, maximum: int | None) -> int:
        raw = ctx.query.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"\d{1,9}", raw):
            raise bad_request(f"querystring/{name} must be integer, got {raw!r}")
        if maximum is not None and int(raw) > maximum:
            raise bad_request(f"querystring/{name} must be <= {maximum}")
        return int(raw)

    return number("event_offset", 0, None), number("event_limit", 20, 100)


def transactions_multiple(ctx: Ctx) -> Reply:
    ids = ctx.query.getlist("tx_id")
    if not ids:
        raise bad_request("querystring must have required property 'tx_id'")
    if len(ids) > MULTIPLE_MAX_IDS:
        raise bad_request(f"querystring/tx_id must have at most {MULTIPLE_MAX_IDS} items")
    for tx_id in ids:
        if not TX_ID_RE.fullmatch(tx_id):
            shown = tx_id[:80]
            raise bad_request(f"querystring/tx_id must be a 0x transaction id, got {shown!r}")
    offset, limit = _event_window(ctx)
    body = {}
    for raw in ids:
        tx_id = "0x" + raw.removeprefix("0x").lower()
        tx = ctx.chain.transaction(tx_id)
        if tx is not None:
            result = transaction_v1(ctx.chain, tx, offset, limit)
            body[tx_id] = {"found": True, "result": result}
            continue
        pending = ctx.chain.pending_transaction(tx_id)
        if pending is not None:
            body[tx_id] = {"found": True, "result": mempool_transaction_v1(*pending)}
        else:
            body[tx_id] = {"found": False, "result": {"tx_id": tx_id}}
    return Reply(body=body)


def _u128_hex(amount: int) -> str:
    return "0x" + amount.to_bytes(16, "big").hex()


def account(ctx: Ctx) -> Reply:
    chain = ctx.chain
    principal = path_principal(ctx)
    tip = ctx.query.get("tip", "")
    block = chain.tip
    if _INDEX_HASH_RE.fullmatch(tip):  # anything else: the node reads the chain tip
        found = chain.blocks.by_hash(tip)
        if found is None:
            raise plain_error(404, f"No such block: {tip}")
        block = found
    total = chain.balance_after(principal, STX_KEY, block)
    locked = min(total, chain.book.locked(principal, block.burn_block_height))
    lock = chain.lock_info(principal)
    body = {
        "balance": _u128_hex(total - locked),
        "locked": _u128_hex(locked),
        "unlock_height": lock[1] if lock is not None and locked else 0,
        "nonce": chain.nonce_of(principal),
    }
    if ctx.query.get("proof", "1") == "1":
        body |= {"balance_proof": "0x", "nonce_proof": "0x"}
    return Reply(body=body)


ROUTES = [
    RouteSpec("GET", "/extended/v3/blocks/{height_or_hash}/transactions", block_transactions),
    RouteSpec("GET", "/extended/v1/tx/multiple", transactions_multiple),
    RouteSpec("GET", "/v2/accounts/{principal}", account),
]
