"""The history reads on scripted answers: shapes, paging, batching, and malformed bodies."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from test_chain_support import ASSET, HOLDER, TOKEN, ScriptedApi, json_answer, make_client

from balances.chain.clarity import StringAscii, Tuple, UInt, to_hex
from balances.chain.history import MAX_TX_IDS
from balances.errors import MalformedResponseError, NotFoundError, ValidationError

TXS = f"/extended/v3/principals/{HOLDER}/transactions"
CHANGES = f"/extended/v3/principals/{HOLDER}/balance-changes"


def tx_id(n: int) -> str:
    return "0x" + f"{n:064x}"


def events_path(n: int) -> str:
    return f"/extended/v3/transactions/{tx_id(n)}/events"


def envelope(results: list[Any], next_cursor: str | None = None) -> dict[str, Any]:
    cursor = {"next": next_cursor, "previous": None, "current": None}
    return {"total": len(results), "limit": 50, "cursor": cursor, "results": results}


def tx_row(
    n: int,
    *,
    height: int = 100,
    net: str = "-5",
    sent: str = "5",
    received: str = "0",
    status: str = "success",
    call: str | None = TOKEN,
    ft: bool = False,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "tx_id": tx_id(n),
        "sender": {"address": HOLDER, "nonce": n},
        "sponsor": None,
        "fee_rate": "3",
        "block": {
            "height": height,
            "hash": "0x01",
            "index_hash": "0x02",
            "time": 1_700_000_000,
            "tx_index": 0,
        },
        "bitcoin_block": {"height": 9, "time": 1_700_000_000},
        "status": status,
        "type": "token_transfer" if call is None else "contract_call",
    }
    if call is not None:
        summary["contract_call"] = {"contract_id": call, "function_name": "transfer"}
    return {
        "transaction": summary,
        "involvement": "sender",
        "balance_changes": {"stx": {"sent": sent, "received": received, "net": net}},
        "affected_balances": {"stx": net != "0", "ft": ft, "nft": False},
    }


def change_item(n: int, net: int, asset: str | None = ASSET) -> dict[str, Any]:
    kind = {"type": "stx"} if asset is None else {"type": "ft", "identifier": asset}
    sent, received = (str(-net), "0") if net < 0 else ("0", str(net))
    return {
        "tx_id": tx_id(n),
        "asset": kind,
        "balance_change": {"sent": sent, "received": received, "net": str(net)},
    }


async def test_reads_one_page_of_transactions() -> None:
    api = ScriptedApi()
    rows = [tx_row(2, height=101, net="-1500", sent="1500", ft=True), tx_row(1, call=None)]
    api.on("GET", TXS, json_answer(envelope(rows, "100:0:0")))
    page = await make_client(api).get_principal_transactions(HOLDER, cursor="101:0:3")
    assert page.next_cursor == "100:0:0"
    assert page.total == 2
    first, second = page.txs
    assert first.tx_id == tx_id(2)
    assert first.block_height == 101
    assert first.block_time == 1_700_000_000.0
    assert first.stx_net == -1500
    assert first.affects_ft
    assert first.contract_id == TOKEN
    assert first.function_name == "transfer"
    assert first.fee == 3
    assert first.succeeded
    assert second.contract_id is None
    assert second.type == "token_transfer"
    params = api.calls[0].url.params
    assert params["limit"] == "50"
    assert params["cursor"] == "101:0:3"


def _spoil(row: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    spoiled = copy.deepcopy(row)
    *parents, last = path.split(".")
    target = spoiled
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return spoiled


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("balance_changes", KeyError),
        ("balance_changes.stx.net", -5),  # a number, not a decimal string
        ("balance_changes.stx.net", "5"),  # not received - sent
        ("balance_changes.stx.net", "--5"),
        ("balance_changes.stx.net", str(-(2**128))),  # beyond u128
        ("affected_balances.ft", "yes"),
        ("transaction.contract_call", KeyError),  # a contract call without its contract
        ("transaction.tx_id", "0x1234"),
        ("transaction.block.height", -1),
        ("transaction.block.time", "yesterday"),
        ("transaction.fee_rate", "-3"),
    ],
)
async def test_malformed_transactions_are_reported(path: str, value: Any) -> None:
    api = ScriptedApi()
    api.on("GET", TXS, json_answer(envelope([_spoil(tx_row(1), path, value)])))
    with pytest.raises(MalformedResponseError, match="transactions"):
        await make_client(api).get_principal_transactions(HOLDER)


async def test_a_transactions_cursor_that_does_not_advance_is_malformed() -> None:
    api = ScriptedApi()
    api.on("GET", TXS, json_answer(envelope([tx_row(1)], "7:0:0")))
    with pytest.raises(MalformedResponseError, match="does not advance"):
        await make_client(api).get_principal_transactions(HOLDER, cursor="7:0:0")


async def test_a_body_that_is_not_json_is_malformed() -> None:
    api = ScriptedApi()
    api.on("GET", TXS, httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        await make_client(api).get_principal_transactions(HOLDER)


@pytest.mark.parametrize("limit", [0, 51, True])
async def test_bad_limits_fail_before_any_request(limit: int) -> None:
    api = ScriptedApi()
    with pytest.raises(ValidationError):
        await make_client(api).get_principal_transactions(HOLDER, limit=limit)
    assert api.calls == []


async def test_balance_changes_batch_twenty_ids_and_follow_cursors() -> None:
    api = ScriptedApi()

    def answer(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["tx_id"].split(",")
        if request.url.params.get("cursor") is None and ids[0] == tx_id(0):
            return json_answer(envelope([change_item(0, 7)], "1:0:0:2:x"))
        return json_answer(envelope([change_item(int(ids[-1], 16), -2, None)]))

    api.on("GET", CHANGES, answer)
    ids = [tx_id(n) for n in range(45)]
    changes = await make_client(api).get_balance_changes(HOLDER, [*ids, ids[3].upper()[2:]])
    sent = [call.url.params["tx_id"].split(",") for call in api.calls]
    assert [len(batch) for batch in sent] == [20, 20, 20, 5]  # the first batch has two pages
    assert all(len(batch) <= MAX_TX_IDS for batch in sent)
    assert api.calls[1].url.params["cursor"] == "1:0:0:2:x"
    first = changes[0]
    assert (first.tx_id, first.asset_type, first.identifier, first.net) == (
        tx_id(0),
        "ft",
        ASSET,
        7,
    )
    assert changes[1].asset_type == "stx"
    assert changes[1].identifier is None
    assert len(changes) == 4


@pytest.mark.parametrize(
    "item",
    [
        {**change_item(1, 5), "asset": {"type": "ft"}},  # no identifier
        {**change_item(1, 5), "asset": {"type": "ft", "identifier": "charisma"}},
        {**change_item(1, 5), "balance_change": {"sent": "0", "received": "5", "net": "4"}},
        {**change_item(1, 5), "tx_id": "nope"},
    ],
)
async def test_malformed_balance_changes_are_reported(item: dict[str, Any]) -> None:
    api = ScriptedApi()
    api.on("GET", CHANGES, json_answer(envelope([item])))
    with pytest.raises(MalformedResponseError, match="balance-changes"):
        await make_client(api).get_balance_changes(HOLDER, [tx_id(1)])


async def test_a_balance_change_cursor_loop_is_malformed() -> None:
    api = ScriptedApi()
    api.on("GET", CHANGES, json_answer(envelope([change_item(1, 5)], "1:0:0:2:x")))
    with pytest.raises(MalformedResponseError, match="does not end"):
        await make_client(api).get_balance_changes(HOLDER, [tx_id(1)])


@pytest.mark.parametrize("bad", ["", "0x12", "z" * 64, "0x" + "g" * 64])
async def test_bad_tx_ids_fail_before_any_request(bad: str) -> None:
    api = ScriptedApi()
    client = make_client(api)
    with pytest.raises(ValidationError):
        await client.get_balance_changes(HOLDER, [bad])
    with pytest.raises(ValidationError):
        await client.get_tx_events(bad)
    assert api.calls == []


def print_event(index: int, value_hex: str, contract: str = TOKEN) -> dict[str, Any]:
    log = {"contract_id": contract, "topic": "print", "value": {"hex": value_hex, "repr": "?"}}
    return {"event_index": index, "type": "contract_log", "contract_log": log}


async def test_events_decode_prints_and_follow_cursors() -> None:
    api = ScriptedApi()
    value = Tuple({"event": StringAscii("deposit"), "amount": UInt(5)})
    ft_event = {"event_index": 0, "type": "ft_asset", "ft_asset": {"type": "mint"}}
    api.on(
        "GET",
        events_path(1),
        json_answer(envelope([ft_event], "1")),
        json_answer(envelope([print_event(1, to_hex(value))])),
    )
    events = await make_client(api).get_tx_events(tx_id(1)[2:])
    assert [event.type for event in events] == ["ft_asset", "contract_log"]
    assert events[0].value is None
    assert events[1].value == value
    assert events[1].contract_id == TOKEN
    assert events[1].topic == "print"
    assert api.calls[0].url.params["limit"] == "100"
    assert api.calls[1].url.params["cursor"] == "1"


@pytest.mark.parametrize(
    "event",
    [
        print_event(0, "0xzz"),  # not hex
        print_event(0, "0x0c000000"),  # a truncated tuple
        {"event_index": 0, "type": "contract_log"},  # no contract_log object
        {"event_index": "0", "type": "contract_log"},
    ],
)
async def test_malformed_events_are_reported(event: dict[str, Any]) -> None:
    api = ScriptedApi()
    api.on("GET", events_path(1), json_answer(envelope([event])))
    with pytest.raises(MalformedResponseError, match="events"):
        await make_client(api).get_tx_events(tx_id(1))


async def test_an_unknown_transaction_is_not_found() -> None:
    api = ScriptedApi()
    api.on("GET", events_path(1), json_answer({"error": "Transaction not found"}, 404))
    with pytest.raises(NotFoundError, match="no transaction"):
        await make_client(api).get_tx_events(tx_id(1))
