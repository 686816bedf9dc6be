"""Block decoding from every source's wire format: the reference Chainhook v1 fixture,
Chainhooks 2.0 payloads valid against the client's published schema, a node's
/new_block, raw transactions (fee and payer), and the API's block routes. Bad
input is an InvalidDeliveryError naming the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from balances.chain.blocks import tx_from_details, tx_from_summary
from balances.chain.chainhook import decode_chainhook
from balances.chain.events import AssetMove
from balances.chain.observer import decode_dropped, decode_mempool, decode_new_block
from balances.chain.rawtx import parse_raw_tx
from balances.chain.wire_blocks import BlockTxSummary, V1Event, V1Transaction
from balances.errors import InvalidDeliveryError

# The repository's parent holds shared/reference (in CI too); a missing file fails.
CHAINHOOK = Path(__file__).resolve().parents[3] / "shared" / "reference" / "chainhook"
FIXTURE = CHAINHOOK / "v1-fixtures" / "stacks-testnet-block-107605.json"
WBTC = "ST3AXH4EBHD63FCFPTZ8GR29TNTVWDYPGY0KDY5E5.Wrapped-Bitcoin::wrapped-bitcoin"
ALICE = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
BOB = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE"
TOKEN = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fixture_block() -> dict[str, Any]:
    return load(FIXTURE)


def test_the_reference_v1_block_decodes_with_every_event(fixture_block) -> None:
    delivery = decode_chainhook({"apply": [fixture_block], "rollback": [], "chainhook": {}})
    (block,) = delivery.apply
    assert block.height == 107605
    assert block.parent.height == 107604
    assert block.parent.same_as(block.parent) is True
    fees = {tx.tx_id: tx.fee for tx in block.txs}
    assert fees == {
        t["transaction_identifier"]["hash"]: t["metadata"]["fee"]
        for t in fixture_block["transactions"]
    }
    loan = block.txs[2]
    assert loan.contract_call == "ST3AXH4EBHD63FCFPTZ8GR29TNTVWDYPGY0KDY5E5.pool-v1-0"
    assert [m.asset for m in loan.moves] == [WBTC, WBTC]
    assert all(m.amount == 6000 for m in loan.moves)
    assert len(loan.logs) == 6
    assert all(log.value_hex for log in loan.logs)
    moves = list(block.moves())
    assert moves[0] == AssetMove("stx", block.txs[1].payer, None, 118456)  # the fee


def test_the_raw_transactions_of_the_fixture_give_their_fee_sender_and_call(fixture_block) -> None:
    for tx in fixture_block["transactions"]:
        meta = tx["metadata"]
        raw = parse_raw_tx(meta["raw_tx"])
        assert (raw.sender, raw.payer, raw.fee, raw.nonce) == (
            meta["sender"],
            meta["sender"],
            meta["fee"],
            meta["nonce"],
        )
        if meta["kind"]["type"] == "ContractCall":
            assert raw.contract_call == meta["kind"]["data"]["contract_identifier"]
            assert raw.function_name == meta["kind"]["data"]["method"]


def test_a_truncated_raw_transaction_is_refused() -> None:
    with pytest.raises(InvalidDeliveryError, match="ends at byte"):
        parse_raw_tx("0x808000000004")
    with pytest.raises(InvalidDeliveryError, match="not hex"):
        parse_raw_tx("0xnothex")


def v2_payload() -> dict[str, Any]:
    def op(index: int, kind: str, address: str, value: str, asset: str | None) -> dict[str, Any]:
        return {
            "operation_identifier": {"index": index},
            "status": "success",
            "account": {"address": address},
            "type": kind,
            "amount": {
                "value": value,
                "currency": {
                    "decimals": 6,
                    "symbol": "STX" if asset is None else "CHA",
                    "metadata": {"asset_identifier": asset, "token_type": "ft"},
                },
            },
        }

    tx = {
        "transaction_identifier": {"hash": "0x" + "ab" * 32},
        "operations": [
            op(0, "fee", ALICE, "-300", None) | {"metadata": {"sponsored": False}},
            op(1, "token_transfer", ALICE, "-500", f"{TOKEN}::charisma"),
            op(2, "token_transfer", BOB, "500", f"{TOKEN}::charisma"),
            op(3, "token_mint", BOB, "7", None),
            {
                "operation_identifier": {"index": 4},
                "status": "success",
                "type": "contract_log",
                "metadata": {
                    "contract_identifier": TOKEN,
                    "topic": "print",
                    "value": {"hex": "0x0100000000000000000000000000000001", "repr": "u1"},
                },
            },
        ],
        "metadata": {
            "canonical": True,
            "microblock_canonical": True,
            "execution_cost": {
                "read_count": "1",
                "read_length": "1",
                "runtime": "1",
                "write_count": "1",
                "write_length": "1",
            },
            "fee_rate": "300",
            "nonce": 1,
            "type": "contract_call",
            "position": {"index": 0, "microblock_identifier": None},
            "result": {"hex": "0x0703", "repr": "(ok true)"},
            "sender_address": ALICE,
            "sponsor_address": None,
            "sponsored": False,
            "status": "success",
            "vm_error": None,
        },
    }
    block = {
        "block_identifier": {"index": 200, "hash": "0x" + "02" * 32},
        "parent_block_identifier": {"index": 199, "hash": "0x" + "01" * 32},
        "timestamp": 1_700_000_000,
        "transactions": [tx],
    }
    return {
        "event": {"chain": "stacks", "network": "mainnet", "apply": [block], "rollback": []},
        "chainhook": {"uuid": "b5d3c0a6-0000-4000-8000-000000000000", "name": "balances"},
    }


def test_a_chainhooks_v2_payload_valid_against_the_schema_decodes() -> None:
    schema = load(CHAINHOOK / "chainhooks-v2-client-2.1.1-schemas.json")["ChainhookEventSchema"]
    payload = v2_payload()
    jsonschema.validate(payload, schema)
    delivery = decode_chainhook(payload)
    assert delivery.network == "mainnet"
    assert delivery.rollback == ()
    (block,) = delivery.apply
    (tx,) = block.txs
    assert tx.fee == 300
    assert tx.payer == ALICE
    assert list(block.moves()) == [
        AssetMove("stx", ALICE, None, 300),
        AssetMove(f"{TOKEN}::charisma", ALICE, None, 500),
        AssetMove(f"{TOKEN}::charisma", None, BOB, 500),
        AssetMove("stx", None, BOB, 7),
    ]
    assert tx.logs[0].contract_id == TOKEN


def test_a_rollback_is_decoded_apart() -> None:
    payload = v2_payload()
    payload["event"]["rollback"] = payload["event"]["apply"]
    payload["event"]["apply"] = []
    delivery = decode_chainhook(payload)
    assert delivery.apply == ()
    assert len(delivery.rollback) == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("event"),
        lambda p: p["event"].pop("apply"),
        lambda p: p["event"]["apply"][0].pop("parent_block_identifier"),
        lambda p: p["event"]["apply"][0]["transactions"][0]["operations"][1]["amount"].update(
            value="lots"
        ),
        lambda p: p["event"].update(chain="bitcoin"),
    ],
)
def test_a_malformed_chainhook_delivery_is_refused(mutate) -> None:
    payload = v2_payload()
    mutate(payload)
    with pytest.raises(InvalidDeliveryError):
        decode_chainhook(payload)


def test_a_delivery_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidDeliveryError):
        decode_chainhook([1, 2])


def new_block(fixture_block: dict[str, Any]) -> dict[str, Any]:
    txs = fixture_block["transactions"]
    events = []
    for index, tx in enumerate(txs):
        for number, event in enumerate(tx["metadata"]["receipt"]["events"]):
            kind = {"FTTransferEvent": "ft_transfer_event", "SmartContractEvent": "contract_event"}[
                event["type"]
            ]
            events.append(
                {
                    "txid": tx["transaction_identifier"]["hash"],
                    "event_index": number,
                    "committed": index != 2 or number < 3,
                    "type": kind,
                    kind: event["data"],
                }
            )
    return {
        "block_hash": "0x" + "0a" * 32,
        "block_height": 107605,
        "block_time": 1686155176,
        "burn_block_time": 1686155100,
        "burn_block_hash": "0x" + "0b" * 32,
        "burn_block_height": 2436784,
        "index_block_hash": fixture_block["block_identifier"]["hash"],
        "parent_block_hash": "0x" + "0c" * 32,
        "parent_index_block_hash": fixture_block["parent_block_identifier"]["hash"],
        "transactions": [
            {
                "txid": tx["transaction_identifier"]["hash"],
                "tx_index": tx["metadata"]["position"]["index"],
                "status": "success",
                "raw_tx": tx["metadata"]["raw_tx"],
                "raw_result": "0x0703",
            }
            for tx in txs
        ],
        "events": events,
        "matured_miner_rewards": [
            {
                "recipient": BOB,
                "coinbase_amount": "1000",
                "tx_fees_anchored": "10",
                "tx_fees_streamed_confirmed": "0",
                "tx_fees_streamed_produced": "0",
            }
        ],
    }


def test_a_new_block_decodes_fees_from_raw_transactions_and_skips_rolled_back_events(
    fixture_block,
) -> None:
    block = decode_new_block(new_block(fixture_block))
    assert block.time == 1686155176  # Nakamoto's block_time, not the burn block's
    assert block.ref.same_as(decode_chainhook({"apply": [fixture_block]}).apply[0].ref)
    loan = block.txs[2]
    assert loan.fee == 1000
    assert len(loan.moves) == 1  # the second transfer was not committed
    assert block.rewards == (AssetMove("stx", None, BOB, 1010),)


def test_a_new_block_without_its_fields_is_refused(fixture_block) -> None:
    payload = new_block(fixture_block)
    del payload["index_block_hash"]
    with pytest.raises(InvalidDeliveryError, match="index_block_hash"):
        decode_new_block(payload)


def test_mempool_deliveries(fixture_block) -> None:
    raw = fixture_block["transactions"][1]["metadata"]["raw_tx"]
    (pending,) = decode_mempool([raw])
    assert pending.tx_id == fixture_block["transactions"][1]["transaction_identifier"]["hash"]
    assert pending.fee == 118456
    with pytest.raises(InvalidDeliveryError):
        decode_mempool({"not": "a list"})
    assert decode_dropped({"dropped_txids": ["AB" * 32], "reason": "ReplaceByFee"}) == [
        "0x" + "ab" * 32
    ]
    with pytest.raises(InvalidDeliveryError):
        decode_dropped({"reason": "x"})


def summary(**changes: Any) -> BlockTxSummary:
    data: dict[str, Any] = {
        "tx_id": "0x" + "cd" * 32,
        "sender": {"address": ALICE, "nonce": 1},
        "sponsor": None,
        "fee_rate": "180",
        "block": {
            "height": 5,
            "hash": "0x" + "05" * 32,
            "index_hash": "0x" + "06" * 32,
            "time": 10,
            "tx_index": 0,
        },
        "status": "success",
        "type": "token_transfer",
        "token_transfer": {"recipient": BOB, "amount": "1000", "memo": None},
    }
    data.update(changes)
    return BlockTxSummary.model_validate(data)


def test_an_api_transfer_summary_says_everything() -> None:
    tx = tx_from_summary(summary())
    assert tx.moves == (AssetMove("stx", ALICE, BOB, 1000),)
    assert tx.fee == 180
    failed = tx_from_summary(summary(status="abort_by_post_condition"))
    assert failed.moves == ()
    assert failed.fee == 180
    assert not failed.success
    sponsored = tx_from_summary(summary(sponsor={"address": BOB, "nonce": 2}))
    assert sponsored.payer == BOB


def test_api_v1_events_decode_mints_burns_and_prints() -> None:
    base = summary(
        type="contract_call",
        token_transfer=None,
        contract_call={"contract_id": TOKEN, "function_name": "mint"},
    )
    details = V1Transaction.model_validate(
        {
            "tx_id": base.tx_id,
            "tx_index": 0,
            "tx_status": "success",
            "tx_type": "contract_call",
            "block_hash": "0x05",
            "block_height": 5,
            "parent_block_hash": "0x04",
            "sender_address": ALICE,
            "fee_rate": "180",
            "event_count": 3,
            "events": [],
        }
    )
    events = [
        V1Event.model_validate(e)
        for e in (
            {
                "event_index": 1,
                "event_type": "fungible_token_asset",
                "tx_id": base.tx_id,
                "asset": {
                    "asset_event_type": "burn",
                    "asset_id": f"{TOKEN}::charisma",
                    "sender": ALICE,
                    "recipient": "",
                    "amount": "2",
                },
            },
            {
                "event_index": 0,
                "event_type": "stx_asset",
                "tx_id": base.tx_id,
                "asset": {
                    "asset_event_type": "mint",
                    "sender": "",
                    "recipient": BOB,
                    "amount": "9",
                },
            },
            {
                "event_index": 2,
                "event_type": "smart_contract_log",
                "tx_id": base.tx_id,
                "contract_log": {
                    "contract_id": TOKEN,
                    "topic": "print",
                    "value": {"hex": "0x03", "repr": "true"},
                },
            },
        )
    ]
    tx = tx_from_details(base, details, events)
    assert tx.moves == (
        AssetMove("stx", None, BOB, 9),
        AssetMove(f"{TOKEN}::charisma", ALICE, None, 2),
    )
    assert tx.logs[0].value_hex == "0x03"
