"""open_blob_store: URL schemes, options, and clear errors (no network I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from balances.blobs import LocalBlobStore, MemoryBlobStore, open_blob_store
from balances.errors import ConfigError


async def test_memory_scheme() -> None:
    store = open_blob_store("memory://")
    assert isinstance(store, MemoryBlobStore)
    await store.put("k", b"v")
    assert (await store.get("k")).data == b"v"


async def test_relative_file_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_blob_store("file://./.balances")
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / ".balances"
    await store.put("k", b"v")
    assert (tmp_path / ".balances" / "k.blob").is_file()


def test_default_and_absolute_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    default = open_blob_store()
    assert isinstance(default, LocalBlobStore)
    assert default.root == tmp_path / ".balances"
    bare = open_blob_store("file://")
    assert isinstance(bare, LocalBlobStore)
    assert bare.root == tmp_path / ".balances"
    absolute = open_blob_store(f"file://{tmp_path}/abs", fsync=False)
    assert isinstance(absolute, LocalBlobStore)
    assert absolute.root == tmp_path / "abs"


async def test_s3_url_builds_a_store_without_io() -> None:
    from balances.blobs.s3 import S3BlobStore

    store = open_blob_store(
        "s3://bucket/prefix",
        endpoint="http://127.0.0.1:9",
        region="us-east-1",
        allow_http=True,
        access_key_id="k",
        secret_access_key="s",
    )
    assert isinstance(store, S3BlobStore)
    await store.close()


async def test_vercel_url_needs_a_token() -> None:
    from balances.blobs.vercel import VercelBlobStore

    with pytest.raises(ConfigError, match="token"):
        open_blob_store("vercel://")
    store = open_blob_store(
        "vercel://", token="vercel_blob_rw_store42_secret", api_url=None, access="private"
    )
    assert isinstance(store, VercelBlobStore)
    assert store.store_id == "store42"
    await store.close()


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("ftp://host/x", {}, "unknown blob store URL scheme"),
        ("/just/a/path", {}, "has no scheme"),
        ("memory://", {"fsync": True}, "does not take"),
        ("file://./x", {"token": "t"}, "does not take"),
        ("vercel://", {"token": "vercel_blob_rw_a_b", "bucket": "x"}, "does not take"),
        ("vercel://store", {"token": "vercel_blob_rw_a_b"}, "not a path"),
        ("vercel://", {"token": "vercel_blob_rw_a_b", "cache_control_max_age": 10}, "at least"),
        ("s3://bucket", {"no_such_obstore_option": "x"}, "cannot open"),
        ("gs://bucket", {"endpoint": "http://x"}, "s3:// URLs only"),
    ],
)
def test_bad_urls_and_options_are_config_errors(
    url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        open_blob_store(url, **options)
