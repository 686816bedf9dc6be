"""VercelBlobStore against faults: retries, their bounds, uncertain writes, CDN staleness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from blob_sleeps import Sleeps

from balances.blobs import CREATE, IfMatch
from balances.blobs.vercel import VercelBlobStore
from balances.errors import (
    BlobBackendError,
    BlobNotFoundError,
    ConfigError,
    PreconditionFailedError,
)
from balances.testing.vercel_blob import VercelBlobStandIn


@pytest.fixture
def server(vercel_server: VercelBlobStandIn) -> Iterator[VercelBlobStandIn]:
    vercel_server.reset()
    yield vercel_server
    assert vercel_server.violations() == []


@pytest.fixture
async def vstore(server: VercelBlobStandIn, sleeps: Sleeps) -> AsyncIterator[VercelBlobStore]:
    store = VercelBlobStore(**server.store_options(), max_retries=3, sleep=sleeps)
    yield store
    await store.close()


def attempts(server: VercelBlobStandIn, op: str) -> list[tuple[str, str, int]]:
    """(request id, attempt header, status) of every ``op`` request."""
    return [
        (r.headers["x-api-blob-request-id"], r.headers["x-api-blob-request-attempt"], r.status)
        for r in server.requests
        if r.op == op
    ]


async def test_rate_limit_is_retried_after_retry_after(
    server: VercelBlobStandIn, vstore: VercelBlobStore, sleeps: Sleeps
) -> None:
    server.inject_fault(429, "rate_limited", ops=("put",), times=2, retry_after="1")
    await vstore.put("k", b"v")
    assert (await vstore.get("k")).data == b"v"
    assert sleeps.delays == [1.0, 1.0]
    tries = attempts(server, "put")
    assert [(attempt, status) for _, attempt, status in tries] == [
        ("0", 429),
        ("1", 429),
        ("2", 200),
    ]
    assert len({request_id for request_id, _, _ in tries}) == 1


async def test_retry_after_is_capped(server: VercelBlobStandIn, sleeps: Sleeps) -> None:
    options = {**server.store_options(), "max_retry_after": 5.0, "sleep": sleeps}
    server.inject_fault(429, "rate_limited", ops=("head",), retry_after="120")
    async with VercelBlobStore(**options) as store:
        await store.put("k", b"v")
        assert (await store.head("k")).size == 1
    assert sleeps.delays == [5.0]


async def test_unavailable_is_retried_then_succeeds(
    server: VercelBlobStandIn, vstore: VercelBlobStore, sleeps: Sleeps
) -> None:
    await vstore.put("k", b"v")
    server.inject_fault(503, "service_unavailable", ops=("list", "get"), times=2)
    assert (await vstore.list()).keys == ["k"]
    assert (await vstore.get("k")).data == b"v"
    assert len(sleeps.delays) == 2
    assert all(0 < delay <= 5.0 for delay in sleeps.delays)


async def test_failure_after_the_retry_bound(
    server: VercelBlobStandIn, vstore: VercelBlobStore, sleeps: Sleeps
) -> None:
    server.inject_fault(503, "service_unavailable", ops=("put",), times=4)
    with pytest.raises(BlobBackendError, match="service_unavailable"):
        await vstore.put("k", b"v")
    assert [attempt for _, attempt, _ in attempts(server, "put")] == ["0", "1", "2", "3"]
    assert len(sleeps.delays) == 3
    with pytest.raises(BlobNotFoundError):
        await vstore.head("k")


async def test_errors_that_retrying_cannot_fix_are_not_retried(
    server: VercelBlobStandIn, vstore: VercelBlobStore, sleeps: Sleeps
) -> None:
    server.inject_fault(403, "store_suspended", ops=("put",))
    with pytest.raises(BlobBackendError, match="store_suspended"):
        await vstore.put("k", b"v")
    assert len(attempts(server, "put")) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize("conditional", ["create", "if-match"])
async def test_a_conditional_put_applied_before_a_failure_is_recognised(
    server: VercelBlobStandIn, vstore: VercelBlobStore, conditional: str
) -> None:
    mode = CREATE
    if conditional == "if-match":
        mode = IfMatch((await vstore.put("k", b"old")).etag)
    # The write lands, the answer is lost in a 503; the retry is refused as a conflict.
    server.inject_fault(503, "service_unavailable", ops=("put",), after_commit=True)
    info = await vstore.put("k", b"new", mode=mode)
    blob = await vstore.get("k")
    assert (blob.data, blob.etag) == (b"new", info.etag)
    refusal = 400 if conditional == "create" else 412  # "already exists" / etag mismatch
    assert [status for _, _, status in attempts(server, "put")][-2:] == [503, refusal]


async def test_a_real_conflict_after_an_uncertain_attempt_still_fails(
    server: VercelBlobStandIn, vstore: VercelBlobStore
) -> None:
    await vstore.put("k", b"someone else's")
    server.inject_fault(503, "service_unavailable", ops=("put",))
    with pytest.raises(PreconditionFailedError):
        await vstore.put("k", b"ours", mode=CREATE)
    assert (await vstore.get("k")).data == b"someone else's"


# --- reads and the CDN ------------------------------------------------------------


async def test_public_reads_may_be_stale_but_never_lose_an_update() -> None:
    with VercelBlobStandIn(access="public") as server:
        async with VercelBlobStore(**server.store_options()) as store:
            first = await store.put("current.json", b"v1", mode=CREATE)
            assert (await store.get("current.json")).data == b"v1"  # now cached by the CDN
            second = await store.put("current.json", b"v2", mode=IfMatch(first.etag))
            stale = await store.get("current.json")
            assert (stale.data, stale.etag) == (b"v1", first.etag)
            with pytest.raises(PreconditionFailedError):
                await store.put("current.json", b"v1+1", mode=IfMatch(stale.etag))
            assert (await store.head("current.json")).etag == second.etag
        assert server.violations() == []


async def test_private_reads_bypass_the_cdn(
    server: VercelBlobStandIn, vstore: VercelBlobStore
) -> None:
    first = await vstore.put("current.json", b"v1")
    assert (await vstore.get("current.json")).data == b"v1"
    await vstore.put("current.json", b"v2", mode=IfMatch(first.etag))
    assert (await vstore.get("current.json")).data == b"v2"
    reads = [request for request in server.requests if request.op == "get"]
    assert {request.query for request in reads} == {"cache=0"}
    assert {request.headers["authorization"] for request in reads} == {f"Bearer {server.token}"}


@pytest.mark.parametrize("access", ["public", "private"])
async def test_default_read_urls(access: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x", headers={"etag": '"e"'})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))  # nothing leaves
    token = "vercel_blob_rw_abc123_secret"
    async with client, VercelBlobStore(token, access=access, client=client) as store:
        await store.get("balances/SP1/current.json")
    query = "?cache=0" if access == "private" else ""
    assert str(seen[0].url) == (
        f"https://abc123.{access}.blob.vercel-storage.com/balances/SP1/current.json{query}"
    )
    assert ("authorization" in seen[0].headers) == (access == "private")


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigError):
        VercelBlobStore("not-a-token")
    with pytest.raises(ConfigError):
        VercelBlobStore("vercel_blob_rw_abc_secret", cache_control_max_age=59)
    with pytest.raises(ConfigError):
        VercelBlobStore("vercel_blob_rw_abc_secret", access="protected")


async def test_cache_max_age_is_sent(server: VercelBlobStandIn) -> None:
    async with VercelBlobStore(**server.store_options(), cache_control_max_age=120) as store:
        await store.put("k", b"v")
    assert [r.headers["x-cache-control-max-age"] for r in server.requests] == ["120"]
