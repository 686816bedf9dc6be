"""StacksClient against the Stacks API stand-in over loopback HTTP: the read paths."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from conftest_client import (
    ASSET,
    DEPLOYER,
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    OTHER,
    seed_charisma,
    stacks_client,
)

from balances.chain.clarity import ResponseOk, StandardPrincipal, UInt
from balances.chain.models import TokenKind
from balances.errors import (
    ContractCallError,
    ContractNotFoundError,
    EndpointGoneError,
    InvalidAddressError,
    InvalidTokenIdError,
    TokenNotFoundError,
)
from balances.testing import FakeChain, FakeChainServer

STX_V3 = "GET /extended/v3/principals/{principal}/balances/stx"
STX_V2 = "GET /extended/v2/addresses/{principal}/balances/stx"
FT_V3 = "GET /extended/v3/principals/{principal}/balances/ft"
FT_V2 = "GET /extended/v2/addresses/{principal}/balances/ft"


async def test_balances_match_the_ledger(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    async with stacks_client(fake_chain_server) as client:
        assert (
            await client.get_stx_balance(HOLDER) == fake_chain.balance("stx", HOLDER) == 5_000_000
        )
        assert await client.get_ft_balances(HOLDER) == {ASSET: 750}
        assert await client.get_ft_balances(OTHER) == {ASSET: 250}
        assert await client.get_ft_balance(HOLDER, ASSET) == 750
        assert await client.get_map_token_balance(MAP_TOKEN, HOLDER) == 77
        fake_chain.transfer("stx", HOLDER, OTHER, 1_000_000)
        fake_chain.withdraw(MAP_TOKEN, HOLDER, 7)
        assert await client.get_stx_balance(HOLDER) == 4_000_000
        assert await client.get_map_token_balance(MAP_TOKEN, HOLDER) == 70


async def test_a_fresh_address_reads_zero_because_the_api_says_so(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fresh = "SP000000000000000000002Q6VF78"
    async with stacks_client(fake_chain_server) as client:
        assert await client.get_stx_balance(fresh) == 0
        assert await client.get_ft_balances(fresh) == {}
        assert await client.get_ft_balance(fresh, ASSET) == 0
        assert await client.get_map_token_balance(MAP_TOKEN, fresh) == 0


async def test_many_native_tokens_are_read_in_pages_of_200(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    ids = fake_chain.add_native_tokens(450, prefix="tok")
    for index, contract_id in enumerate(ids):
        fake_chain.mint(contract_id, HOLDER, 1 + index % 7)  # many equal balances: cursor ties
    fake_chain.reset_requests()
    async with stacks_client(fake_chain_server) as client:
        balances = await client.get_ft_balances(HOLDER)
    assert len(balances) == 450
    for index, contract_id in enumerate(ids):
        assert balances[f"{contract_id}::tok{index}"] == 1 + index % 7
    assert fake_chain.requests[FT_V3] == 3


async def test_v3_missing_falls_back_to_v2_and_remembers(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, caplog: pytest.LogCaptureFixture
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.v3_missing = True
    fake_chain.faults.deprecated = "warn"
    async with stacks_client(fake_chain_server) as client:
        with caplog.at_level(logging.WARNING, logger="balances.chain"):
            for _ in range(3):
                assert await client.get_stx_balance(HOLDER) == 5_000_000
                assert await client.get_ft_balances(HOLDER) == {ASSET: 750}
        assert client.api_versions == {"stx": "v2", "ft": "v2"}
        assert await client.get_ft_balance(HOLDER, ASSET) == 750
    assert fake_chain.requests[STX_V3] == 1
    assert fake_chain.requests[STX_V2] == 3
    assert fake_chain.requests[FT_V3] == 1
    assert fake_chain.requests[FT_V2] == 3
    warnings = [r.getMessage() for r in caplog.records if "Deprecated" in r.getMessage()]
    assert len(warnings) == 3  # once per route (stx, ft list, ft one), not per request
    assert len(set(warnings)) == 3


async def test_no_balance_api_left_is_an_error_not_zero(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.v3_missing = True
    fake_chain.faults.deprecated = "gone"
    async with stacks_client(fake_chain_server) as client:
        with pytest.raises(EndpointGoneError, match="410"):
            await client.get_stx_balance(HOLDER)
        with pytest.raises(EndpointGoneError):
            await client.get_ft_balances(HOLDER)


async def test_deprecated_routes_gone_do_not_matter_while_v3_works(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.deprecated = "gone"
    async with stacks_client(fake_chain_server) as client:
        assert await client.get_stx_balance(HOLDER) == 5_000_000
        assert client.api_versions == {"stx": "v3"}


async def test_contract_reads(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> None:
    seed_charisma(fake_chain)
    async with stacks_client(fake_chain_server) as client:
        holder = StandardPrincipal.from_address(HOLDER)
        result = await client.call_read(NATIVE, "get-balance", [holder], sender=OTHER)
        assert result == ResponseOk(UInt(750))
        meta = await client.get_token_metadata(NATIVE)
        assert (meta.decimals, meta.symbol, meta.name) == (6, "CHA", "Charisma")
        assert meta.total_supply == 1_000
        native = await client.get_contract_interface(NATIVE)
        assert (native.kind, native.asset_identifier) == (TokenKind.NATIVE, ASSET)
        mapped = await client.get_contract_interface(MAP_TOKEN)
        assert (mapped.kind, mapped.asset_name) == (TokenKind.MAP, None)
        assert (await client.get_token_metadata(MAP_TOKEN)).symbol == "sCHA"


async def test_contract_failures(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> None:
    seed_charisma(fake_chain)
    missing = f"{DEPLOYER}.no-such-token"
    async with stacks_client(fake_chain_server) as client:
        with pytest.raises(ContractNotFoundError, match="no-such-token"):
            await client.get_map_token_balance(missing, HOLDER)
        with pytest.raises(ContractNotFoundError):
            await client.get_contract_interface(missing)
        with pytest.raises(ContractNotFoundError):
            await client.get_token_metadata(missing)
        with pytest.raises(ContractCallError) as caught:
            await client.call_read(NATIVE, "get-nothing")
        assert "UndefinedFunction" in (caught.value.cause or "")
        with pytest.raises(ContractCallError) as caught:
            await client.call_read(NATIVE, "get-balance", [])  # wrong argument count
        assert caught.value.cause


async def test_bad_input_never_reaches_the_api(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.reset_requests()
    async with stacks_client(fake_chain_server) as client:
        with pytest.raises(InvalidAddressError, match="checksum"):
            await client.get_stx_balance(HOLDER[:-1] + "8")
        with pytest.raises(InvalidAddressError):
            await client.get_map_token_balance(MAP_TOKEN, "SP-not-an-address")
        with pytest.raises(InvalidAddressError, match="not a contract id"):
            await client.get_token_metadata(DEPLOYER)
        with pytest.raises(InvalidTokenIdError, match="asset name"):
            await client.get_ft_balance(HOLDER, NATIVE)
    assert sum(fake_chain.requests.values()) == 0


async def test_blocks(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> None:
    fake_chain.advance_blocks(5)
    async with stacks_client(fake_chain_server) as client:
        tip = await client.get_chain_tip()
        assert (tip.height, tip.hash) == (fake_chain.tip.height, fake_chain.tip.hash)
        assert tip.time == datetime.fromtimestamp(fake_chain.tip_time, UTC)
        earlier = await client.get_block_at(fake_chain.tip_time - 25)
        assert earlier.height == fake_chain.tip_height - 3
        fake_chain.advance_blocks(2)
        assert (await client.get_chain_tip()).height == tip.height + 2


async def test_api_key_is_sent(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> None:
    async with stacks_client(fake_chain_server, api_key="hiro-key") as client:
        await client.get_stx_balance(HOLDER)
        await client.get_chain_tip()
    assert fake_chain.api_keys == {"hiro-key": 2}


async def test_etags_turn_unchanged_reads_into_304s(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    async with stacks_client(fake_chain_server, hooks=[record]) as client:
        assert await client.get_ft_balances(HOLDER) == {ASSET: 750}
        assert await client.get_stx_balance(HOLDER) == 5_000_000
        assert await client.get_ft_balances(HOLDER) == {ASSET: 750}
        assert await client.get_stx_balance(HOLDER) == 5_000_000
        assert statuses == [200, 200, 304, 304]
        fake_chain.transfer(NATIVE, HOLDER, OTHER, 50)  # the principal's state changes
        assert await client.get_ft_balances(HOLDER) == {ASSET: 700}
        assert statuses[-1] == 200


async def test_a_token_is_not_a_contract_without_balances(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    # The stand-in only deploys tokens, so a non-token contract is simply unknown to it;
    # the "neither fungible token nor get-balance" case is covered by the unit tests.
    async with stacks_client(fake_chain_server) as client:
        with pytest.raises((ContractNotFoundError, TokenNotFoundError)):
            await client.get_contract_interface(f"{DEPLOYER}.pox-helper")
