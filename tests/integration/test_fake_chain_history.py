"""Chain-state and history routes of the stand-in over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from balances.chain.clarity import StringAscii, Tuple, UInt, deserialize, principal_from_text
from balances.testing import FakeChain, fake_address
from balances.testing.fake_chain import DEFAULT_START_TIME

ALICE = fake_address("alice")
BOB = fake_address("bob")
CAROL = fake_address("carol")
DEPLOYER = fake_address("deployer")
TOKEN = f"{DEPLOYER}.charisma-token"
ASSET = f"{TOKEN}::charisma"
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"
V3 = "/extended/v3/principals"


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain()
    chain.add_native_token(TOKEN, "charisma")
    chain.add_map_token(CREDIT)
    return chain


@pytest.fixture
def history(fake_chain: FakeChain) -> list[str]:
    """Five transactions touching ALICE, oldest first."""
    ids = [
        fake_chain.mint("stx", ALICE, 1_000),
        fake_chain.mint(TOKEN, ALICE, 500),
        fake_chain.transfer("stx", ALICE, BOB, 300),
    ]
    fake_chain.mint(TOKEN, BOB, 5)  # not ALICE's business
    ids.append(fake_chain.transfer(TOKEN, BOB, ALICE, 1))
    ids.append(fake_chain.deposit(CREDIT, ALICE, 50))
    return ids


# --- chain state ----------------------------------------------------------------


async def test_status_and_node_info_follow_the_tip(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.advance_blocks(4)
    status = (await fake_chain_client.get("/extended")).json()
    assert status["status"] == "ready"
    assert status["chain_tip"]["block_height"] == 1004
    assert status["chain_tip"]["block_hash"] == fake_chain.tip.hash
    info = (await fake_chain_client.get("/v2/info")).json()
    assert info["stacks_tip_height"] == 1004
    assert info["network_id"] == 1
    assert info["burn_block_height"] == status["chain_tip"]["burn_block_height"]


async def test_blocks_by_height_hash_latest(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    tx_id = fake_chain.mint("stx", ALICE, 1)
    latest = (await fake_chain_client.get("/extended/v2/blocks/latest")).json()
    assert latest["height"] == 1001
    assert latest["tx_count"] == 1
    assert latest["block_time"] == DEFAULT_START_TIME + 10
    assert latest["block_time_iso"] == "2024-01-01T00:00:10.000Z"
    by_height = (await fake_chain_client.get("/extended/v2/blocks/1001")).json()
    by_hash = (await fake_chain_client.get(f"/extended/v2/blocks/{latest['hash']}")).json()
    by_index = (
        await fake_chain_client.get(f"/extended/v2/blocks/{latest['index_block_hash'][2:]}")
    ).json()
    assert latest == by_height == by_hash == by_index
    parent = (await fake_chain_client.get("/extended/v2/blocks/1000")).json()
    assert latest["parent_block_hash"] == parent["hash"]
    assert fake_chain.blocks.at_height(1001).tx_ids == (tx_id,)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "status"), [("1002", 404), ("0x" + "ab" * 32, 404), ("yesterday", 400)]
)
async def test_unknown_or_bad_blocks(
    fake_chain_client: httpx.AsyncClient, path: str, status: int
) -> None:
    response = await fake_chain_client.get(f"/extended/v2/blocks/{path}")
    assert response.status_code == status
    assert "error" in response.json()


async def test_block_by_time(fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient) -> None:
    fake_chain.advance_blocks(2)
    fake_chain.advance_time(3_600)
    url = "/extended/v2/blocks/by-block-time/{}"
    exact = (await fake_chain_client.get(url.format(DEFAULT_START_TIME + 10))).json()
    between = (await fake_chain_client.get(url.format(DEFAULT_START_TIME + 1_000))).json()
    before_start = (await fake_chain_client.get(url.format(DEFAULT_START_TIME - 25))).json()
    assert exact["height"] == 1001
    assert between["height"] == 1002  # the quiet hour: still block 1002
    assert before_start["height"] == 997
    assert before_start["block_time"] <= DEFAULT_START_TIME - 25
    assert (await fake_chain_client.get(url.format(5))).status_code == 404
    assert (await fake_chain_client.get(url.format("soon"))).status_code == 400


# --- transactions -----------------------------------------------------------------


async def test_principal_transactions_newest_first(
    fake_chain_client: httpx.AsyncClient, history: list[str]
) -> None:
    body = (await fake_chain_client.get(f"{V3}/{ALICE}/transactions")).json()
    assert body["total"] == 5
    assert body["limit"] == 20
    ids = [row["transaction"]["tx_id"] for row in body["results"]]
    assert ids == [history[4], history[3], history[2], history[1], history[0]]
    deposit, received, sent, minted, coinbase = body["results"]
    assert sent["involvement"] == "sender"
    assert sent["transaction"]["type"] == "token_transfer"
    assert sent["transaction"]["token_transfer"] == {
        "recipient": BOB,
        "amount": "300",
        "memo": None,
    }
    assert sent["balance_changes"]["stx"] == {"sent": "300", "received": "0", "net": "-300"}
    assert sent["affected_balances"] == {"stx": True, "ft": False, "nft": False}
    assert received["involvement"] == "affected"
    assert received["affected_balances"] == {"stx": False, "ft": True, "nft": False}
    assert minted["transaction"]["contract_call"] == {"contract_id": TOKEN, "function_name": "mint"}
    assert coinbase["transaction"]["type"] == "coinbase"
    assert coinbase["balance_changes"]["stx"]["net"] == "1000"
    assert deposit["transaction"]["contract_call"]["function_name"] == "deposit"
    assert deposit["affected_balances"] == {"stx": False, "ft": False, "nft": False}


async def test_principal_transactions_paging(
    fake_chain_client: httpx.AsyncClient, history: list[str]
) -> None:
    url = f"{V3}/{ALICE}/transactions"
    first = (await fake_chain_client.get(url, params={"limit": 2})).json()
    second = (
        await fake_chain_client.get(url, params={"limit": 2, "cursor": first["cursor"]["next"]})
    ).json()
    third = (
        await fake_chain_client.get(url, params={"limit": 2, "cursor": second["cursor"]["next"]})
    ).json()
    ids = [
        row["transaction"]["tx_id"] for page in (first, second, third) for row in page["results"]
    ]
    assert ids == history[::-1]
    assert third["cursor"]["next"] is None
    assert second["cursor"]["previous"] == first["cursor"]["current"]
    bad = await fake_chain_client.get(url, params={"cursor": "12:x"})
    assert bad.status_code == 400
    too_many = await fake_chain_client.get(url, params={"limit": 51})
    assert too_many.status_code == 400


async def test_balance_changes_for_a_batch_of_transactions(
    fake_chain_client: httpx.AsyncClient, history: list[str]
) -> None:
    url = f"{V3}/{ALICE}/balance-changes"
    repeated = await fake_chain_client.get(url, params=[("tx_id", tx_id) for tx_id in history])
    joined = await fake_chain_client.get(url, params={"tx_id": ",".join(history)})
    assert repeated.json() == joined.json()
    body = repeated.json()
    assert body["total"] == 4  # the deposit moves only the map token: no change here
    assert body["results"] == [
        _change(history[3], ASSET, sent=0, received=1),
        _change(history[2], None, sent=300, received=0),
        _change(history[1], ASSET, sent=0, received=500),
        _change(history[0], None, sent=0, received=1_000),
    ]


def _change(tx_id: str, asset: str | None, *, sent: int, received: int) -> dict[str, Any]:
    kind = {"type": "stx"} if asset is None else {"type": "ft", "identifier": asset}
    amounts = {"sent": str(sent), "received": str(received), "net": str(received - sent)}
    return {"tx_id": tx_id, "asset": kind, "balance_change": amounts}


async def test_balance_changes_paging_and_errors(
    fake_chain_client: httpx.AsyncClient, history: list[str]
) -> None:
    url = f"{V3}/{ALICE}/balance-changes"
    ids = ",".join(history)
    first = (await fake_chain_client.get(url, params={"tx_id": ids, "limit": 3})).json()
    rest = (
        await fake_chain_client.get(url, params={"tx_id": ids, "cursor": first["cursor"]["next"]})
    ).json()
    assert len(first["results"]) + len(rest["results"]) == 4
    assert rest["cursor"]["next"] is None
    for params in ({}, {"tx_id": "0x12"}, {"tx_id": ",".join([history[0]] * 21)}):
        response = await fake_chain_client.get(url, params=params)
        assert response.status_code == 400, params


async def test_per_transaction_balance_changes(
    fake_chain_client: httpx.AsyncClient, history: list[str]
) -> None:
    body = (
        await fake_chain_client.get(f"{V3}/{BOB}/transactions/{history[3]}/balance-changes")
    ).json()
    assert body["results"] == [
        {
            "asset": {"type": "ft", "identifier": ASSET},
            "balance_change": {"sent": "1", "received": "0", "net": "-1"},
        }
    ]
    missing = await fake_chain_client.get(
        f"{V3}/{BOB}/transactions/{'0x' + '00' * 32}/balance-changes"
    )
    assert missing.status_code == 404


async def test_transaction_events_of_transfers_and_deposits(
    fake_chain_client: httpx.AsyncClient, history: list[str]
) -> None:
    stx = (await fake_chain_client.get(f"/extended/v3/transactions/{history[2]}/events")).json()
    assert stx["results"] == [
        {
            "event_index": 0,
            "type": "stx_asset",
            "stx_asset": {
                "type": "transfer",
                "sender": ALICE,
                "recipient": BOB,
                "amount": "300",
                "memo": None,
            },
        }
    ]
    mint = (await fake_chain_client.get(f"/extended/v3/transactions/{history[1]}/events")).json()
    assert mint["results"][0]["ft_asset"] == {
        "type": "mint",
        "asset_identifier": ASSET,
        "recipient": ALICE,
        "amount": "500",
    }
    deposit = (await fake_chain_client.get(f"/extended/v3/transactions/{history[4]}/events")).json()
    (log,) = deposit["results"]
    assert log["type"] == "contract_log"
    assert log["contract_log"]["contract_id"] == CREDIT
    assert log["contract_log"]["topic"] == "print"
    value = deserialize(log["contract_log"]["value"]["hex"])
    expected = {
        "event": StringAscii("deposit"),
        "sender": principal_from_text(ALICE),
        "amount": UInt(50),
    }
    assert value == Tuple(expected)
    assert '"deposit"' in log["contract_log"]["value"]["repr"]


async def test_events_paging_and_unknown_transactions(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.add_map_token(f"{DEPLOYER}.wrapped", base_token=TOKEN)
    fake_chain.mint(TOKEN, CAROL, 10)
    tx_id = fake_chain.deposit(f"{DEPLOYER}.wrapped", CAROL, 10)  # an ft transfer, then a print
    url = f"/extended/v3/transactions/{tx_id}/events"
    first = (await fake_chain_client.get(url, params={"limit": 1})).json()
    second = (
        await fake_chain_client.get(url, params={"limit": 1, "cursor": first["cursor"]["next"]})
    ).json()
    assert [first["results"][0]["type"], second["results"][0]["type"]] == [
        "ft_asset",
        "contract_log",
    ]
    assert (
        await fake_chain_client.get(f"/extended/v3/transactions/{'0x' + '11' * 32}/events")
    ).status_code == 404
    assert (await fake_chain_client.get("/extended/v3/transactions/0x12/events")).status_code == 400


async def test_map_token_history_is_readable_from_its_contract(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.deposit(CREDIT, ALICE, 10)
    fake_chain.transfer(CREDIT, ALICE, CAROL, 4)
    # CAROL's credit came only through a print: the API indexes it under the contract.
    carol = (await fake_chain_client.get(f"{V3}/{CAROL}/transactions")).json()
    contract = (await fake_chain_client.get(f"{V3}/{CREDIT}/transactions")).json()
    assert carol["total"] == 0
    assert [
        row["transaction"]["contract_call"]["function_name"] for row in contract["results"]
    ] == [
        "transfer",
        "deposit",
    ]
