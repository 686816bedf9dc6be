"""Contract routes of the stand-in over real HTTP: call-read and the contract interface."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from balances.chain.clarity import (
    NONE,
    ContractPrincipal,
    ResponseOk,
    Some,
    StringAscii,
    StringUtf8,
    UInt,
    deserialize,
    principal_from_text,
    to_hex,
)
from balances.testing import FakeChain, fake_address

ALICE = fake_address("alice")
BOB = fake_address("bob")
DEPLOYER = fake_address("deployer")
TOKEN = f"{DEPLOYER}.charisma-token"
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"
POOL = f"{DEPLOYER}.pool-v1"
URI = "https://example.com/token.json"


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain()
    chain.add_native_token(
        TOKEN, "charisma", decimals=6, symbol="CHA", name="Charisma", token_uri=URI
    )
    chain.add_map_token(CREDIT, decimals=6, symbol="cCHA", name="Charisma credit")
    chain.mint(TOKEN, ALICE, 123_456_789)
    chain.deposit(CREDIT, ALICE, 777)
    chain.deposit(CREDIT, POOL, 5)
    return chain


def _call_url(contract_id: str, function: str) -> str:
    address, name = contract_id.split(".")
    return f"/v2/contracts/call-read/{address}/{name}/{function}"


async def _call(
    client: httpx.AsyncClient, contract_id: str, function: str, *args: str, **extra: Any
) -> httpx.Response:
    body = {"sender": BOB, "arguments": list(args), **extra}
    return await client.post(_call_url(contract_id, function), json=body)


def _ok(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["okay"] is True, body
    result = deserialize(body["result"])
    assert isinstance(result, ResponseOk)
    return result.value


@pytest.mark.parametrize(
    ("contract_id", "holder", "expected"),
    [(TOKEN, ALICE, 123_456_789), (CREDIT, ALICE, 777), (CREDIT, POOL, 5), (CREDIT, BOB, 0)],
)
async def test_get_balance_for_native_and_map_tokens(
    fake_chain_client: httpx.AsyncClient, contract_id: str, holder: str, expected: int
) -> None:
    response = await _call(
        fake_chain_client, contract_id, "get-balance", to_hex(principal_from_text(holder))
    )
    assert _ok(response) == UInt(expected)


def test_get_balance_matches_the_node_worked_example(fake_chain: FakeChain) -> None:
    # PROTOCOLS.md section 2: (ok u123456789) is 0x0701 + 16 bytes.
    assert to_hex(ResponseOk(UInt(123_456_789))) == "0x0701000000000000000000000000075bcd15"
    assert fake_chain.balance(TOKEN, ALICE) == 123_456_789


async def test_metadata_functions(fake_chain_client: httpx.AsyncClient) -> None:
    assert _ok(await _call(fake_chain_client, TOKEN, "get-decimals")) == UInt(6)
    assert _ok(await _call(fake_chain_client, TOKEN, "get-symbol")) == StringAscii("CHA")
    assert _ok(await _call(fake_chain_client, TOKEN, "get-name")) == StringAscii("Charisma")
    assert _ok(await _call(fake_chain_client, TOKEN, "get-total-supply")) == UInt(123_456_789)
    assert _ok(await _call(fake_chain_client, TOKEN, "get-token-uri")) == Some(StringUtf8(URI))
    assert _ok(await _call(fake_chain_client, CREDIT, "get-token-uri")) == NONE
    assert _ok(await _call(fake_chain_client, CREDIT, "get-symbol")) == StringAscii("cCHA")
    assert _ok(await _call(fake_chain_client, CREDIT, "get-total-supply")) == UInt(782)


async def test_call_read_accepts_hex_without_prefix_and_a_sponsor(
    fake_chain_client: httpx.AsyncClient,
) -> None:
    argument = to_hex(principal_from_text(ALICE))[2:]
    response = await _call(fake_chain_client, CREDIT, "get-balance", argument, sponsor=ALICE)
    assert _ok(response) == UInt(777)


async def test_call_read_at_a_past_tip(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    before = fake_chain.tip
    fake_chain.withdraw(CREDIT, ALICE, 700)
    argument = to_hex(principal_from_text(ALICE))
    url = _call_url(CREDIT, "get-balance")
    body = {"sender": BOB, "arguments": [argument]}
    past = await fake_chain_client.post(url, json=body, params={"tip": before.index_block_hash[2:]})
    now = await fake_chain_client.post(url, json=body, params={"tip": "latest"})
    assert _ok(past) == UInt(777)
    assert _ok(now) == UInt(77)


@pytest.mark.parametrize(
    ("function", "args", "cause"),
    [
        ("get-balance", [], "Unchecked(IncorrectArgumentCount(1, 0))"),
        ("get-decimals", [to_hex(UInt(1))], "Unchecked(IncorrectArgumentCount(0, 1))"),
        ("get-balance", [to_hex(UInt(5))], "Unchecked(TypeValueError(PrincipalType, UInt(5)))"),
        ("get-balance-of", [], 'Unchecked(UndefinedFunction("get-balance-of"))'),
    ],
)
async def test_bad_calls_answer_okay_false_with_the_node_cause(
    fake_chain_client: httpx.AsyncClient, function: str, args: list[str], cause: str
) -> None:
    response = await _call(fake_chain_client, TOKEN, function, *args)
    assert response.status_code == 200
    assert response.json() == {"okay": False, "cause": cause}


async def test_public_functions_are_not_read_only(fake_chain_client: httpx.AsyncClient) -> None:
    response = await _call(fake_chain_client, CREDIT, "deposit", to_hex(UInt(1)), to_hex(NONE))
    assert response.json()["okay"] is False
    assert "PublicFunctionNotReadOnly" in response.json()["cause"]


async def test_unknown_contract_is_404_text(fake_chain_client: httpx.AsyncClient) -> None:
    response = await _call(fake_chain_client, f"{DEPLOYER}.missing", "get-balance", to_hex(UInt(1)))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "body",
    [
        {"sender": BOB, "arguments": ["0xzz"]},
        {"sender": BOB, "arguments": ["0x07"]},  # a truncated value
        {"sender": BOB, "arguments": [], "extra": 1},
        {"sender": BOB},
        {"arguments": []},
        {"sender": "not-an-address", "arguments": []},
        {"sender": BOB, "arguments": "0x01"},
    ],
)
async def test_unparseable_bodies_are_400_text(
    fake_chain_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await fake_chain_client.post(_call_url(TOKEN, "get-balance"), json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text


async def test_non_json_body_is_400_text(fake_chain_client: httpx.AsyncClient) -> None:
    response = await fake_chain_client.post(_call_url(TOKEN, "get-name"), content=b"{nope")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")


def _function_names(interface: dict[str, Any], access: str) -> set[str]:
    return {f["name"] for f in interface["functions"] if f["access"] == access}


async def test_interface_of_a_native_token(fake_chain_client: httpx.AsyncClient) -> None:
    address, name = TOKEN.split(".")
    body = (await fake_chain_client.get(f"/v2/contracts/interface/{address}/{name}")).json()
    assert body["fungible_tokens"] == [{"name": "charisma"}]
    assert body["non_fungible_tokens"] == []
    assert body["maps"] == []
    assert _function_names(body, "read_only") == {
        "get-balance",
        "get-decimals",
        "get-name",
        "get-symbol",
        "get-token-uri",
        "get-total-supply",
    }
    assert _function_names(body, "public") == {"transfer"}
    get_balance = next(f for f in body["functions"] if f["name"] == "get-balance")
    assert get_balance["args"] == [{"name": "who", "type": "principal"}]
    assert get_balance["outputs"] == {"type": {"response": {"ok": "uint128", "error": "uint128"}}}
    assert {"epoch", "clarity_version", "variables"} <= set(body)


async def test_interface_of_a_map_token(fake_chain_client: httpx.AsyncClient) -> None:
    address, name = CREDIT.split(".")
    body = (await fake_chain_client.get(f"/v2/contracts/interface/{address}/{name}")).json()
    assert body["fungible_tokens"] == []
    assert body["maps"] == [{"name": "balances", "key": "principal", "value": "uint128"}]
    assert _function_names(body, "public") == {"transfer", "deposit", "withdraw"}
    assert "get-balance" in _function_names(body, "read_only")


async def test_interface_of_an_unknown_contract_is_404(
    fake_chain_client: httpx.AsyncClient,
) -> None:
    response = await fake_chain_client.get(f"/v2/contracts/interface/{DEPLOYER}/missing")
    assert response.status_code == 404


async def test_contract_principal_argument(fake_chain_client: httpx.AsyncClient) -> None:
    pool = principal_from_text(POOL)
    assert isinstance(pool, ContractPrincipal)
    assert _ok(await _call(fake_chain_client, CREDIT, "get-balance", to_hex(pool))) == UInt(5)
