"""BalanceService reads against the Stacks API stand-in over loopback HTTP.

What an answer holds (amounts equal the ledger, metadata, freshness fields), which
balances the listing calls return, batches, token metadata and bad input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from service_helpers import (
    DEPLOYER,
    FT_V3,
    HOLDER,
    MAP_TOKEN,
    MAX_U128,
    NATIVE,
    OTHER,
    SPENT,
    STX_V3,
    WHALE,
    KeyLog,
    Kit,
    SharedServer,
    open_kit,
    shared_server,
)

from balances.errors import (
    BalanceNotFoundError,
    ContractNotFoundError,
    InvalidAddressError,
    InvalidTokenIdError,
    NotFoundError,
    ValidationError,
)
from balances.service.balances import BalanceService
from balances.service.views import BalanceRequest
from balances.stores.sharded.store import ShardedStore
from balances.testing import FakeChain, FakeChainServer, fake_address

ASSET = f"{NATIVE}::charisma"
BAD_CHECKSUM = HOLDER[:-1] + ("8" if HOLDER[-1] != "8" else "9")
TESTNET = fake_address("someone on testnet", "testnet")
NOBODY = fake_address("an address that never held anything")

#: One uvicorn for the module (see ``shared_server``); each test gets its own chain.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[SharedServer]:
    async with shared_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def fake_chain_server(fake_chain: FakeChain, server: SharedServer) -> FakeChainServer:
    """``fake_chain`` on loopback HTTP, as conftest.py serves it."""
    return server.plug(fake_chain)


@pytest_asyncio.fixture(loop_scope="module")
async def kit(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, fake_chain_server) as built:
        yield built


def _at(kit: Kit) -> datetime:
    return datetime.fromtimestamp(kit.clocks.wall.now, UTC)


# --- one balance -------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_id", "ledger_token", "shown", "decimals", "symbol"),
    [
        ("stx", "stx", "stx", 6, "STX"),
        (NATIVE, NATIVE, NATIVE, 8, "CHA"),
        (ASSET, NATIVE, NATIVE, 8, "CHA"),
        (MAP_TOKEN, MAP_TOKEN, MAP_TOKEN, 3, "sCHA"),
    ],
    ids=["stx", "native-contract-id", "native-asset-identifier", "map-configured"],
)
async def test_get_balance_matches_the_ledger_with_its_freshness(
    kit: Kit, token_id: str, ledger_token: str, shown: str, decimals: int, symbol: str
) -> None:
    svc = kit.service(map_tokens=[MAP_TOKEN])
    balance = await svc.get_balance(HOLDER, token_id)
    assert balance.amount == kit.chain.balance(ledger_token, HOLDER)
    assert balance.amount > 0
    assert balance.balance == str(balance.amount)
    assert balance.balance.isdigit()
    assert balance.address == HOLDER
    assert balance.token_id == shown
    # the answer does not wait on metadata: it follows in the background
    assert balance.metadata == ("known" if token_id == "stx" else "pending")
    await svc.metadata_settled()
    described = await svc.get_balance(HOLDER, token_id)
    assert (described.decimals, described.symbol, described.metadata) == (
        decimals,
        symbol,
        "known",
    )
    assert balance.updated_at == _at(kit)
    assert balance.block_height == kit.chain.tip_height
    assert balance.source == "chain"
    assert balance.stale is False
    assert balance.error is None


async def test_the_asset_name_is_learned_from_the_interface_not_the_contract_name(
    kit: Kit,
) -> None:
    """charisma-token defines ``charisma``: the balance is found under that asset."""
    svc = kit.service()
    balance = await svc.get_balance(HOLDER, NATIVE)
    assert balance.amount == 750 == kit.chain.balance(NATIVE, HOLDER)
    info = await svc.get_token(NATIVE)
    assert info.asset_name == "charisma"
    assert info.asset_identifier == ASSET


async def test_a_map_token_asked_for_is_discovered_and_read_with_call_read(kit: Kit) -> None:
    svc = kit.service()  # no configured map tokens: the interface says what it is
    balance = await svc.get_balance(HOLDER, MAP_TOKEN)
    assert balance.amount == kit.chain.balance(MAP_TOKEN, HOLDER) == 77
    assert balance.source == "chain"
    await svc.metadata_settled()
    described = await svc.get_balance(HOLDER, MAP_TOKEN)
    assert (described.decimals, described.symbol) == (3, "sCHA")
    assert balance.token_id == MAP_TOKEN
    assert kit.call_reads.balance_reads(MAP_TOKEN) == 1
    assert (await svc.get_token(MAP_TOKEN)).kind == "map"


async def test_a_map_token_balance_changes_are_seen_on_refresh(kit: Kit) -> None:
    svc = kit.service(map_tokens=[MAP_TOKEN])
    assert (await svc.get_balance(HOLDER, MAP_TOKEN)).amount == 77
    kit.chain.withdraw(MAP_TOKEN, HOLDER, 7)
    kit.chain.deposit(MAP_TOKEN, OTHER, 5)
    refreshed = await svc.refresh_balance(HOLDER, MAP_TOKEN)
    assert refreshed.amount == kit.chain.balance(MAP_TOKEN, HOLDER) == 70
    assert (await svc.get_balance(OTHER, MAP_TOKEN)).amount == 5


async def test_u128_amounts_are_exact_through_chain_and_store(kit: Kit) -> None:
    kit.chain.mint(WHALE, HOLDER, MAX_U128)
    kit.chain.mint("stx", OTHER, 2**64 + 1)
    svc = kit.service()
    whale = await svc.get_balance(HOLDER, WHALE)
    assert whale.amount == MAX_U128
    assert whale.balance == str(MAX_U128)
    assert (await svc.get_balance(OTHER, "stx")).balance == str(2**64 + 1)
    reread = await kit.service(sync_on_read="never").get_balance(HOLDER, WHALE)
    assert (reread.amount, reread.source) == (MAX_U128, "store")


async def test_an_address_that_holds_nothing_reads_zero_because_the_chain_said_so(
    kit: Kit,
) -> None:
    svc = kit.service()
    stx = await svc.get_balance(NOBODY, "stx")
    native = await svc.get_balance(NOBODY, NATIVE)
    assert (stx.amount, stx.source, stx.stale) == (0, "chain", False)
    assert (native.amount, native.block_height) == (0, kit.chain.tip_height)


async def test_an_unknown_contract_is_not_found_not_zero(kit: Kit) -> None:
    svc = kit.service()
    with pytest.raises(ContractNotFoundError) as caught:
        await svc.get_balance(HOLDER, f"{DEPLOYER}.no-such-token")
    assert isinstance(caught.value, NotFoundError)
    assert "no-such-token" in str(caught.value)


# --- many balances -----------------------------------------------------------


async def test_get_all_balances_lists_only_non_zero_balances(kit: Kit) -> None:
    kit.chain.transfer("stx", HOLDER, OTHER, 1)  # OTHER: STX and charisma only
    svc = kit.service(map_tokens=[MAP_TOKEN])
    held = {b.token_id: b.amount for b in await svc.get_all_balances(HOLDER)}
    assert held == {
        "stx": kit.chain.balance("stx", HOLDER),
        NATIVE: 750,
        SPENT: 10,
        MAP_TOKEN: 77,
    }
    empty = await svc.get_all_balances(NOBODY)
    assert empty == []
    assert [b.token_id for b in await svc.get_balances(NOBODY)] == ["stx", MAP_TOKEN]
    assert all(b.amount == 0 for b in await svc.get_balances(NOBODY))


async def test_a_token_sent_away_reads_zero_after_a_refresh(kit: Kit) -> None:
    svc = kit.service()
    before = {b.token_id: b.amount for b in await svc.get_balances(HOLDER)}
    assert before[SPENT] == 10
    kit.chain.transfer(SPENT, HOLDER, OTHER, 10)
    kit.clocks.advance(mono=1, wall=1)
    await svc.refresh_address_balances(HOLDER)
    after = {b.token_id: b for b in await svc.get_balances(HOLDER)}
    assert after[SPENT].amount == 0 == kit.chain.balance(SPENT, HOLDER)
    assert after[SPENT].updated_at == _at(kit)
    assert SPENT not in {b.token_id for b in await svc.get_all_balances(HOLDER)}
    # The zero was read (absent from a complete listing), so it is stored too.
    stored = await kit.service(sync_on_read="never").get_balances(HOLDER)
    assert {b.token_id: b.amount for b in stored}[SPENT] == 0


async def test_get_balances_with_token_ids_keeps_the_order_asked(kit: Kit) -> None:
    svc = kit.service()
    order = [MAP_TOKEN, "stx", SPENT, ASSET, NATIVE]
    balances = await svc.get_balances(HOLDER, order)
    assert [b.token_id for b in balances] == [MAP_TOKEN, "stx", SPENT, NATIVE, NATIVE]
    assert [b.amount for b in balances] == [
        77,
        kit.chain.balance("stx", HOLDER),
        10,
        750,
        750,
    ]


async def test_get_balances_without_token_ids_starts_with_stx(kit: Kit) -> None:
    svc = kit.service(map_tokens=[MAP_TOKEN])
    balances = await svc.get_balances(HOLDER)
    assert balances[0].token_id == "stx"
    assert {b.token_id for b in balances} == {"stx", NATIVE, SPENT, MAP_TOKEN}
    for balance in balances:
        ledger = "stx" if balance.token_id == "stx" else balance.token_id
        assert balance.amount == kit.chain.balance(ledger, HOLDER)


# --- batches -------------------------------------------------------------------


async def test_a_batch_answers_in_input_order_and_bad_items_fail_alone(kit: Kit) -> None:
    svc = kit.service()
    requests: list[object] = [
        (HOLDER, "stx"),
        (BAD_CHECKSUM, "stx"),
        {"address": OTHER, "token_id": NATIVE},
        ("garbage", "stx"),
        (HOLDER, f"{HOLDER}"),  # an address, not a contract id
        BalanceRequest(HOLDER, ASSET),
        (TESTNET, "stx"),
        {"address": HOLDER, "tokenId": SPENT},
        ("sp2j6zy48gv1ez5v2v5rb9mp66sw86pykknrv9ej7", "stx"),
        (OTHER, "stx"),
    ]
    items = await svc.get_balances_batch(requests)  # type: ignore[arg-type]
    assert len(items) == len(requests)
    ok = {i: item.balance for i, item in enumerate(items) if item.balance is not None}
    assert sorted(ok) == [0, 2, 5, 7, 9]
    assert all(items[i].error is None for i in ok)
    answers = {i: (b.address, b.token_id, b.amount) for i, b in ok.items() if b is not None}
    assert answers == {
        0: (HOLDER, "stx", kit.chain.balance("stx", HOLDER)),
        2: (OTHER, NATIVE, 250),
        5: (HOLDER, NATIVE, 750),
        7: (HOLDER, SPENT, 10),
        9: (OTHER, "stx", 0),
    }
    errors = {i: items[i].error for i in range(len(items)) if i not in ok}
    assert isinstance(errors[1], InvalidAddressError)
    assert "checksum" in str(errors[1])
    assert isinstance(errors[3], InvalidAddressError)
    assert isinstance(errors[4], InvalidTokenIdError)
    assert isinstance(errors[6], InvalidAddressError)
    assert "testnet" in str(errors[6])
    assert isinstance(errors[8], InvalidAddressError)
    assert items[1].address == BAD_CHECKSUM
    assert items[6].address == TESTNET


async def test_a_batch_item_for_an_unknown_contract_fails_alone(kit: Kit) -> None:
    svc = kit.service()
    items = await svc.get_balances_batch(
        [(HOLDER, f"{DEPLOYER}.no-such-token"), (HOLDER, "stx"), (HOLDER, NATIVE)]
    )
    assert isinstance(items[0].error, ContractNotFoundError)
    assert items[0].balance is None
    assert [item.balance.amount for item in items[1:] if item.balance] == [
        kit.chain.balance("stx", HOLDER),
        750,
    ]


@pytest.mark.parametrize("layout", ["spec", "sharded"])
async def test_a_batch_reads_each_distinct_address_once_from_the_store(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, layout: str
) -> None:
    store = KeyLog()
    async with open_kit(fake_chain, fake_chain_server, store=store) as kit:
        warm = kit.service(map_tokens=[MAP_TOKEN], layout=layout)
        await warm.refresh_address_balances(HOLDER)
        await warm.refresh_address_balances(OTHER)
        await warm.get_token(NATIVE)
        await warm.get_token(SPENT)
        await warm.close()
        kit.reset()
        store.gets.clear()
        svc = kit.service(map_tokens=[MAP_TOKEN], layout=layout)
        requests = [
            (HOLDER, "stx"),
            (OTHER, NATIVE),
            (HOLDER, NATIVE),
            (HOLDER, MAP_TOKEN),
            (OTHER, "stx"),
            (HOLDER, SPENT),
            (HOLDER, ASSET),
        ]
        items = await svc.get_balances_batch(requests)
        assert [item.error for item in items] == [None] * len(requests)
        assert all(item.balance and item.balance.source == "store" for item in items)
        assert sorted(store.gets_under(_current_prefix(layout))) == _current_keys(
            svc, layout, [HOLDER, OTHER]
        )
        journal = store.gets_under("v1/journal/")
        assert len(journal) == len(set(journal)), "each journal segment is read once"
        assert kit.balance_requests() == {}
        snapshot = svc.blobs.snapshot()
        assert snapshot.operations["put"] == 0
        # A second batch is served by the cache: no store reads of balances at all.
        store.gets.clear()
        again = await svc.get_balances_batch(requests)
        assert all(item.balance and item.balance.source == "cache" for item in again)
        assert store.gets_under(_current_prefix(layout)) == []


def _current_prefix(layout: str) -> str:
    return "spec/current/" if layout == "spec" else "v1/current/"


def _current_keys(svc: BalanceService, layout: str, addresses: list[str]) -> list[str]:
    """The blobs holding these addresses' current balances, each read once."""
    if layout == "spec":
        return sorted(f"spec/current/{address}" for address in addresses)
    assert isinstance(svc.layout, ShardedStore)
    return sorted({svc.layout.current_key(svc.layout.shard(address)) for address in addresses})


async def test_a_batch_over_the_limit_is_refused(kit: Kit) -> None:
    svc = kit.service(api={"max_batch": 3})
    assert len(await svc.get_balances_batch([(HOLDER, "stx")] * 3)) == 3
    kit.reset()
    with pytest.raises(ValidationError, match="at most 3"):
        await svc.get_balances_batch([(HOLDER, "stx")] * 4)
    assert kit.chain.requests == {}


async def test_an_empty_batch_is_an_empty_answer(kit: Kit) -> None:
    assert await kit.service().get_balances_batch([]) == []


# --- token metadata ------------------------------------------------------------


async def test_get_token_describes_native_and_map_tokens(kit: Kit) -> None:
    svc = kit.service()
    native = await svc.get_token(ASSET)
    assert (native.token_id, native.kind, native.asset_name) == (NATIVE, "native", "charisma")
    assert (native.decimals, native.symbol, native.name) == (8, "CHA", "Charisma")
    mapped = await svc.get_token(MAP_TOKEN)
    assert (mapped.kind, mapped.asset_name, mapped.decimals, mapped.symbol) == (
        "map",
        None,
        3,
        "sCHA",
    )
    stx = await svc.get_token("stx")
    assert (stx.kind, stx.decimals, stx.symbol) == ("stx", 6, "STX")


async def test_token_metadata_is_read_once_and_persisted(kit: Kit) -> None:
    svc = kit.service()
    first = await svc.get_token(NATIVE)
    assert kit.chain.requests, "the first read asks the chain"
    kit.reset()
    assert await svc.get_token(NATIVE) == first
    assert kit.chain.requests == {}
    await svc.close()
    fresh = kit.service()
    assert await fresh.get_token(NATIVE) == first
    assert kit.chain.requests == {}


async def test_metadata_is_not_read_again_after_a_listing_refresh(kit: Kit) -> None:
    """Once per token: a refresh whose listing names a token already described must
    not send its SIP-010 getters again (get-decimals, get-symbol, ...)."""
    svc = kit.service()
    for token in (NATIVE, SPENT):
        await svc.get_token(token)
    kit.reset()
    for _ in range(2):
        kit.clocks.advance(mono=1, wall=1)
        await svc.refresh_address_balances(HOLDER)
    getters = {call: n for call, n in kit.call_reads.calls.items() if call[1] != "get-balance"}
    assert getters == {}
    assert kit.balance_requests() == {STX_V3: 2, FT_V3: 2}


async def test_a_balance_read_uses_the_stored_metadata(kit: Kit) -> None:
    await kit.service().get_token(MAP_TOKEN)
    kit.reset()
    svc = kit.service()
    balance = await svc.get_balance(HOLDER, MAP_TOKEN)
    assert (balance.decimals, balance.symbol) == (3, "sCHA")
    # Only the balance itself: no interface read, no SIP-010 getters.
    assert kit.call_reads.calls == {(MAP_TOKEN, "get-balance"): 1}
    assert "GET /v2/contracts/interface/{deployer_address}/{contract_name}" not in (
        kit.chain.requests
    )


async def test_an_unknown_contract_has_no_token_info(kit: Kit) -> None:
    svc = kit.service()
    with pytest.raises(ContractNotFoundError) as caught:
        await svc.get_token(f"{DEPLOYER}.no-such-token")
    assert isinstance(caught.value, NotFoundError)


# --- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "token_id", "error", "mentions"),
    [
        (BAD_CHECKSUM, "stx", InvalidAddressError, "checksum"),
        ("garbage", "stx", InvalidAddressError, "garbage"),
        (TESTNET, "stx", InvalidAddressError, "testnet"),
        (HOLDER, "not-a-token", InvalidTokenIdError, "not-a-token"),
        (HOLDER, f"{DEPLOYER}.", InvalidTokenIdError, "contract"),
        (HOLDER, f"{NATIVE}::", InvalidTokenIdError, "asset name"),
        (HOLDER, f"{DEPLOYER}.1bad", InvalidTokenIdError, "1bad"),
        (HOLDER, f"{TESTNET}.token", InvalidAddressError, "testnet"),
    ],
    ids=[
        "bad-checksum",
        "garbage",
        "testnet-address",
        "no-contract",
        "empty-contract-name",
        "empty-asset-name",
        "bad-contract-name",
        "testnet-contract",
    ],
)
async def test_bad_input_is_a_validation_error_naming_the_problem(
    kit: Kit, address: str, token_id: str, error: type[ValidationError], mentions: str
) -> None:
    svc = kit.service()
    with pytest.raises(error) as caught:
        await svc.get_balance(address, token_id)
    assert isinstance(caught.value, ValidationError)
    assert mentions in str(caught.value)
    assert kit.chain.requests == {}


async def test_bad_input_is_refused_by_every_entry_point(kit: Kit) -> None:
    svc = kit.service()
    with pytest.raises(InvalidAddressError):
        await svc.get_balances(BAD_CHECKSUM)
    with pytest.raises(InvalidAddressError):
        await svc.get_all_balances(TESTNET)
    with pytest.raises(InvalidTokenIdError):
        await svc.get_balances(HOLDER, ["stx", "nope"])
    with pytest.raises(InvalidAddressError):
        await svc.refresh_address_balances(BAD_CHECKSUM)
    with pytest.raises(InvalidAddressError):
        await svc.sync_on_demand(TESTNET)
    with pytest.raises(ValidationError, match="max_age"):
        await svc.sync_on_demand(HOLDER, max_age=-1)
    with pytest.raises(InvalidAddressError):
        await svc.track(BAD_CHECKSUM)
    with pytest.raises(InvalidTokenIdError):
        await svc.get_token("SP.nope")
    assert kit.chain.requests == {}
    assert await svc.tracked_addresses() == []


async def test_never_read_is_not_found_even_for_a_known_address(kit: Kit) -> None:
    """A map token that no refresh read is unknown, not zero, when the store is
    the only source."""
    await kit.service().refresh_address_balances(HOLDER)
    svc = kit.service(sync_on_read="never")
    assert (await svc.get_balance(HOLDER, "stx")).source == "store"
    with pytest.raises(BalanceNotFoundError):
        await svc.get_balance(HOLDER, MAP_TOKEN)
