"""Fixtures of the blob-store contract suite: one store per backend, real servers.

- ``memory``, and ``local`` in a fresh ``tmp_path`` (twice: with cached reads
  inline, and with every read in a worker thread);
- ``s3``: obstore against a moto S3 server, a separate process on 127.0.0.1
  started once per session, one fresh bucket per test;
- ``vercel``: the Vercel Blob stand-in (uvicorn on 127.0.0.1, private store so
  reads bypass the simulated CDN), reset per test. Any request it flags as not
  matching the official SDK's format fails the test that sent it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from blob_sleeps import Sleeps

from balances.blobs import BlobStore, LocalBlobStore, MemoryBlobStore
from balances.testing.s3_server import MotoS3Server
from balances.testing.vercel_blob import VercelBlobStandIn

# "local-threaded" is the local store with every read in a worker thread (the path
# taken when the page cache does not hold a file).
BACKENDS = ["memory", "local", "local-threaded", "s3", "vercel"]

StoreFactory = Callable[[], BlobStore]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


@pytest.fixture(scope="session")
def vercel_server() -> Iterator[VercelBlobStandIn]:
    with VercelBlobStandIn(access="private") as server:
        yield server


def _vercel_factory(request: pytest.FixtureRequest) -> StoreFactory:
    from balances.blobs.vercel import VercelBlobStore

    server: VercelBlobStandIn = request.getfixturevalue("vercel_server")
    server.reset()
    # Fast retries: the retry tests in test_vercel_blob.py check the delays themselves.
    return lambda: VercelBlobStore(**server.store_options(), retry_base_delay=0.01)


def _s3_factory(request: pytest.FixtureRequest) -> StoreFactory:
    from balances.blobs.s3 import S3BlobStore

    server: MotoS3Server = request.getfixturevalue("moto_server")
    url = f"s3://{server.create_bucket()}/contract"
    return lambda: S3BlobStore.from_url(url, **server.store_options())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_factory(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StoreFactory]:
    """Makes stores that all see the same blobs (one backend, one fresh namespace)."""
    if backend == "memory":
        shared = MemoryBlobStore()
        yield lambda: shared
    elif backend == "local":
        yield lambda: LocalBlobStore(tmp_path / "blobs")
    elif backend == "local-threaded":
        yield lambda: LocalBlobStore(tmp_path / "blobs", inline_cached_reads=False)
    elif backend == "s3":
        yield _s3_factory(request)
    else:
        yield _vercel_factory(request)
        server: VercelBlobStandIn = request.getfixturevalue("vercel_server")
        assert server.violations() == [], "requests differ from what @vercel/blob sends"


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[BlobStore]:
    opened = store_factory()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
