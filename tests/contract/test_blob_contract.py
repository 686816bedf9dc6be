"""The BlobStore contract: every backend must behave the same (see conftest for backends)."""

from __future__ import annotations

import asyncio

import pytest

from balances.blobs import (
    CREATE,
    OVERWRITE,
    BlobStore,
    IfMatch,
    blob_key,
    blob_key_parts,
)
from balances.errors import (
    BlobNotFoundError,
    BlobStoreError,
    InvalidBlobKeyError,
    PreconditionFailedError,
)

HOSTILE_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/./b",
    "a//b",
    "a/",
    ".hidden",
    "a/.locks/x",
    "a\\b",
    "..\\..\\windows",
    "nul\x00byte",
    "new\nline",
    "tab\there",
    "del\x7f",
    "e\u0301",  # not NFC: would merge with "é" on normalising file systems
    "x" * 951,
    "ü" * 476,  # 952 bytes of UTF-8
    "seg/" + "s" * 201,
]


async def test_put_then_get_returns_bytes_etag_and_metadata(store: BlobStore) -> None:
    info = await store.put("balances/x.json", b'{"a":1}', content_type="application/json")
    blob = await store.get("balances/x.json")
    assert blob.data == b'{"a":1}'
    assert blob.etag == info.etag != ""
    assert blob.size == info.size == 7
    assert blob.content_type is not None
    assert blob.content_type.startswith("application/json")
    assert blob.uploaded_at is not None


async def test_head_matches_get(store: BlobStore) -> None:
    await store.put("h/blob.bin", bytes(range(256)) * 4)
    info = await store.head("h/blob.bin")
    blob = await store.get("h/blob.bin")
    assert (info.key, info.etag, info.size) == ("h/blob.bin", blob.etag, 1024)
    assert info.content_type == blob.content_type


async def test_empty_blob_round_trips(store: BlobStore) -> None:
    await store.put("empty", b"")
    assert (await store.get("empty")).data == b""
    assert (await store.head("empty")).size == 0


async def test_missing_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        await store.get("no/such/blob")
    with pytest.raises(BlobNotFoundError):
        await store.head("no/such/blob")


async def test_overwrite_replaces_and_changes_etag(store: BlobStore) -> None:
    first = await store.put("k", b"one")
    second = await store.put("k", b"two", mode=OVERWRITE)
    assert first.etag != second.etag
    assert (await store.get("k")).data == b"two"


async def test_create_succeeds_once_then_fails(store: BlobStore) -> None:
    await store.put("created", b"first", mode=CREATE)
    with pytest.raises(PreconditionFailedError):
        await store.put("created", b"second", mode=CREATE)
    assert (await store.get("created")).data == b"first"


async def test_if_match_current_etag_writes(store: BlobStore) -> None:
    info = await store.put("m", b"v1")
    new = await store.put("m", b"v2", mode=IfMatch(info.etag))
    blob = await store.get("m")
    assert blob.data == b"v2"
    assert blob.etag == new.etag


async def test_if_match_stale_etag_fails_and_keeps_data(store: BlobStore) -> None:
    stale = await store.put("m", b"v1")
    await store.put("m", b"v2")
    with pytest.raises(PreconditionFailedError):
        await store.put("m", b"v3", mode=IfMatch(stale.etag))
    assert (await store.get("m")).data == b"v2"


async def test_if_match_on_missing_blob_fails(store: BlobStore) -> None:
    info = await store.put("gone", b"x")
    await store.delete("gone")
    with pytest.raises(PreconditionFailedError):
        await store.put("gone", b"y", mode=IfMatch(info.etag))
    with pytest.raises(BlobNotFoundError):
        await store.get("gone")


async def test_delete_many_ignores_missing(store: BlobStore) -> None:
    for key in ("d/1", "d/2", "d/3"):
        await store.put(key, b"x")
    await store.delete(["d/1", "d/3", "d/never-existed"])
    await store.delete([])
    assert (await store.list("d/")).keys == ["d/2"]
    await store.delete("d/2")
    with pytest.raises(BlobNotFoundError):
        await store.get("d/2")


async def test_list_orders_keys_and_matches_string_prefixes(store: BlobStore) -> None:
    keys = ["SP1/x", "SP2/y", "SP2z", "SP3", "a", "a-c", "a.blob/c", "a/b", "a/b/c", "b"]
    for key in reversed(keys):
        await store.put(key, key.encode())
    assert (await store.list()).keys == keys
    assert (await store.list("SP2")).keys == ["SP2/y", "SP2z"]
    assert (await store.list("a/")).keys == ["a/b", "a/b/c"]
    assert (await store.list("a")).keys == ["a", "a-c", "a.blob/c", "a/b", "a/b/c"]
    assert (await store.list("zzz")).keys == []
    page = await store.list()
    assert page.cursor is None
    assert [item.size for item in page.items] == [len(key) for key in keys]


async def test_list_pages_follow_the_cursor(store: BlobStore) -> None:
    keys = [f"p/{index:03d}" for index in range(25)]
    await asyncio.gather(*(store.put(key, b"x") for key in keys))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list("p/", cursor=cursor, limit=7)
        assert len(page.items) <= 7
        seen += page.keys
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == keys
    assert pages == 4


async def test_listing_thousands_of_keys_across_pages(store: BlobStore) -> None:
    keys = sorted(f"many/{index % 7}/{index:05d}" for index in range(2500))
    limit = asyncio.Semaphore(32)

    async def put(key: str) -> None:
        async with limit:
            await store.put(key, b"")

    await asyncio.gather(*(put(key) for key in keys))
    await store.put("many-other", b"not under the prefix")
    listed = [key async for key in store.iter_keys("many/", page_size=300)]
    assert listed == keys
    first = await store.list("many/", limit=300)
    assert len(first.items) == 300
    assert first.cursor is not None
    assert [key async for key in store.iter_keys("many/3/", page_size=100)] == [
        key for key in keys if key.startswith("many/3/")
    ]


UNUSUAL_BUT_VALID_KEYS = [
    "odd/a b#c?d&e=f+g%h~i:j@k!l$m'n(o)p*q,r;s[t]u{v}w|x^y`z<>\"",
    "odd/ünï/çødé",
    "odd/日本語",
    "odd/emoji\U0001f600",
    "odd/%2F%2e%2E",
    "odd/x.blob",
    "odd/x.blob/y",
    "odd/x.blob_/z",
]


async def test_unusual_but_valid_keys_round_trip(store: BlobStore) -> None:
    for index, key in enumerate(UNUSUAL_BUT_VALID_KEYS):
        await store.put(key, b"%d" % index)
    assert [key async for key in store.iter_keys("odd/")] == sorted(UNUSUAL_BUT_VALID_KEYS)
    for index, key in enumerate(UNUSUAL_BUT_VALID_KEYS):
        assert (await store.get(key)).data == b"%d" % index


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=repr)
async def test_hostile_keys_are_rejected_before_any_io(store: BlobStore, key: str) -> None:
    await store.close()  # a valid key would now fail with "closed"; a bad one never gets there
    for call in (
        lambda: store.get(key),
        lambda: store.head(key),
        lambda: store.put(key, b"x"),
        lambda: store.delete(["fine", key]),
    ):
        with pytest.raises(InvalidBlobKeyError):
            await call()
    with pytest.raises(BlobStoreError) as closed:
        await store.get("fine")
    assert not isinstance(closed.value, InvalidBlobKeyError)


@pytest.mark.parametrize("prefix", ["/abs", "../up", "a//", ".x", "a\\b", "a\x00"], ids=repr)
async def test_hostile_prefixes_are_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        await store.list(prefix)


async def test_keys_built_from_hostile_parts_stay_distinct(store: BlobStore) -> None:
    parts = [
        ("../../etc/passwd",),
        ("a/b",),
        ("a", "b"),
        ("SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7.token-v1::asset",),
        ("with space", "ünïcode"),
        ("%2F",),
        (".",),
        ("..",),
        ("a\\b\x00c",),
    ]
    keys = [blob_key("safe", *group) for group in parts]
    assert len(set(keys)) == len(keys)
    for index, key in enumerate(keys):
        await store.put(key, str(index).encode())
    listed = [key async for key in store.iter_keys("safe/")]
    assert sorted(listed) == sorted(keys)
    for index, key in enumerate(keys):
        assert (await store.get(key)).data == str(index).encode()
        assert blob_key_parts(key) == ["safe", *parts[index]]


async def test_context_manager_closes(store_factory: object) -> None:
    assert callable(store_factory)
    async with store_factory() as opened:
        await opened.put("cm", b"x")
        assert (await opened.get("cm")).data == b"x"
    with pytest.raises(BlobStoreError):
        await opened.get("cm")
