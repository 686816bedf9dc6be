"""Contract reads, metadata, interfaces and blocks on scripted answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from test_chain_support import (
    DEPLOYER,
    HOLDER,
    TOKEN,
    ScriptedApi,
    json_answer,
    make_client,
)

from balances.chain.clarity import (
    NONE,
    ResponseErr,
    ResponseOk,
    Some,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    UInt,
    to_hex,
)
from balances.chain.models import TokenKind
from balances.errors import (
    ChainUnavailableError,
    ClarityValueError,
    ContractCallError,
    ContractNotFoundError,
    InvalidAddressError,
    MalformedResponseError,
    NotFoundError,
    TokenNotFoundError,
)

CALL = f"/v2/contracts/call-read/{DEPLOYER}/charisma-token"
INTERFACE = f"/v2/contracts/interface/{DEPLOYER}/charisma-token"


def ok(value: Any) -> httpx.Response:
    return json_answer({"okay": True, "result": to_hex(value)})


def refused(cause: str) -> httpx.Response:
    return json_answer({"okay": False, "cause": cause})


async def test_call_read_sends_hex_arguments_and_decodes_the_result() -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-balance", ok(ResponseOk(UInt(123456789))))
    holder = StandardPrincipal.from_address(HOLDER)
    value = await make_client(api).call_read(TOKEN, "get-balance", [holder], sender=HOLDER)
    assert value == ResponseOk(UInt(123456789))
    body = orjson.loads(api.calls[0].content)
    assert body == {
        "sender": HOLDER,
        "arguments": ["0x0516a46ff88886c2ef9762d970b4d2c63678835bd39d"],
    }
    assert api.calls[0].headers["content-type"] == "application/json"


async def test_call_read_defaults_the_sender_to_the_deployer() -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-decimals", ok(ResponseOk(UInt(6))))
    await make_client(api).call_read(TOKEN, "get-decimals")
    assert orjson.loads(api.calls[0].content) == {"sender": DEPLOYER, "arguments": []}


async def test_okay_false_carries_the_nodes_cause() -> None:
    api = ScriptedApi()
    cause = 'Unchecked(UndefinedFunction("get-nothing"))'
    api.on("POST", f"{CALL}/get-nothing", refused(cause))
    with pytest.raises(ContractCallError) as caught:
        await make_client(api).call_read(TOKEN, "get-nothing")
    assert caught.value.cause == cause
    assert "get-nothing" in str(caught.value)


async def test_unknown_contract_is_contract_not_found() -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-balance", httpx.Response(404, text="No contract found"))
    api.on("GET", INTERFACE, httpx.Response(404, text="No contract found"))
    client = make_client(api)
    with pytest.raises(ContractNotFoundError, match="No contract found"):
        await client.call_read(TOKEN, "get-balance")
    with pytest.raises(ContractNotFoundError):
        await client.get_contract_interface(TOKEN)


async def test_a_400_from_the_node_is_a_contract_call_error() -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-balance", httpx.Response(400, text="Failed to deserialize arg"))
    with pytest.raises(ContractCallError) as caught:
        await make_client(api).call_read(TOKEN, "get-balance")
    assert caught.value.cause == "Failed to deserialize arg"


@pytest.mark.parametrize(
    "answer",
    [
        json_answer({"okay": True, "result": "0xzz"}),
        json_answer({"okay": True, "result": "0x07"}),
        json_answer({"okay": True}),
        json_answer({"result": "0x03"}),
        json_answer({"okay": "yes", "result": "0x03"}),
    ],
)
async def test_broken_call_read_answers_are_malformed(answer: httpx.Response) -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-balance", answer)
    with pytest.raises(MalformedResponseError):
        await make_client(api).call_read(TOKEN, "get-balance")


async def test_call_read_input_checks_happen_before_any_request() -> None:
    api = ScriptedApi()
    client = make_client(api)
    with pytest.raises(InvalidAddressError, match="not a contract id"):
        await client.call_read(DEPLOYER, "get-balance")
    with pytest.raises(ClarityValueError, match="function name"):
        await client.call_read(TOKEN, "get balance")
    with pytest.raises(InvalidAddressError):
        await client.call_read(TOKEN, "get-balance", sender="nobody")
    assert api.calls == []


async def test_map_token_balance_reads_ok_uint() -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-balance", ok(ResponseOk(UInt(2**128 - 1))))
    assert await make_client(api).get_map_token_balance(TOKEN, HOLDER) == 2**128 - 1


@pytest.mark.parametrize(
    ("result", "cause"),
    [
        (ResponseErr(UInt(1)), "(err u1)"),
        (ResponseOk(StringAscii("lots")), "expected a uint"),
        (UInt(5), "expected a response"),
    ],
)
async def test_map_token_balance_errors_never_become_zero(result: Any, cause: str) -> None:
    api = ScriptedApi()
    api.on("POST", f"{CALL}/get-balance", ok(result))
    with pytest.raises(ContractCallError) as caught:
        await make_client(api).get_map_token_balance(TOKEN, HOLDER)
    assert cause in (caught.value.cause or "")


def metadata_api(**overrides: httpx.Response) -> ScriptedApi:
    api = ScriptedApi()
    answers = {
        "get-decimals": ok(ResponseOk(UInt(6))),
        "get-symbol": ok(ResponseOk(StringAscii("CHA"))),
        "get-name": ok(ResponseOk(StringAscii("Charisma"))),
        "get-total-supply": ok(ResponseOk(UInt(10**15))),
        "get-token-uri": ok(ResponseOk(Some(StringUtf8("https://example.com/token.json")))),
    }
    answers.update({name.replace("_", "-"): answer for name, answer in overrides.items()})
    for function, answer in answers.items():
        api.on("POST", f"{CALL}/{function}", answer)
    return api


async def test_metadata_reads_all_five_getters() -> None:
    meta = await make_client(metadata_api()).get_token_metadata(TOKEN)
    assert (meta.decimals, meta.symbol, meta.name) == (6, "CHA", "Charisma")
    assert meta.total_supply == 10**15
    assert meta.token_uri == "https://example.com/token.json"
    assert meta.unavailable == {}
    assert meta.contract_id == TOKEN


async def test_metadata_keeps_what_is_known_when_optional_getters_fail() -> None:
    api = metadata_api(
        get_symbol=refused('Unchecked(UndefinedFunction("get-symbol"))'),
        get_total_supply=ok(ResponseErr(UInt(3))),
        get_token_uri=ok(ResponseOk(NONE)),
    )
    meta = await make_client(api).get_token_metadata(TOKEN)
    assert meta.decimals == 6
    assert meta.name == "Charisma"
    assert meta.symbol is None
    assert meta.total_supply is None
    assert meta.token_uri is None
    assert set(meta.unavailable) == {"get-symbol", "get-total-supply"}
    assert meta.unavailable["get-total-supply"] == "(err u3)"


async def test_metadata_without_decimals_is_an_error() -> None:
    api = metadata_api(get_decimals=ok(ResponseErr(UInt(1))))
    with pytest.raises(ContractCallError, match="get-decimals"):
        await make_client(api).get_token_metadata(TOKEN)
    api = metadata_api(get_decimals=ok(ResponseOk(UInt(10**6))))
    with pytest.raises(ContractCallError, match="out of range"):
        await make_client(api).get_token_metadata(TOKEN)


async def test_metadata_transport_failures_raise_instead_of_none() -> None:
    api = metadata_api(get_name=httpx.Response(503, text="down"))
    with pytest.raises(ChainUnavailableError):
        await make_client(api, attempts=1).get_token_metadata(TOKEN)


def abi(functions: list[tuple[str, str]], tokens: list[str]) -> httpx.Response:
    body = {
        "functions": [
            {"name": name, "access": access, "args": [], "outputs": {"type": "bool"}}
            for name, access in functions
        ],
        "variables": [],
        "maps": [],
        "fungible_tokens": [{"name": name} for name in tokens],
        "non_fungible_tokens": [],
    }
    return json_answer(body)


async def test_interface_of_a_native_token_names_its_asset() -> None:
    api = ScriptedApi()
    api.on(
        "GET", INTERFACE, abi([("get-balance", "read_only"), ("transfer", "public")], ["charisma"])
    )
    interface = await make_client(api).get_contract_interface(TOKEN)
    assert interface.kind is TokenKind.NATIVE
    assert interface.asset_name == "charisma"
    assert interface.asset_identifier == f"{TOKEN}::charisma"
    assert interface.read_only_functions == frozenset({"get-balance"})


async def test_interface_of_a_map_based_token() -> None:
    api = ScriptedApi()
    api.on("GET", INTERFACE, abi([("get-balance", "read_only"), ("deposit", "public")], []))
    interface = await make_client(api).get_contract_interface(TOKEN)
    assert interface.kind is TokenKind.MAP
    assert interface.asset_name is None
    assert interface.asset_identifier is None


async def test_a_contract_that_is_not_a_token_is_a_clear_error() -> None:
    api = ScriptedApi()
    api.on("GET", INTERFACE, abi([("get-balance", "public"), ("swap", "public")], []))
    with pytest.raises(TokenNotFoundError, match="not a fungible token"):
        await make_client(api).get_contract_interface(TOKEN)


def block(height: int, time: int) -> dict[str, Any]:
    return {
        "canonical": True,
        "height": height,
        "hash": f"0x{height:064x}",
        "block_time": time,
        "index_block_hash": f"0x{height + 1:064x}",
        "burn_block_height": 800000 + height,
    }


async def test_chain_tip_and_block_at_a_time() -> None:
    api = ScriptedApi()
    api.on("GET", "/extended/v2/blocks/latest", json_answer(block(1234, 1_704_067_200)))
    api.on(
        "GET",
        "/extended/v2/blocks/by-block-time/1704067000",
        json_answer(block(1200, 1_704_066_990)),
    )
    client = make_client(api)
    tip = await client.get_chain_tip()
    assert (tip.height, tip.time) == (1234, datetime(2024, 1, 1, tzinfo=UTC))
    found = await client.get_block_at(datetime.fromtimestamp(1_704_067_000.7, UTC))
    assert found.height == 1200
    assert found.burn_block_height == 801200
    assert found.time == datetime.fromtimestamp(1_704_066_990, UTC)


async def test_no_block_before_a_time_is_not_found() -> None:
    api = ScriptedApi()
    api.on("GET", "/extended/v2/blocks/by-block-time/5", json_answer({"error": "Not Found"}, 404))
    with pytest.raises(NotFoundError, match="no block at or before"):
        await make_client(api).get_block_at(5)
    with pytest.raises(ValueError, match="1970"):
        await make_client(api).get_block_at(-5)


async def test_a_block_missing_a_field_is_malformed() -> None:
    api = ScriptedApi()
    body = block(1, 2)
    del body["hash"]
    api.on("GET", "/extended/v2/blocks/latest", json_answer(body))
    with pytest.raises(MalformedResponseError, match="hash"):
        await make_client(api).get_chain_tip()
