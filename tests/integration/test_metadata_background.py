"""A first read is fast: amounts come back after the refresh plan's requests, token
metadata follows in the background (the Token Metadata API's list route or one
request per token, SIP-010 getters for tokens it does not know), stored once for
every address. Failures leave amounts right and metadata said unknown, asked again
after a backoff. Requests are counted at the stand-in, served over loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest_client import MAP_TOKEN, stacks_client
from ingest_rig import serve_api
from service_helpers import Kit, open_kit, seed
from threaded_stand_in import ThreadedStandIn
from typer.testing import CliRunner

from balances.chain.token_metadata import FT_METADATA, FT_METADATA_LIST
from balances.cli import app
from balances.domain import Balance
from balances.testing import FakeChain, FakeChainServer, fake_address

RICH = fake_address("metadata-rich-holder")
SECOND = fake_address("metadata-second-holder")
DEPLOYER = fake_address("metadata-deployer")
runner = CliRunner()


@pytest.fixture
async def kit(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, fake_chain_server) as built:
        yield built


def hold_tokens(chain: FakeChain, count: int, holder: str = RICH) -> list[str]:
    """``count`` native tokens (decimals 0..8 in turn), each held by ``holder``."""
    tokens = []
    for index in range(count):
        contract = f"{DEPLOYER}.meta-token-{index}"
        chain.add_native_token(contract, f"meta{index}", decimals=index % 9, symbol=f"M{index}")
        chain.mint(contract, holder, 1_000 + index)
        tokens.append(contract)
    chain.deposit(MAP_TOKEN, holder, 55)
    return tokens


def metadata_requests(kit: Kit) -> dict[str, int]:
    getters = sum(n for (_, name), n in kit.call_reads.calls.items() if name != "get-balance")
    counts = {r: n for r, n in kit.chain.requests.items() if r in (FT_METADATA, FT_METADATA_LIST)}
    return {**counts, "sip010 getters": getters} if getters else counts


def by_token(balances: list[Balance]) -> dict[str, Balance]:
    return {b.token_id.split("::")[0]: b for b in balances}


async def test_a_cold_read_of_250_tokens_answers_after_the_refresh_plan_alone(kit: Kit) -> None:
    tokens = hold_tokens(kit.chain, 250)
    svc = kit.service(map_tokens=[MAP_TOKEN])
    kit.reset()
    answer = by_token(await svc.refresh_address_balances(RICH))
    before_answer = sum(kit.chain.requests.values())
    assert before_answer <= 6, kit.chain.requests
    assert metadata_requests(kit) == {}  # nothing of it before the answer
    for index, token in enumerate(tokens):
        assert answer[token].amount == 1_000 + index  # exact amounts, at once
        assert answer[token].decimals is None
        assert answer[token].metadata == "pending"
    assert answer[MAP_TOKEN].amount == 55

    await svc.metadata_settled()
    # the stand-in lists about 250 tokens: the list route pages them in a few requests
    spent = metadata_requests(kit)
    assert spent.get(FT_METADATA_LIST, 0) <= 25  # a tenth of one request per token
    assert FT_METADATA not in spent
    later = by_token(await svc.get_all_balances(RICH))
    for index, token in enumerate(tokens):
        assert (later[token].decimals, later[token].symbol) == (index % 9, f"M{index}")
        assert later[token].metadata == "known"


async def test_metadata_is_stored_once_for_every_address_and_replica(kit: Kit) -> None:
    tokens = hold_tokens(kit.chain, 5)
    for token in tokens:
        kit.chain.mint(token, SECOND, 7)
    svc = kit.service()
    await svc.refresh_address_balances(RICH)
    await svc.metadata_settled()
    assert metadata_requests(kit) == {FT_METADATA: 5}  # few tokens: one request each
    kit.reset()
    other = kit.service()  # another replica on the same store
    answer = by_token(await other.refresh_address_balances(SECOND))
    await other.metadata_settled()
    assert metadata_requests(kit) == {}
    assert all(answer[token].metadata == "known" for token in tokens)


async def test_a_token_the_metadata_api_does_not_know_is_read_from_its_contract(
    kit: Kit,
) -> None:
    [token] = hold_tokens(kit.chain, 1)
    kit.chain.metadata_unknown.add(token)
    svc = kit.service()
    await svc.refresh_address_balances(RICH)
    await svc.metadata_settled()
    getters = {name for (contract, name) in kit.call_reads.calls if contract == token}
    assert getters == {"get-decimals", "get-symbol"}
    answer = await svc.get_balance(RICH, token)
    assert (answer.decimals, answer.symbol, answer.metadata) == (0, "M0", "known")


async def test_a_token_listed_without_decimals_is_asked_for_on_its_own(kit: Kit) -> None:
    tokens = hold_tokens(kit.chain, 30)
    kit.chain.metadata_undecided.add(tokens[3])
    svc = kit.service()
    await svc.refresh_address_balances(RICH)
    await svc.metadata_settled()
    answer = await svc.get_balance(RICH, tokens[3])
    assert (answer.decimals, answer.metadata) == (3, "known")
    assert (tokens[3], "get-decimals") in kit.call_reads.calls


@pytest.mark.parametrize("fault", ["404", "5xx", "timeout"])
async def test_metadata_failures_leave_amounts_right_and_are_retried_later(
    kit: Kit, fault: str, fake_chain_server: FakeChainServer
) -> None:
    tokens = hold_tokens(kit.chain, 3)
    faults = kit.chain.faults
    faults.routes = ("/metadata", "/v2/contracts/call-read")
    if fault == "404":  # the API does not know them, nor do their contracts answer
        kit.chain.metadata_unknown.update(tokens)
        faults.error_rate, faults.error_statuses = 1.0, (500,)
    elif fault == "5xx":
        faults.error_rate = 1.0
    else:
        faults.latency = 1.0
    async with stacks_client(fake_chain_server, timeout=0.2) as client:
        svc = kit.service(client=client)
        answer = by_token(await svc.refresh_address_balances(RICH))
        await svc.metadata_settled()
        again = by_token(await svc.get_all_balances(RICH))
        for index, token in enumerate(tokens):
            assert answer[token].amount == again[token].amount == 1_000 + index
            assert again[token].decimals is None
            assert again[token].metadata == "unknown"
        # within the backoff: no new attempt
        kit.reset()
        await svc.get_all_balances(RICH)
        await svc.metadata_settled()
        assert metadata_requests(kit) == {}
        # the fault is gone and the backoff over: the next read asks again
        faults.error_rate, faults.latency = 0.0, 0.0
        kit.chain.metadata_unknown.clear()
        kit.clocks.advance(mono=301, wall=301)
        assert by_token(await svc.get_all_balances(RICH))[tokens[0]].metadata == "pending"
        await svc.metadata_settled()
        healed = by_token(await svc.get_all_balances(RICH))
        assert [healed[t].decimals for t in tokens] == [0, 1, 2]


async def test_rest_answers_say_metadata_pending_then_known(kit: Kit) -> None:
    [token] = hold_tokens(kit.chain, 1)
    svc = kit.service()
    async with serve_api(svc) as api:
        first = (await api.get(f"/balances/{RICH}/{token}")).json()
        assert first["balance"] == "1000"
        assert (first["decimals"], first["metadata"]) == (None, "pending")
        await svc.metadata_settled()
        later = (await api.get(f"/balances/{RICH}/{token}")).json()
        assert (later["decimals"], later["symbol"], later["metadata"]) == (0, "M0", "known")


async def test_tokens_sync_seeds_the_registry_in_pages(kit: Kit) -> None:
    tokens = hold_tokens(kit.chain, 130)
    kit.chain.metadata_undecided.add(tokens[7])
    svc = kit.service()
    kit.reset()
    report = await svc.sync_token_metadata()
    listed = len(kit.chain.tokens)
    assert report.total == listed
    assert report.pages == kit.chain.requests[FT_METADATA_LIST] == -(-listed // 60)
    assert (report.stored, report.undecided) == (listed - 1, 1)
    kit.reset()
    fresh = kit.service()  # a new deployment on the seeded store starts warm
    answer = by_token(await fresh.refresh_address_balances(RICH))
    assert answer[tokens[0]].metadata == "known"
    assert answer[tokens[7]].metadata == "pending"
    assert metadata_requests(kit) == {}


def test_cli_tokens_sync_then_balance_shows_decimals_without_metadata_requests(
    tmp_path: Path,
) -> None:
    chain = FakeChain()
    seed(chain)  # the kit's tokens, the map token among them
    tokens = hold_tokens(chain, 70)
    with ThreadedStandIn(chain) as stand_in:
        where = ["--store", f"file://{tmp_path / 'store'}", "--chain-url", stand_in.url]
        seeded = runner.invoke(app, ["tokens", "sync", "--json", *where])
        assert seeded.exit_code == 0, seeded.output
        listed = len(chain.tokens)
        assert json.loads(seeded.stdout) == {
            "pages": 2,
            "stored": listed,
            "undecided": 0,
            "total": listed,
        }
        chain.reset_requests()
        shown = runner.invoke(app, ["balance", RICH, "--json", *where])
        assert shown.exit_code == 0, shown.output
        rows = {row["token_id"].split("::")[0]: row for row in json.loads(shown.stdout)}
        assert (rows[tokens[5]]["decimals"], rows[tokens[5]]["metadata"]) == (5, "known")
        assert FT_METADATA not in chain.requests
        assert FT_METADATA_LIST not in chain.requests
        text = runner.invoke(app, ["tokens", "sync", *where])
        expected = f"stored the metadata of {listed} tokens of {listed} listed, in 2 requests"
        assert expected in text.stdout


async def test_metadata_is_read_again_only_after_30_days(kit: Kit) -> None:
    tokens = hold_tokens(kit.chain, 2)
    svc = kit.service()
    await svc.refresh_address_balances(RICH)
    await svc.metadata_settled()
    kit.reset()
    kit.clocks.advance(mono=29 * 86_400, wall=29 * 86_400)
    await svc.refresh_address_balances(RICH)
    await svc.metadata_settled()
    assert metadata_requests(kit) == {}
    kit.clocks.advance(mono=2 * 86_400, wall=2 * 86_400)
    answer = by_token(await svc.refresh_address_balances(RICH))
    assert answer[tokens[1]].metadata == "known"  # the answer uses what is known
    await svc.metadata_settled()
    assert metadata_requests(kit) == {FT_METADATA: 2}  # read again in the background
    kit.reset()
    await svc.refresh_address_balances(RICH)
    await svc.metadata_settled()
    assert metadata_requests(kit) == {}
