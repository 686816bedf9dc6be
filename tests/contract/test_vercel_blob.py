"""Vercel Blob specifics: the wire format against the SDK capture, the stand-in's
strictness, retries, outcomes of uncertain writes and CDN staleness."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from blob_sleeps import Sleeps

from balances.blobs import CREATE, OVERWRITE, IfMatch
from balances.blobs.vercel import VercelBlobStore
from balances.errors import (
    BlobBackendError,
    BlobNotFoundError,
)
from balances.testing.vercel_blob import VercelBlobStandIn

CAPTURE = (
    Path(__file__).resolve().parents[3]
    / "shared/reference/vercel-blob/client-2.8.0-request-capture.json"
)
CAPTURE_TOKEN = "vercel_blob_rw_teststore123_SECRETSECRET"


def capture() -> list[dict[str, Any]]:
    if not CAPTURE.is_file():
        raise FileNotFoundError(f"the SDK request capture is missing: {CAPTURE}")
    requests: list[dict[str, Any]] = json.loads(CAPTURE.read_text(encoding="utf-8"))["requests"]
    return requests


@pytest.fixture(scope="module")
def public_server() -> Iterator[VercelBlobStandIn]:
    # A public store, like the one the SDK capture was made against.
    with VercelBlobStandIn(access="public") as server:
        yield server


@pytest.fixture
def server(public_server: VercelBlobStandIn) -> Iterator[VercelBlobStandIn]:
    public_server.reset()
    yield public_server
    assert public_server.violations() == []


@pytest.fixture
async def vstore(server: VercelBlobStandIn, sleeps: Sleeps) -> AsyncIterator[VercelBlobStore]:
    store = VercelBlobStore(**server.store_options(), max_retries=3, sleep=sleeps)
    yield store
    await store.close()


def _api_requests(server: VercelBlobStandIn, op: str) -> list[Any]:
    return [request for request in server.requests if request.op == op]


# --- the wire format, against the official SDK's capture ----------------------


def _same_headers(ours: dict[str, str], sdk: dict[str, str], names: list[str]) -> None:
    for name in names:
        assert ours.get(name) == sdk.get(name), name
    assert ours["x-api-blob-request-attempt"] == sdk["x-api-blob-request-attempt"] == "0"
    shape = r"teststore123:\d{13}:[0-9a-f]+"
    assert re.fullmatch(shape, sdk["x-api-blob-request-id"])
    assert re.fullmatch(shape, ours["x-api-blob-request-id"])


COMMON = ["authorization", "x-api-version", "x-vercel-blob-store-id"]


async def test_put_matches_the_sdk_capture(server: VercelBlobStandIn) -> None:
    sdk = capture()[0]
    assert server.token == CAPTURE_TOKEN
    options = {**server.store_options(), "cache_control_max_age": 60}
    async with VercelBlobStore(**options) as store:
        await store.put("balances/x.json", b"{}", mode=OVERWRITE, content_type="application/json")
    ours = _api_requests(server, "put")[0]
    sdk_path, _, sdk_query = sdk["url"].partition("?")
    assert (ours.path.removeprefix("/api/blob"), ours.query) == (sdk_path, sdk_query)
    option_headers = ["x-vercel-blob-access", "x-content-type", "x-add-random-suffix"]
    option_headers += ["x-allow-overwrite", "x-cache-control-max-age"]
    _same_headers(ours.headers, sdk["headers"], COMMON + option_headers)
    assert ours.body == sdk["body"].encode()


async def test_create_sends_no_overwrite_and_if_match_sends_both(
    server: VercelBlobStandIn, vstore: VercelBlobStore
) -> None:
    info = await vstore.put("m", b"1", mode=CREATE)
    await vstore.put("m", b"2", mode=IfMatch(info.etag))
    create, conditional = _api_requests(server, "put")
    assert "x-allow-overwrite" not in create.headers
    assert "x-if-match" not in create.headers
    assert conditional.headers["x-allow-overwrite"] == "1"
    assert conditional.headers["x-if-match"] == info.etag


async def test_head_list_delete_match_the_sdk_capture(
    server: VercelBlobStandIn, vstore: VercelBlobStore
) -> None:
    sdk_head, sdk_list, sdk_delete = capture()[2:5]
    with pytest.raises(BlobNotFoundError):
        await vstore.head("balances/x.json")
    with pytest.raises(BlobBackendError):  # "c0" is the capture's cursor, not one of ours
        await vstore.list("balances/", cursor="c0", limit=10)
    await vstore.delete(["balances/x.json", "balances/y.json"])
    head = _api_requests(server, "head")[0]
    assert head.query == sdk_head["url"].partition("?")[2]
    _same_headers(head.headers, sdk_head["headers"], COMMON)
    listing = _api_requests(server, "list")[0]
    # The SDK call in the capture also asked for mode=folded; we never do.
    assert listing.query == sdk_list["url"].partition("?")[2].removesuffix("&mode=folded")
    delete = _api_requests(server, "delete")[0]
    assert delete.path.removeprefix("/api/blob") == sdk_delete["url"]
    assert delete.headers["content-type"] == sdk_delete["headers"]["content-type"]
    sdk_body = json.loads(sdk_delete["body"])
    sdk_body["urls"][0] = "balances/x.json"  # the SDK accepts urls or pathnames
    assert delete.body == json.dumps(sdk_body, separators=(",", ":")).encode()


# --- the stand-in refuses what the SDK would not send --------------------------


def _sdk_put_headers() -> dict[str, str]:
    headers = dict(capture()[0]["headers"])
    headers.pop("content-length")
    return headers


MUTATIONS = {
    "missing x-api-version": lambda h, q: ({k: v for k, v in h.items() if k != "x-api-version"}, q),
    "old x-api-version": lambda h, q: ({**h, "x-api-version": "11"}, q),
    "missing store id": lambda h, q: (
        {k: v for k, v in h.items() if k != "x-vercel-blob-store-id"},
        q,
    ),
    "bad request id": lambda h, q: ({**h, "x-api-blob-request-id": "nope"}, q),
    "unknown header": lambda h, q: ({**h, "x-foo": "1"}, q),
    "json content-type": lambda h, q: ({**h, "content-type": "application/json"}, q),
    "cache below 60 s": lambda h, q: ({**h, "x-cache-control-max-age": "30"}, q),
    "slash not encoded": lambda h, q: (h, "pathname=balances/x.json"),
    "space as %20": lambda h, q: (h, "pathname=a%20b"),
    "tilde not encoded": lambda h, q: (h, "pathname=a~b"),
    "extra parameter": lambda h, q: (h, q + "&x=1"),
}


async def test_the_sdk_request_itself_is_accepted(server: VercelBlobStandIn) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.put(
            f"{server.api_url}/?pathname=balances%2Fx.json",
            headers=_sdk_put_headers(),
            content=b"{}",
        )
    assert response.status_code == 200
    assert response.json()["pathname"] == "balances/x.json"


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
async def test_the_stand_in_rejects_requests_unlike_the_sdk(
    public_server: VercelBlobStandIn, mutation: str
) -> None:
    public_server.reset()
    headers, query = MUTATIONS[mutation](_sdk_put_headers(), "pathname=balances%2Fx.json")
    async with httpx.AsyncClient() as client:
        response = await client.put(
            f"{public_server.api_url}/?{query}", headers=headers, content=b"{}"
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert [request.status for request in public_server.violations()] == [400]
    public_server.reset()  # the violation was the point of this test


async def test_the_stand_in_rejects_a_delete_body_unlike_json_stringify(
    public_server: VercelBlobStandIn,
) -> None:
    public_server.reset()
    headers = {k: v for k, v in capture()[4]["headers"].items() if k != "content-length"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{public_server.api_url}/delete", headers=headers, content=b'{"urls": ["a"]}'
        )
    assert response.status_code == 400
    assert len(public_server.violations()) == 1
    public_server.reset()


async def test_a_wrong_token_is_forbidden(server: VercelBlobStandIn) -> None:
    options = {**server.store_options(), "token": "vercel_blob_rw_teststore123_WRONG"}
    async with VercelBlobStore(**options) as store:
        with pytest.raises(BlobBackendError, match="forbidden"):
            await store.put("x", b"1")
