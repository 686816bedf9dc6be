"""The stand-in's block-following routes: paging, event windows, reads as of a block."""

from __future__ import annotations

import httpx

from balances.chain.clarity import decode_ok_uint, principal_from_text, to_hex
from balances.testing import FakeChain, fake_address

ALICE = fake_address("blocks-alice")
BOB = fake_address("blocks-bob")
DEPLOYER = fake_address("blocks-deployer")
TOKEN = f"{DEPLOYER}.blocks-token"
CREDIT = f"{DEPLOYER}.blocks-credit-v1"


def _busy_block(chain: FakeChain, transfers: int) -> int:
    chain.mint("stx", ALICE, 10**9)
    with chain.block():
        for index in range(transfers):
            chain.transfer("stx", ALICE, fake_address(f"blocks-r{index}"), 1 + index)
    return chain.tip_height


async def test_a_block_s_transactions_page_by_cursor_in_tx_index_order(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    height = _busy_block(fake_chain, 57)
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params: dict[str, str | int] = {"limit": 25}
        if cursor is not None:
            params["cursor"] = cursor
        answer = await fake_chain_client.get(
            f"/extended/v3/blocks/{height}/transactions", params=params
        )
        body = answer.json()
        assert body["total"] == 57
        seen += [tx["block"]["tx_index"] for tx in body["results"]]
        cursor = body["cursor"]["next"]
        if cursor is None:
            break
    assert seen == list(range(57))
    assert {tx["block"]["height"] for tx in body["results"]} == {height}
    too_many = await fake_chain_client.get(
        f"/extended/v3/blocks/{height}/transactions", params={"limit": 51}
    )
    assert too_many.status_code == 400


async def test_tx_multiple_cuts_each_transaction_s_events_to_the_window(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.add_native_token(TOKEN, "blocks")
    fake_chain.mint(TOKEN, ALICE, 1_000)
    with fake_chain.block():
        ids = [fake_chain.transfer(TOKEN, ALICE, BOB, 1) for _ in range(3)]
    tx = fake_chain.transaction(ids[0])
    assert tx is not None
    params: dict[str, object] = {"tx_id": ids, "event_offset": 1, "event_limit": 1}
    answer = await fake_chain_client.get("/extended/v1/tx/multiple", params=params)
    body = answer.json()
    assert list(body) == ids
    for entry in body.values():
        result = entry["result"]
        assert result["event_count"] == len(tx.emitted)
        assert [event["event_index"] for event in result["events"]] == (
            [1] if len(tx.emitted) > 1 else []
        )
    bad = await fake_chain_client.get("/extended/v1/tx/multiple", params={"tx_id": "nope"})
    assert bad.status_code == 400
    missing = await fake_chain_client.get("/extended/v1/tx/multiple")
    assert missing.status_code == 400


async def test_account_and_call_read_answer_as_of_a_block_even_an_orphaned_one(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.add_map_token(CREDIT)
    fake_chain.mint("stx", ALICE, 5_000)
    before = fake_chain.tip
    fake_chain.transfer("stx", ALICE, BOB, 1_200)
    fake_chain.deposit(CREDIT, ALICE, 70)
    orphan = fake_chain.tip
    fake_chain.reorg(1, keep=0.0)

    async def stx_at(block_hash: str) -> int:
        answer = await fake_chain_client.get(
            f"/v2/accounts/{ALICE}", params={"proof": 0, "tip": block_hash.removeprefix("0x")}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "balance_proof" not in body
        return int(body["balance"], 16) + int(body["locked"], 16)

    async def credit_at(block_hash: str) -> int:
        address, name = CREDIT.split(".")
        answer = await fake_chain_client.post(
            f"/v2/contracts/call-read/{address}/{name}/get-balance",
            params={"tip": block_hash.removeprefix("0x")},
            json={"sender": ALICE, "arguments": [to_hex(principal_from_text(ALICE))]},
        )
        return decode_ok_uint(answer.json()["result"])

    assert await stx_at(before.index_block_hash) == 5_000
    assert await credit_at(orphan.index_block_hash) == 70
    assert fake_chain.balance(CREDIT, ALICE) == 0  # the deposit was orphaned with its block
    unknown = await fake_chain_client.get(
        f"/v2/accounts/{ALICE}", params={"proof": 0, "tip": "ab" * 32}
    )
    assert unknown.status_code == 404
    orphaned = await fake_chain_client.get(f"/extended/v2/blocks/{orphan.hash}")
    assert orphaned.json()["canonical"] is False
    assert (await fake_chain_client.get(f"/extended/v2/blocks/{before.hash}")).json()["canonical"]
