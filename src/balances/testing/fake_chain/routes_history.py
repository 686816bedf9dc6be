"""History routes (v3): a principal's transactions, their balance changes, and tx events.

Transactions are listed newest first; balance changes by chain position
descending, then asset (STX before fungible tokens, then identifier). Map-based
tokens leave no asset events, only their contract's ``print`` (``contract_log``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from balances.testing.fake_chain.http import (
    TX_ID_RE,
    Ctx,
    Reply,
    api_error,
    bad_request,
    cursor_page,
    path_principal,
    query_cursor,
    query_limit,
)
from balances.testing.fake_chain.ledger import FakeChain
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.records import Tx
from balances.testing.fake_chain.tx_json import events_v3, summary_v3

MAX_TX_IDS = 20
#: (asset type tag, identifier, sent, received) of one principal in one tx.
Change = tuple[int, str, int, int]


def changes_of(tx: Tx, principal: str) -> list[Change]:
    """The principal's STX and native-FT changes in ``tx``, by asset. The fee counts as
    STX sent by the payer (so ``net`` is the change of the STX balance)."""
    sums: defaultdict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    if tx.fee and tx.payer == principal:
        sums[(1, "stx")][0] += tx.fee
    for move in tx.moves:
        if move.kind == "map":
            continue
        if move.sender == principal:
            sums[(move.asset_type_tag, move.asset)][0] += move.amount
        if move.recipient == principal:
            sums[(move.asset_type_tag, move.asset)][1] += move.amount
    return sorted((tag, asset, sent, received) for (tag, asset), (sent, received) in sums.items())


def _change_json(change: Change) -> dict[str, Any]:
    tag, asset, sent, received = change
    kind = {"type": "stx"} if tag == 1 else {"type": "ft", "identifier": asset}
    amounts = {"sent": str(sent), "received": str(received), "net": str(received - sent)}
    return {"asset": kind, "balance_change": amounts}


def _row(chain: FakeChain, tx: Tx, principal: str) -> dict[str, Any]:
    changes = changes_of(tx, principal)
    stx = next((change for change in changes if change[0] == 1), (1, "stx", 0, 0))
    return {
        "transaction": summary_v3(chain, tx),
        "involvement": _involvement(tx, principal),
        "balance_changes": {"stx": _change_json(stx)["balance_change"]},
        "affected_balances": {
            "stx": any(change[0] == 1 for change in changes),
            "ft": any(change[0] == 2 for change in changes),
            "nft": False,
        },
    }


def _involvement(tx: Tx, principal: str) -> str:
    if tx.sender == principal:
        return "sender"
    return "sponsor" if tx.sponsor == principal else "affected"


def transactions(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    limit = query_limit(ctx, 20, 50)
    match = query_cursor(ctx, r"(\d+):(\d+):(\d+)")
    start = None if match is None else (-int(match[1]), -int(match[3]))
    txs = ctx.chain.transactions_of(principal)[::-1]
    keys = [(-tx.height, -tx.tx_index) for tx in txs]
    page, envelope = cursor_page(txs, keys, limit, start, lambda tx: f"{tx.height}:0:{tx.tx_index}")
    return Reply(body={**envelope, "results": [_row(ctx.chain, tx, principal) for tx in page]})


def _tx_ids(ctx: Ctx) -> list[str]:
    ids: list[str] = []
    for value in ctx.query.getlist("tx_id"):
        ids += [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise bad_request("querystring must have required property 'tx_id'")
    if len(ids) > MAX_TX_IDS:
        raise bad_request(f"querystring/tx_id must NOT have more than {MAX_TX_IDS} items")
    for tx_id in ids:
        if not TX_ID_RE.fullmatch(tx_id):
            raise bad_request(f"querystring/tx_id must be a 64-hex transaction id, got {tx_id!r}")
    return list(dict.fromkeys(ids))


def balance_changes(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    ids = _tx_ids(ctx)
    limit = query_limit(ctx, 20, 50)
    match = query_cursor(ctx, r"(\d+):(\d+):(\d+):(\d+):(\S+)")
    start = None if match is None else (-int(match[1]), -int(match[3]), int(match[4]), match[5])
    found = {tx.tx_id: tx for tx in map(ctx.chain.transaction, ids) if tx is not None}
    rows = [(tx, change) for tx in found.values() for change in changes_of(tx, principal)]
    rows.sort(key=lambda row: (-row[0].height, -row[0].tx_index, row[1][0], row[1][1]))
    keys = [(-tx.height, -tx.tx_index, change[0], change[1]) for tx, change in rows]
    page, envelope = cursor_page(
        rows,
        keys,
        limit,
        start,
        lambda row: f"{row[0].height}:0:{row[0].tx_index}:{row[1][0]}:{row[1][1]}",
    )
    results = [{"tx_id": tx.tx_id, **_change_json(change)} for tx, change in page]
    return Reply(body={**envelope, "results": results})


def tx_balance_changes(ctx: Ctx) -> Reply:
    principal = path_principal(ctx)
    tx = _known_tx(ctx)
    limit = query_limit(ctx, 20, 50)
    match = query_cursor(ctx, r"(\d+):(\S+)")
    start = None if match is None else (int(match[1]), match[2])
    changes = changes_of(tx, principal)
    keys = [(change[0], change[1]) for change in changes]
    page, envelope = cursor_page(
        changes, keys, limit, start, lambda change: f"{change[0]}:{change[1]}"
    )
    return Reply(body={**envelope, "results": [_change_json(change) for change in page]})


def _known_tx(ctx: Ctx) -> Tx:
    text = ctx.params["tx_id"]
    if not TX_ID_RE.fullmatch(text):
        raise bad_request(f"params/tx_id must be a 64-hex transaction id, got {text!r}")
    tx = ctx.chain.transaction(text)
    if tx is None:
        raise api_error(404, "Transaction not found", f"no transaction {text}")
    return tx


def tx_events(ctx: Ctx) -> Reply:
    tx = _known_tx(ctx)
    limit = query_limit(ctx, 20, 100)
    match = query_cursor(ctx, r"(\d+)")
    start = None if match is None else (int(match[1]),)
    events = events_v3(tx)
    keys = [(event["event_index"],) for event in events]
    page, envelope = cursor_page(
        events, keys, limit, start, lambda event: str(event["event_index"])
    )
    return Reply(body={**envelope, "results": list(page)})


_P = "/extended/v3/principals/{principal}"

ROUTES = [
    RouteSpec("GET", f"{_P}/transactions", transactions, etag=True),
    RouteSpec("GET", f"{_P}/transactions/{{tx_id}}/balance-changes", tx_balance_changes, etag=True),
    RouteSpec("GET", f"{_P}/balance-changes", balance_changes, etag=True),
    RouteSpec("GET", "/extended/v3/transactions/{tx_id}/events", tx_events),
]
