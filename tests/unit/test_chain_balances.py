"""Balance reads on scripted answers: version fallback, paging, cursor guards."""

from __future__ import annotations

import httpx
import pytest
from test_chain_support import (
    ASSET,
    DEPLOYER,
    HOLDER,
    ScriptedApi,
    json_answer,
    make_client,
    stx_body,
    v3_page,
)

from balances.errors import EndpointGoneError, InvalidTokenIdError, MalformedResponseError

STX_V3 = f"/extended/v3/principals/{HOLDER}/balances/stx"
STX_V2 = f"/extended/v2/addresses/{HOLDER}/balances/stx"
STX_V1 = f"/extended/v1/address/{HOLDER}/stx"
FT_V3 = f"/extended/v3/principals/{HOLDER}/balances/ft"
FT_V2 = f"/extended/v2/addresses/{HOLDER}/balances/ft"
BALANCES_V1 = f"/extended/v1/address/{HOLDER}/balances"
GONE = httpx.Response(410, json={"error": "Gone", "message": "This endpoint has been disabled."})


def assets(count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"{DEPLOYER}.token-{i}::t{i}", str(1000 + i)) for i in range(start, start + count)]


async def test_stx_falls_back_v3_to_v2_to_v1_and_remembers() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, GONE)
    api.on("GET", STX_V2, httpx.Response(404, json={"error": "Not Found"}))
    api.on("GET", STX_V1, json_answer({"balance": "42", "locked": "0"}))
    client = make_client(api)
    assert await client.get_stx_balance(HOLDER) == 42
    assert api.paths() == [STX_V3, STX_V2, STX_V1]
    assert client.api_versions == {"stx": "v1"}
    api.calls.clear()
    assert await client.get_stx_balance(HOLDER) == 42
    assert api.paths() == [STX_V1]  # remembered for the client's life


async def test_v2_fallback_is_remembered_separately_per_family() -> None:
    api = ScriptedApi()
    api.on("GET", STX_V3, GONE)
    api.on("GET", STX_V2, json_answer({"balance": "7"}))
    api.on("GET", FT_V3, json_answer(v3_page(assets(1), None)))
    client = make_client(api)
    assert await client.get_stx_balance(HOLDER) == 7
    assert await client.get_ft_balances(HOLDER) == {f"{DEPLOYER}.token-0::t0": 1000}
    assert client.api_versions == {"stx": "v2", "ft": "v3"}


async def test_every_version_gone_is_an_error_naming_them_all() -> None:
    api = ScriptedApi()
    for path in (STX_V3, STX_V2, STX_V1):
        api.on("GET", path, GONE)
    with pytest.raises(EndpointGoneError, match=r"v3/principals.*v2/addresses.*v1/address"):
        await make_client(api).get_stx_balance(HOLDER)


async def test_v3_ft_pages_walk_the_cursor_with_limit_200() -> None:
    api = ScriptedApi()
    first, second, third = assets(200), assets(200, 200), assets(50, 400)

    def page(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return json_answer(v3_page(first, "1200:b"))
        if cursor == "1200:b":
            return json_answer(v3_page(second, "1400:c"))
        return json_answer(v3_page(third, None))

    api.on("GET", FT_V3, page)
    balances = await make_client(api).get_ft_balances(HOLDER)
    assert len(balances) == 450
    assert balances[f"{DEPLOYER}.token-449::t449"] == 1449
    assert [call.url.params.get("limit") for call in api.calls] == ["200"] * 3
    assert [call.url.params.get("cursor") for call in api.calls] == [None, "1200:b", "1400:c"]


async def test_a_cursor_loop_is_detected() -> None:
    api = ScriptedApi()
    api.on("GET", FT_V3, json_answer(v3_page(assets(1), "5:loop")))
    with pytest.raises(MalformedResponseError, match="cursor chain does not end"):
        await make_client(api).get_ft_balances(HOLDER)
    assert len(api.calls) == 2  # the first page, then the repeat


async def test_an_empty_page_with_a_next_cursor_is_malformed() -> None:
    api = ScriptedApi()
    api.on("GET", FT_V3, json_answer(v3_page([], "1:x")))
    with pytest.raises(MalformedResponseError, match="cursor chain"):
        await make_client(api).get_ft_balances(HOLDER)


async def test_v2_offset_paging_fallback() -> None:
    api = ScriptedApi()
    api.on("GET", FT_V3, httpx.Response(404, json={"error": "Not Found"}))
    everything = assets(250)

    def page(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        chunk = everything[offset : offset + limit]
        results = [{"token": a, "balance": b} for a, b in chunk]
        body = {"limit": limit, "offset": offset, "total": len(everything), "results": results}
        return json_answer(body)

    api.on("GET", FT_V2, page)
    client = make_client(api)
    assert len(await client.get_ft_balances(HOLDER)) == 250
    assert [call.url.params.get("offset") for call in api.calls[1:]] == ["0", "200"]
    assert client.api_versions == {"ft": "v2"}


async def test_v1_fallback_reads_the_fungible_tokens_map() -> None:
    api = ScriptedApi()
    api.on("GET", FT_V3, GONE)
    api.on("GET", FT_V2, GONE)
    body = {
        "stx": {"balance": "1"},
        "fungible_tokens": {ASSET: {"balance": "5", "total_sent": "0", "total_received": "5"}},
        "non_fungible_tokens": {},
    }
    api.on("GET", BALANCES_V1, json_answer(body))
    client = make_client(api)
    assert await client.get_ft_balances(HOLDER) == {ASSET: 5}
    assert await client.get_ft_balance(HOLDER, ASSET) == 5
    other = f"{DEPLOYER}.other-token::other"
    assert await client.get_ft_balance(HOLDER, other) == 0  # absent from a complete listing


async def test_v1_negative_balance_is_malformed_not_a_number() -> None:
    api = ScriptedApi()
    api.on("GET", FT_V3, GONE)
    api.on("GET", FT_V2, GONE)
    api.on("GET", BALANCES_V1, json_answer({"fungible_tokens": {ASSET: {"balance": "-1000000"}}}))
    with pytest.raises(MalformedResponseError, match="balance"):
        await make_client(api).get_ft_balances(HOLDER)


async def test_a_listed_asset_identifier_must_look_like_one() -> None:
    api = ScriptedApi()
    api.on("GET", FT_V3, json_answer(v3_page([("garbage", "1")], None)))
    with pytest.raises(MalformedResponseError, match="not an asset identifier"):
        await make_client(api).get_ft_balances(HOLDER)


async def test_one_ft_balance_v3_then_v2() -> None:
    api = ScriptedApi()
    api.on("GET", f"{FT_V3}/{ASSET}", json_answer({"asset_identifier": ASSET, "balance": "11"}))
    assert await make_client(api).get_ft_balance(HOLDER, ASSET) == 11
    api = ScriptedApi()
    api.on("GET", f"{FT_V3}/{ASSET}", GONE)
    api.on("GET", f"{FT_V2}/{ASSET}", json_answer({"balance": "12"}))
    assert await make_client(api).get_ft_balance(HOLDER, ASSET) == 12


@pytest.mark.parametrize("bad", [f"{DEPLOYER}.charisma-token", "stx", "charisma", f"{DEPLOYER}::x"])
async def test_get_ft_balance_needs_an_asset_identifier(bad: str) -> None:
    api = ScriptedApi()
    with pytest.raises(InvalidTokenIdError):
        await make_client(api).get_ft_balance(HOLDER, bad)
    assert api.calls == []


async def test_asset_names_with_slashes_are_percent_encoded() -> None:
    api = ScriptedApi()
    odd = f"{DEPLOYER}.weird::a/b"
    api.on("GET", f"{FT_V3}/{odd}", json_answer({"asset_identifier": odd, "balance": "3"}))
    assert await make_client(api).get_ft_balance(HOLDER, odd) == 3
    assert "a%2Fb" in api.calls[0].url.raw_path.decode()


async def test_contract_principals_can_hold_tokens() -> None:
    api = ScriptedApi()
    pool = f"{DEPLOYER}.pool-v1"
    api.on("GET", f"/extended/v3/principals/{pool}/balances/stx", json_answer(stx_body("3")))
    assert await make_client(api).get_stx_balance(pool) == 3
