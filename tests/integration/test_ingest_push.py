"""The push sources end to end: the stand-in's Chainhook and event-observer senders
POST the blocks it mines to our REST API served on loopback; the store then equals
the stand-in's ledger, after replays and a reorg of depth 3. A delivery without the
secret, from a host not allowed, or malformed is refused whole and applies nothing.
The observer's mempool posts show as pending amounts, apart from the balance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from ingest_rig import CHAINHOOK_SECRET, POPULATION, PushRig, push_rig_on

from balances.testing import FakeChain, FakeChainServer
from balances.testing.fake_chain import chainhook_payloads, observer_payloads
from balances.testing.fake_chain.deliverers import ChainhookDeliverer, DeliveryFailedError


@pytest.fixture(params=["chainhook", "observer"])
async def rig(
    request: pytest.FixtureRequest, fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> AsyncIterator[PushRig]:
    async with push_rig_on(fake_chain, fake_chain_server, request.param) as built:
        yield built


#: Tests of one source only take the ``rig`` fixture with that source.
CHAINHOOK = pytest.mark.parametrize("rig", ["chainhook"], indirect=True)
OBSERVER = pytest.mark.parametrize("rig", ["observer"], indirect=True)


def cursor(rig: PushRig) -> dict[str, Any]:
    found = rig.ingestion.status().as_dict()["cursor"]
    assert found is not None
    return dict(found)


async def served(rig: PushRig, address: str, token: str = "stx") -> dict[str, Any]:
    answer = await rig.api.get(f"/balances/{address}/{token}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_delivered_blocks_are_served_at_once_and_match_the_ledger(rig: PushRig) -> None:
    await rig.produce_and_deliver(5)
    assert cursor(rig)["index_hash"] == rig.chain.tip.index_block_hash
    assert await rig.differences() == []
    # the ingesting replica serves what it applied, before any flush
    for address in POPULATION[:5]:
        answer = await served(rig, address)
        assert answer["balance"] == str(rig.chain.balance("stx", address))
    status = (await rig.api.get("/ingest/status")).json()
    assert status["source"] == rig.ingestion.source
    assert status["blocks_applied"] == 5
    metrics = (await rig.api.get("/metrics")).text
    assert f"balances_ingest_cursor_height {float(rig.chain.tip_height)}" in metrics


async def test_a_delivery_sent_again_changes_nothing(rig: PushRig) -> None:
    start = rig.deliverer.position
    await rig.produce_and_deliver(3)
    before = await rig.stored()
    rig.deliverer.position = start  # the sender retries all of it, as after a timeout
    await rig.deliverer.deliver_pending()
    assert await rig.stored() == before
    assert await rig.differences() == []
    assert cursor(rig)["index_hash"] == rig.chain.tip.index_block_hash


async def test_a_reorg_of_depth_3_is_undone_and_the_new_fork_applied(rig: PushRig) -> None:
    await rig.produce_and_deliver(5)
    reorg = rig.chain.reorg(3, seed=3)
    assert len(reorg.orphaned) == 3
    await rig.produce_and_deliver(1)
    assert cursor(rig)["index_hash"] == rig.chain.tip.index_block_hash
    assert rig.ingestion.status().as_dict()["reorgs"] >= 1
    assert await rig.differences() == []


# --- refused deliveries ---------------------------------------------------------------


def next_chainhook_body(rig: PushRig) -> bytes:
    """The delivery of a block mined now (the sender is told it was sent)."""
    rig.anchored.producer.produce_one()
    rig.deliverer.position = len(rig.chain.journal)
    body = chainhook_payloads.delivery(rig.chain, (rig.chain.tip,))
    return orjson.dumps(body)


@CHAINHOOK
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-the-secret", CHAINHOOK_SECRET, f"Basic {CHAINHOOK_SECRET}"],
    ids=["missing", "wrong", "no scheme", "wrong scheme"],
)
async def test_a_chainhook_delivery_without_its_secret_is_401_and_applies_nothing(
    rig: PushRig, authorization: str | None
) -> None:
    before, height = await rig.stored(), cursor(rig)["height"]
    body = next_chainhook_body(rig)
    headers = {} if authorization is None else {"authorization": authorization}
    answer = await rig.api.post("/ingest/chainhook", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert cursor(rig)["height"] == height
    assert await rig.stored() == before
    # the same delivery with the secret is applied
    good = {"authorization": f"Bearer {CHAINHOOK_SECRET}"}
    assert (await rig.api.post("/ingest/chainhook", content=body, headers=good)).is_success
    assert await rig.differences() == []


def truncated_block(body: bytes) -> bytes:
    delivery = orjson.loads(body)
    delivery["event"]["apply"][0].pop("block_identifier")
    return orjson.dumps(delivery)


def bad_amount(body: bytes) -> bytes:
    return body.replace(b'"value":"', b'"value":"x', 1)


@CHAINHOOK
@pytest.mark.parametrize(
    "spoil",
    [lambda body: body[: len(body) // 2], lambda body: b"[]", truncated_block, bad_amount],
    ids=["cut JSON", "not an object", "block without its identifier", "amount not a number"],
)
async def test_a_malformed_chainhook_delivery_is_400_and_applies_nothing(
    rig: PushRig, spoil: Any
) -> None:
    before, height = await rig.stored(), cursor(rig)["height"]
    body = spoil(next_chainhook_body(rig))
    headers = {"authorization": f"Bearer {CHAINHOOK_SECRET}"}
    answer = await rig.api.post("/ingest/chainhook", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert cursor(rig)["height"] == height
    assert await rig.stored() == before


@OBSERVER
async def test_a_malformed_node_post_is_400_and_applies_nothing(rig: PushRig) -> None:
    before, height = await rig.stored(), cursor(rig)["height"]
    rig.anchored.producer.produce_one()
    rig.deliverer.position = len(rig.chain.journal)
    block = observer_payloads.new_block(rig.chain, rig.chain.tip)
    del block["index_block_hash"]
    answer = await rig.api.post("/new_block", content=orjson.dumps(block))
    assert answer.status_code == 400, answer.text
    assert cursor(rig)["height"] == height
    assert await rig.stored() == before


async def test_node_posts_from_a_host_not_allowed_are_403_and_apply_nothing(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    only_elsewhere = {"observer_hosts": ["10.20.30.40"]}
    async with push_rig_on(fake_chain, fake_chain_server, "observer", ingest=only_elsewhere) as rig:
        before = await rig.stored()
        rig.anchored.producer.produce_one()
        block = observer_payloads.new_block(rig.chain, rig.chain.tip)
        answer = await rig.api.post("/new_block", content=orjson.dumps(block))
        assert answer.status_code == 403
        assert answer.json()["message"].startswith("127.0.0.1 may not post")
        assert await rig.stored() == before


# --- the mempool ----------------------------------------------------------------------


@OBSERVER
async def test_mempool_amounts_show_as_pending_apart_from_the_balance(rig: PushRig) -> None:
    sender, recipient = rig.anchored.producer.hot_wallets[0], POPULATION[1]
    confirmed = rig.chain.balance("stx", recipient)
    with rig.chain.pending():
        rig.chain.transfer("stx", sender, recipient, 777, fee=33)
    await rig.deliverer.deliver_pending()
    answer = await served(rig, recipient)
    assert answer["balance"] == str(confirmed)  # the confirmed balance never includes it
    assert answer["pending"] == {"inbound": "777", "outbound": "0"}
    # mined: the amount moves into the balance and is no longer pending
    rig.chain.mine_block()
    await rig.deliverer.deliver_pending()
    answer = await served(rig, recipient)
    assert answer["balance"] == str(confirmed + 777)
    assert answer["pending"] is None


@OBSERVER
async def test_a_dropped_mempool_transaction_is_no_longer_pending(rig: PushRig) -> None:
    sender, recipient = rig.anchored.producer.hot_wallets[1], POPULATION[2]
    with rig.chain.pending():
        rig.chain.transfer("stx", sender, recipient, 500, fee=20)
    await rig.deliverer.deliver_pending()
    assert (await served(rig, recipient))["pending"] == {"inbound": "500", "outbound": "0"}
    rig.chain.drop_pending([entry.intent.tx_id for entry in rig.chain.mempool])
    await rig.deliverer.deliver_pending()
    assert (await served(rig, recipient))["pending"] is None


@CHAINHOOK
async def test_deliveries_to_a_service_not_ingesting_that_source_are_503(
    rig: PushRig,
) -> None:
    answer = await rig.api.post("/new_block", content=b"{}")
    assert answer.status_code == 503
    assert "BALANCES_INGEST__SOURCE=observer" in answer.json()["message"]


@CHAINHOOK
async def test_the_sender_gives_up_on_a_refused_delivery_and_nothing_is_applied(
    rig: PushRig,
) -> None:
    assert isinstance(rig.deliverer, ChainhookDeliverer)
    rig.deliverer.secret = "rotated"
    before = await rig.stored()
    rig.anchored.producer.produce_one()
    with pytest.raises(DeliveryFailedError, match="failed 3 times"):
        await rig.deliverer.deliver_pending()
    assert await rig.stored() == before
