"""The refresh plan (pure) and its executor on an in-memory ChainReader."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from balances.chain.models import Block, ChainTip, ContractInterface, TokenMetadata
from balances.chain.protocol import ChainReader
from balances.domain import STX, Principal, TokenId
from balances.errors import ChainUnavailableError, ContractCallError, InvalidTokenIdError
from balances.sync.plan import (
    PlanStep,
    TrackedToken,
    build_plan,
    execute_plan,
    execute_plans,
    native_reads,
)

HOLDER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"


def native(count: int) -> list[TrackedToken]:
    return [TrackedToken.native(f"{DEPLOYER}.token-{i}::t{i}") for i in range(count)]


def mapped(count: int) -> list[TrackedToken]:
    return [TrackedToken.map_based(f"{DEPLOYER}.credit-{i}-subnet-v1") for i in range(count)]


def test_plan_reads_stx_the_listing_and_one_call_per_map_token() -> None:
    plan = build_plan(HOLDER, [*native(450), *mapped(3)])
    kinds = [step.kind for step in plan.steps]
    assert kinds == ["stx", "ft-list", "call-read", "call-read", "call-read"]
    assert plan.request_count(held_native=450) == 1 + 3 + 3
    assert plan.naive_request_count() == 1 + 450 + 3


def test_request_count_by_holdings() -> None:
    plan = build_plan(HOLDER, native(2))
    assert plan.request_count(0) == 2  # an empty listing is still one request
    assert plan.request_count(200) == 2
    assert plan.request_count(201) == 3
    assert build_plan(HOLDER, [], include_stx=False).request_count(1000) == 0


def test_no_native_tokens_means_no_listing_unless_discovering() -> None:
    plan = build_plan(HOLDER, mapped(1))
    assert [step.kind for step in plan.steps] == ["stx", "call-read"]
    discover = build_plan(HOLDER, mapped(1), discover=True)
    assert [step.kind for step in discover.steps] == ["stx", "ft-list", "call-read"]


def test_stx_is_optional_and_tracking_it_turns_it_on() -> None:
    assert build_plan(HOLDER, native(1), include_stx=False).stx is False
    plan = build_plan(HOLDER, [TrackedToken(STX)], include_stx=False)
    assert plan.stx is True
    assert plan.steps == (PlanStep("stx", STX),)


def test_duplicates_collapse_and_asset_names_win() -> None:
    bare = TrackedToken.native(f"{DEPLOYER}.charisma-token")
    named = TrackedToken.native(f"{DEPLOYER}.charisma-token::charisma")
    plan = build_plan(HOLDER, [bare, named, bare])
    assert len(plan.native) == 1
    assert plan.native[0].asset_name == "charisma"


def test_a_token_cannot_be_both_kinds() -> None:
    token = f"{DEPLOYER}.charisma-token"
    with pytest.raises(InvalidTokenIdError, match="both"):
        build_plan(HOLDER, [TrackedToken.native(token), TrackedToken.map_based(token)])


def test_plan_validates_the_address_and_tokens() -> None:
    with pytest.raises(ValueError, match="address"):
        build_plan("SPnope", [])
    with pytest.raises(InvalidTokenIdError):
        TrackedToken.native("not a token")
    assert build_plan(HOLDER.lower().replace("s", "S", 1), []).principal == Principal.parse(HOLDER)


def test_native_reads_match_by_identifier_or_single_asset() -> None:
    listing = {
        f"{DEPLOYER}.a::a": 5,
        f"{DEPLOYER}.multi::x": 1,
        f"{DEPLOYER}.multi::y": 2,
    }
    tokens = [
        TokenId.parse(f"{DEPLOYER}.a"),  # contract id only, one asset: found
        TokenId.parse(f"{DEPLOYER}.multi::y"),  # exact
        TokenId.parse(f"{DEPLOYER}.absent"),  # not held: a complete listing says 0
        TokenId.parse(f"{DEPLOYER}.multi"),  # ambiguous
    ]
    reads = native_reads(tokens, listing)
    assert [read.amount for read in reads] == [5, 2, 0, None]
    assert isinstance(reads[3].error, InvalidTokenIdError)


class MemoryReader:
    """A ChainReader over dicts; a value that is an exception is raised instead."""

    def __init__(
        self, stx: int | Exception, ft: dict[str, int] | Exception, maps: dict[str, int | Exception]
    ) -> None:
        self.stx, self.ft, self.maps = stx, ft, maps
        self.calls: list[str] = []

    async def get_stx_balance(self, principal: str | Principal) -> int:
        self.calls.append("stx")
        if isinstance(self.stx, Exception):
            raise self.stx
        return self.stx

    async def get_ft_balances(self, principal: str | Principal) -> dict[str, int]:
        self.calls.append("ft")
        if isinstance(self.ft, Exception):
            raise self.ft
        return dict(self.ft)

    async def get_ft_balance(self, principal: str | Principal, asset_identifier: str) -> int:
        raise AssertionError("a refresh never reads one native token at a time")

    async def get_map_token_balance(self, contract_id: str, principal: str | Principal) -> int:
        self.calls.append(contract_id)
        value = self.maps[contract_id]
        if isinstance(value, Exception):
            raise value
        return value

    async def get_token_metadata(self, contract_id: str, *, full: bool = True) -> TokenMetadata:
        raise AssertionError("metadata is not part of a refresh")

    async def get_contract_interface(self, contract_id: str) -> ContractInterface:
        raise AssertionError("interfaces are not part of a refresh")

    async def get_chain_tip(self) -> ChainTip:
        raise AssertionError

    async def get_block(self, height: int) -> Block:
        raise AssertionError

    async def get_block_at(self, moment: datetime | int | float | str) -> Block:
        raise AssertionError

    async def get_balance_at(
        self, principal: str | Principal, token: str, index_block_hash: str
    ) -> int:
        raise AssertionError


def test_the_memory_reader_satisfies_the_protocol() -> None:
    assert isinstance(MemoryReader(0, {}, {}), ChainReader)


async def test_execute_collects_values_per_token() -> None:
    tokens = [*native(3), *mapped(2)]
    listing = {str(t.token.asset_identifier): 10 + i for i, t in enumerate(tokens[:2])}
    maps: dict[str, int | Exception] = {str(t.token): 7 for t in tokens[3:]}
    reader = MemoryReader(99, listing, maps)
    result = await execute_plan(build_plan(HOLDER, tokens), reader)
    assert result.errors == {}
    assert result.values == {
        "stx": 99,
        f"{DEPLOYER}.token-0": 10,
        f"{DEPLOYER}.token-1": 11,
        f"{DEPLOYER}.token-2": 0,  # absent from the complete listing
        f"{DEPLOYER}.credit-0-subnet-v1": 7,
        f"{DEPLOYER}.credit-1-subnet-v1": 7,
    }
    assert result.held == listing
    assert sorted(reader.calls).count("ft") == 1


async def test_one_failing_map_token_keeps_the_others() -> None:
    tokens = mapped(3)
    boom = ContractCallError("get-balance answered (err u1)", cause="(err u1)")
    maps: dict[str, int | Exception] = {str(t.token): 5 for t in tokens}
    maps[str(tokens[1].token)] = boom
    result = await execute_plan(build_plan(HOLDER, tokens), MemoryReader(1, {}, maps))
    assert result.errors == {str(tokens[1].token): boom}
    assert result.values[str(tokens[0].token)] == 5
    assert result.values[str(tokens[2].token)] == 5
    assert result.reads[str(tokens[1].token)].amount is None  # unknown, not zero


async def test_a_failed_listing_makes_every_native_token_unknown() -> None:
    down = ChainUnavailableError("timed out")
    result = await execute_plan(build_plan(HOLDER, native(3)), MemoryReader(4, down, {}))
    assert result.values == {"stx": 4}
    assert set(result.errors) == {f"{DEPLOYER}.token-{i}" for i in range(3)}
    assert all(
        read.source == "ft-list" and not read.ok
        for read in result.reads.values()
        if read.token != STX
    )


async def test_programming_errors_are_not_swallowed() -> None:
    reader = MemoryReader(1, {}, {})
    reader.stx = TypeError("bug")  # type: ignore[assignment]
    with pytest.raises(TypeError):
        await execute_plan(build_plan(HOLDER, []), reader)


class SlowReader(MemoryReader):
    """Counts how many STX reads overlap."""

    def __init__(self) -> None:
        super().__init__(3, {}, {})
        self.active = self.peak = 0

    async def get_stx_balance(self, principal: str | Principal) -> int:
        self.active += 1
        self.peak = max(self.peak, self.active)
        for _ in range(3):
            await asyncio.sleep(0)
        self.active -= 1
        return 3


async def test_execute_plans_keeps_order_and_bounds_concurrency() -> None:
    plans = [build_plan(HOLDER, []) for _ in range(5)]
    reader = SlowReader()
    results = await execute_plans(plans, reader, concurrency=2)
    assert [r.values for r in results] == [{"stx": 3}] * 5
    assert reader.peak == 2
    with pytest.raises(ValueError, match="concurrency"):
        await execute_plans(plans, MemoryReader(3, {}, {}), concurrency=0)
