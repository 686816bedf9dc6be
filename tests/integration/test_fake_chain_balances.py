"""Balance routes of the stand-in over real HTTP: STX and native FTs in v3, v2 and v1 shapes."""

from __future__ import annotations

import httpx
import pytest

from balances.testing import FakeChain, fake_address

ALICE = fake_address("alice")
BOB = fake_address("bob")
DEPLOYER = fake_address("deployer")
TOKEN = f"{DEPLOYER}.charisma-token"
ASSET = f"{TOKEN}::charisma"
SBTC = f"{DEPLOYER}.sbtc-token"
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"
POOL = f"{DEPLOYER}.pool-v1"
V3 = "/extended/v3/principals"


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain()
    chain.add_native_token(TOKEN, "charisma", symbol="CHA")
    chain.add_native_token(SBTC, "sbtc", decimals=8)
    chain.add_map_token(CREDIT, base_token=TOKEN)
    chain.mint("stx", ALICE, 5_000_000)
    chain.mint(TOKEN, ALICE, 1_000)
    chain.mint(SBTC, ALICE, 2_000)
    chain.transfer(TOKEN, ALICE, BOB, 300)
    chain.burn(SBTC, ALICE, 500)
    chain.deposit(CREDIT, ALICE, 200)
    return chain


async def test_v3_stx_balance(fake_chain_client: httpx.AsyncClient) -> None:
    response = await fake_chain_client.get(f"{V3}/{ALICE}/balances/stx")
    assert response.status_code == 200
    assert response.json() == {
        "balance": "5000000",
        "available": "5000000",
        "locked": None,
        "mempool": None,
    }


async def test_v3_ft_list_after_mint_transfer_burn_deposit(
    fake_chain_client: httpx.AsyncClient,
) -> None:
    body = (await fake_chain_client.get(f"{V3}/{ALICE}/balances/ft")).json()
    assert body["results"] == [
        {"asset_identifier": f"{SBTC}::sbtc", "balance": "1500"},
        {"asset_identifier": ASSET, "balance": "500"},
    ]
    assert body["total"] == 2
    assert body["limit"] == 100
    assert body["cursor"] == {"next": None, "previous": None, "current": f"1500:{SBTC}::sbtc"}
    # The map token's contract holds the deposited base token; the credit is invisible.
    pool = (await fake_chain_client.get(f"{V3}/{CREDIT}/balances/ft")).json()
    assert pool["results"] == [{"asset_identifier": ASSET, "balance": "200"}]


async def test_v3_ft_single_balance_and_zero_when_not_held(
    fake_chain_client: httpx.AsyncClient,
) -> None:
    held = await fake_chain_client.get(f"{V3}/{BOB}/balances/ft/{ASSET}")
    assert held.json() == {"asset_identifier": ASSET, "balance": "300"}
    unknown = f"{DEPLOYER}.nothing::nothing"
    zero = await fake_chain_client.get(f"{V3}/{BOB}/balances/ft/{unknown}")
    assert zero.json() == {"asset_identifier": unknown, "balance": "0"}
    bad = await fake_chain_client.get(f"{V3}/{BOB}/balances/ft/{TOKEN}")
    assert bad.status_code == 400


async def test_v3_paging_walks_every_token_once(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    ids = fake_chain.add_native_tokens(45, prefix="bulk")
    for index, token in enumerate(ids):
        fake_chain.mint(token, BOB, 1 + index % 7)  # many equal balances: ties by identifier
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        body = (await fake_chain_client.get(f"{V3}/{BOB}/balances/ft", params=params)).json()
        pages += 1
        assert body["total"] == 46
        seen += [row["asset_identifier"] for row in body["results"]]
        cursor = body["cursor"]["next"]
        if cursor is None:
            break
        assert body["cursor"]["current"] is not None
    assert pages == 5
    assert len(seen) == len(set(seen)) == 46
    balances = [fake_chain.balance(asset, BOB) for asset in seen]
    assert balances == sorted(balances, reverse=True)


async def test_v3_previous_cursor_returns_to_the_prior_page(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    for index, token in enumerate(fake_chain.add_native_tokens(5, prefix="p")):
        fake_chain.mint(token, BOB, 10 + index)
    url = f"{V3}/{BOB}/balances/ft"
    first = (await fake_chain_client.get(url, params={"limit": 2})).json()
    second = (
        await fake_chain_client.get(url, params={"limit": 2, "cursor": first["cursor"]["next"]})
    ).json()
    assert second["cursor"]["previous"] == first["cursor"]["current"]
    back = (
        await fake_chain_client.get(
            url, params={"limit": 2, "cursor": second["cursor"]["previous"]}
        )
    ).json()
    assert back["results"] == first["results"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": ":x"},
    ],
)
async def test_v3_bad_limit_or_cursor_is_400(
    fake_chain_client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await fake_chain_client.get(f"{V3}/{ALICE}/balances/ft", params=params)
    assert response.status_code == 400
    assert set(response.json()) >= {"error", "message"}


@pytest.mark.parametrize(
    "principal",
    [
        "sp2j6zy48gv1ez5v2v5rb9mp66sw86pykknrv9ej7",  # lower case: the API's pattern refuses it
        "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ8",  # checksum
        "SP123",
        "XP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7",
    ],
)
@pytest.mark.parametrize(
    "route",
    [
        f"{V3}/{{}}/balances/stx",
        f"{V3}/{{}}/balances/ft",
        "/extended/v2/addresses/{}/balances/ft",
        "/extended/v1/address/{}/balances",
        f"{V3}/{{}}/transactions",
    ],
)
async def test_invalid_principal_is_400_with_error_and_message(
    fake_chain_client: httpx.AsyncClient, principal: str, route: str
) -> None:
    response = await fake_chain_client.get(route.format(principal))
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["error"], str)
    assert isinstance(body["message"], str)


async def test_contract_principals_hold_tokens(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.transfer(TOKEN, ALICE, POOL, 50)
    body = (await fake_chain_client.get(f"{V3}/{POOL}/balances/ft/{ASSET}")).json()
    assert body["balance"] == "50"


async def test_v2_shapes(fake_chain_client: httpx.AsyncClient) -> None:
    stx = await fake_chain_client.get(f"/extended/v2/addresses/{ALICE}/balances/stx")
    assert stx.json() == {
        "balance": "5000000",
        "total_miner_rewards_received": "0",
        "lock_tx_id": "",
        "locked": "0",
        "lock_height": 0,
        "burnchain_lock_height": 0,
        "burnchain_unlock_height": 0,
    }
    mempool = await fake_chain_client.get(
        f"/extended/v2/addresses/{ALICE}/balances/stx", params={"include_mempool": "true"}
    )
    assert mempool.json()["estimated_balance"] == "5000000"
    page = await fake_chain_client.get(
        f"/extended/v2/addresses/{ALICE}/balances/ft", params={"limit": 1, "offset": 1}
    )
    assert page.json() == {
        "limit": 1,
        "offset": 1,
        "total": 2,
        "results": [{"token": ASSET, "balance": "500"}],
    }
    one = await fake_chain_client.get(f"/extended/v2/addresses/{ALICE}/balances/ft/{ASSET}")
    assert one.json() == {"balance": "500"}
    unknown = f"/extended/v2/addresses/{ALICE}/balances/ft/{DEPLOYER}.nothing::nothing"
    assert (await fake_chain_client.get(unknown)).json() == {"balance": "0"}


async def test_v1_shapes_include_zero_balances_of_touched_tokens(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    fake_chain.transfer(SBTC, ALICE, BOB, 1_500)
    body = (await fake_chain_client.get(f"/extended/v1/address/{ALICE}/balances")).json()
    assert set(body) == {"stx", "fungible_tokens", "non_fungible_tokens"}
    assert body["non_fungible_tokens"] == {}
    assert body["fungible_tokens"] == {
        f"{SBTC}::sbtc": {"balance": "0", "total_sent": "2000", "total_received": "2000"},
        ASSET: {"balance": "500", "total_sent": "500", "total_received": "1000"},
    }
    assert CREDIT not in str(body)  # map-based tokens never show up
    stx = body["stx"]
    assert stx["balance"] == stx["estimated_balance"] == stx["total_received"] == "5000000"
    alone = (await fake_chain_client.get(f"/extended/v1/address/{ALICE}/stx")).json()
    assert alone == stx


async def test_v1_until_block_reads_the_past(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    before = fake_chain.tip
    fake_chain.transfer("stx", ALICE, BOB, 1_000_000)
    url = f"/extended/v1/address/{ALICE}/stx"
    by_height = (await fake_chain_client.get(url, params={"until_block": before.height})).json()
    by_hash = (await fake_chain_client.get(url, params={"until_block": before.hash})).json()
    now = (await fake_chain_client.get(url)).json()
    assert by_height["balance"] == by_hash["balance"] == "5000000"
    assert "estimated_balance" not in by_height
    assert now["balance"] == "4000000"
    bad = await fake_chain_client.get(url, params={"until_block": "yesterday"})
    assert bad.status_code == 400


async def test_map_tokens_never_appear_in_balance_routes(
    fake_chain_client: httpx.AsyncClient,
) -> None:
    for path in (
        f"{V3}/{ALICE}/balances/ft",
        f"/extended/v2/addresses/{ALICE}/balances/ft",
        f"/extended/v1/address/{ALICE}/balances",
    ):
        assert CREDIT not in (await fake_chain_client.get(path)).text
