"""REST errors: JSON ``{"error", "message"}`` with the status of the one error table.

Bad input, unknown routes, a failing or rate-limited chain (the stand-in's faults),
a failing store, and bad request bodies. Unknown is never zero: no error answer
carries a balance, and a failed refresh of a known balance serves it marked stale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, Kit

from balances.blobs import Blob, MemoryBlobStore
from balances.errors import BlobBackendError
from balances.testing import fake_address

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
BAD_CHECKSUM = HOLDER[:-1] + ("8" if HOLDER[-1] != "8" else "9")
TESTNET = fake_address("someone on testnet", "testnet")

pytestmark = pytest.mark.asyncio(loop_scope="module")


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """``response`` is the JSON error ``code`` with ``status``; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


# --- bad input ---------------------------------------------------------------------


def _address_routes(address: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/balances/{address}/stx"),
        ("GET", f"/balances/{address}"),
        ("POST", f"/balances/{address}/refresh"),
        ("PUT", f"/tracked/{address}"),
    ]


@pytest.mark.parametrize(("method", "path"), _address_routes(BAD_CHECKSUM))
async def test_a_bad_checksum_is_invalid_address(
    api: httpx.AsyncClient, key: dict[str, str], method: str, path: str
) -> None:
    body = {"tokens": []} if method == "PUT" else None
    response = await api.request(method, path, json=body, headers=key)
    message = assert_error(response, 400, "invalid_address")
    assert "checksum" in message
    assert BAD_CHECKSUM in message


@pytest.mark.parametrize(("method", "path"), _address_routes(TESTNET))
async def test_a_testnet_address_on_mainnet_is_invalid_address(
    api: httpx.AsyncClient, key: dict[str, str], method: str, path: str
) -> None:
    body = {"tokens": []} if method == "PUT" else None
    response = await api.request(method, path, json=body, headers=key)
    message = assert_error(response, 400, "invalid_address")
    assert "testnet" in message
    assert "mainnet" in message


@pytest.mark.parametrize(
    "address", ["not-an-address", "SP123", HOLDER.lower() + "x", f"{HOLDER}.1bad-name"]
)
async def test_malformed_addresses_are_invalid_address(
    api: httpx.AsyncClient, address: str
) -> None:
    assert_error(await api.get(f"/balances/{address}/stx"), 400, "invalid_address")


@pytest.mark.parametrize(
    "path",
    [
        f"/balances/{HOLDER}/SP123",
        f"/balances/{HOLDER}/{NATIVE}::",
        f"/balances/{HOLDER}/stx::stx",
        "/tokens/xyz",
        f"/tokens/{HOLDER}",
    ],
    ids=["not-a-contract", "empty-asset", "stx-asset", "token-route", "plain-address"],
)
async def test_malformed_token_ids_are_invalid_token_id(api: httpx.AsyncClient, path: str) -> None:
    message = assert_error(await api.get(path), 400, "invalid_token_id")
    assert "stx" in message.lower(), "the message says what is accepted"


async def test_a_testnet_token_contract_on_mainnet_is_invalid_address(
    api: httpx.AsyncClient,
) -> None:
    assert_error(await api.get(f"/balances/{HOLDER}/{TESTNET}.token"), 400, "invalid_address")


async def test_unknown_routes_and_methods(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/no/such/route"), 404, "not_found")
    assert_error(await api.get(f"/balances/{HOLDER}/stx/extra/parts"), 400, "invalid_token_id")
    wrong_method = await api.delete("/health")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "GET"


# --- request bodies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        (b"{not json", "JSON"),
        (b'{"tokens": 3}', "tokens"),
        (b'{"tokens": [1, 2]}', "tokens"),
        (b'{"extra": true}', "extra"),
        (b"[]", "dict"),
    ],
    ids=["not-json", "tokens-not-a-list", "tokens-not-text", "unknown-field", "not-an-object"],
)
async def test_a_bad_track_body_is_422_json(
    api: httpx.AsyncClient, key: dict[str, str], content: bytes, mentions: str
) -> None:
    headers = {**key, "content-type": "application/json"}
    response = await api.put(f"/tracked/{OTHER}", content=content, headers=headers)
    message = assert_error(response, 422, "invalid_request")
    assert mentions.lower() in message.lower()
    assert (await api.get("/tracked")).json() == []


async def test_a_bad_map_token_in_the_track_body_is_invalid_token_id(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    response = await api.put(f"/tracked/{OTHER}", json={"tokens": ["nope"]}, headers=key)
    assert_error(response, 400, "invalid_token_id")


# --- a failing chain ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/balances/{HOLDER}/stx",
        f"/balances/{HOLDER}/{NATIVE}",
        f"/balances/{HOLDER}/{MAP_TOKEN}",
        f"/balances/{HOLDER}",
        f"/balances/{HOLDER}?include_zero=true",
    ],
    ids=["stx", "native", "map", "all", "all-with-zeros"],
)
async def test_a_down_chain_with_nothing_stored_is_503_never_zero(
    api: httpx.AsyncClient, kit: Kit, path: str
) -> None:
    kit.chain.faults.error_rate = 1.0
    response = await api.get(path)
    assert_error(response, 503, "chain_unavailable")
    assert "balance" not in response.json()


async def test_a_down_chain_answers_refresh_with_503(
    api: httpx.AsyncClient, kit: Kit, key: dict[str, str]
) -> None:
    kit.chain.faults.error_rate = 1.0
    response = await api.post(f"/balances/{HOLDER}/refresh", headers=key)
    assert_error(response, 503, "chain_unavailable")


async def test_a_rate_limited_chain_with_nothing_stored_is_429_with_retry_after(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    kit.chain.faults.rate_limit_per_minute = 0  # every request: 429, retry-after 60
    response = await api.get(f"/balances/{HOLDER}/stx")
    message = assert_error(response, 429, "chain_rate_limited")
    assert "rate limited" in message
    assert int(response.headers["retry-after"]) == 60
    assert "balance" not in response.json()


async def test_a_down_chain_with_a_stored_balance_serves_it_stale(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    known = (await api.get(f"/balances/{HOLDER}/{NATIVE}")).json()
    assert known["stale"] is False
    kit.chain.mint(NATIVE, HOLDER, 5)  # what a working chain would now answer
    kit.chain.faults.error_rate = 1.0
    kit.clocks.advance(mono=10_000, wall=10_000)  # past the cache TTL and stale_after

    response = await api.get(f"/balances/{HOLDER}/{NATIVE}")
    assert response.status_code == 200
    served = response.json()
    assert served["balance"] == known["balance"] == "750"
    assert served["balance"] != str(kit.chain.balance(NATIVE, HOLDER))
    assert served["stale"] is True
    assert isinstance(served["error"], str)
    assert served["error"]
    assert served["updated_at"] == known["updated_at"]
    assert served["source"] != "chain"

    listing = (await api.get(f"/balances/{HOLDER}")).json()["balances"]
    assert {item["token_id"]: item["balance"] for item in listing}[NATIVE] == "750"
    assert all(item["stale"] and item["error"] for item in listing)


async def test_a_token_never_read_is_an_error_not_zero_while_the_chain_is_down(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    """HOLDER's other balances are stored; this map token's was never read."""
    other_map = f"{OTHER}.credits-v1"
    kit.chain.add_map_token(other_map, decimals=2, symbol="CRD", name="Credits")
    kit.chain.deposit(other_map, HOLDER, 42)
    await api.get(f"/balances/{HOLDER}")
    assert (await api.get(f"/tokens/{other_map}")).json()["kind"] == "map"
    kit.chain.faults.error_rate = 1.0
    response = await api.get(f"/balances/{HOLDER}/{other_map}")
    assert_error(response, 503, "chain_unavailable")


# --- a failing store and unexpected failures ---------------------------------------------


class FailingStore(MemoryBlobStore):
    """A memory store whose reads raise ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def get(self, key: str) -> Blob:
        raise self.error

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


async def test_a_failing_store_is_503_storage_unavailable(
    make_client: ClientFactory, kit: Kit
) -> None:
    service = kit.service(store=FailingStore(BlobBackendError("the bucket is unreachable")))
    client = await make_client(service)
    for path in (f"/balances/{HOLDER}/stx", "/tracked"):
        message = assert_error(await client.get(path), 503, "storage_unavailable")
        assert "unreachable" in message


async def test_an_unexpected_failure_is_500_without_internals(
    make_client: ClientFactory, kit: Kit
) -> None:
    service = kit.service(store=FailingStore(RuntimeError("secret internals at 0xdeadbeef")))
    client = await make_client(service, raise_app_exceptions=False)
    response = await client.get(f"/balances/{HOLDER}/stx")
    message = assert_error(response, 500, "internal_error")
    assert "secret" not in message
    assert "0xdeadbeef" not in response.text


async def test_a_refresh_that_fails_keeps_the_known_balances_marked_stale(
    api: httpx.AsyncClient, kit: Kit, key: dict[str, str]
) -> None:
    known = (await api.get(f"/balances/{HOLDER}/stx")).json()
    kit.chain.transfer("stx", HOLDER, OTHER, 1)
    kit.chain.faults.error_rate = 1.0
    response = await api.post(f"/balances/{HOLDER}/refresh", headers=key)
    assert response.status_code == 200, response.text
    served = {item["token_id"]: item for item in response.json()["balances"]}
    assert served["stx"]["balance"] == known["balance"] != str(kit.chain.balance("stx", HOLDER))
    assert served[NATIVE]["balance"] == "750"
    assert all(item["stale"] and item["error"] for item in served.values())
    assert all(item["source"] != "chain" for item in served.values())

    kit.chain.faults.error_rate = 0.0
    # past the balance error TTL (15 s) and the metadata retry delay (300 s)
    kit.clocks.advance(mono=301, wall=301)
    recovered = (await api.get(f"/balances/{HOLDER}/{NATIVE}")).json()
    assert (recovered["stale"], recovered["error"]) == (False, None)
    assert recovered["balance"] == "750"
    assert (recovered["decimals"], recovered["symbol"]) == (8, "CHA"), "metadata is learned later"
