"""Current balances: merging reads by time, and the per-address blob encoding."""

from __future__ import annotations

import asyncio

import pytest

from balances.blobs import (
    CREATE,
    DEFAULT_CONTENT_TYPE,
    OVERWRITE,
    BlobInfo,
    MemoryBlobStore,
    WriteMode,
)
from balances.domain import Principal, TokenId
from balances.domain.current import (
    LISTING_KEY,
    AddressBalances,
    AddressUpdate,
    Stamp,
    TokenKindName,
    TokenState,
    merge,
    merge_views,
)
from balances.errors import (
    BalancesError,
    ChainUnavailableError,
    CorruptBlobError,
    WriteConflictError,
)
from balances.stores.encoding import encode_document
from balances.stores.spec.address_blobs import (
    FORMAT,
    KIND,
    AddressBlobBalanceStore,
    decode_balances,
    encode_balances,
)

ADDRESS = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"
NATIVE = f"{DEPLOYER}.charisma-token"
OTHER_NATIVE = f"{DEPLOYER}.other-token"
MAP = f"{DEPLOYER}.charisma-token-subnet-v1"
MAX_U128 = 2**128 - 1
T1, T2, T3 = Stamp(1_000.0, 10), Stamp(2_000.0, 20), Stamp(3_000.0, None)


def _update(
    stamp: Stamp,
    amounts: dict[str, tuple[int, TokenKindName]],
    *,
    listing: bool = False,
    errors: dict[str, ChainUnavailableError] | None = None,
) -> AddressUpdate:
    return AddressUpdate(ADDRESS, stamp, amounts, listing_complete=listing, errors=errors or {})


def _known() -> AddressBalances:
    """STX 9, NATIVE 5, MAP 7, all read at T2 with a complete listing."""
    return merge(
        None,
        _update(T2, {"stx": (9, "stx"), NATIVE: (5, "native"), MAP: (7, "map")}, listing=True),
    ).balances


def _amounts(balances: AddressBalances) -> dict[str, int]:
    return {key: state.amount for key, state in balances.tokens.items()}


# --- merge -------------------------------------------------------------------


def test_the_first_merge_records_every_read_and_needs_a_write() -> None:
    merged = merge(None, _update(T1, {"stx": (9, "stx"), NATIVE: (5, "native")}))
    assert merged.needs_write is True
    assert merged.balances.tokens == {
        "stx": TokenState(9, T1, "stx"),
        NATIVE: TokenState(5, T1, "native"),
    }
    assert merged.balances.listing is None
    assert {(c.key, c.old, c.new) for c in merged.changes} == {("stx", None, 9), (NATIVE, None, 5)}


def test_an_older_read_never_replaces_a_newer_one() -> None:
    known = _known()
    merged = merge(known, _update(T1, {"stx": (1, "stx"), NATIVE: (2, "native")}, listing=True))
    assert _amounts(merged.balances) == {"stx": 9, NATIVE: 5, MAP: 7}
    assert merged.balances.tokens["stx"].stamp == T2
    assert merged.balances.listing == T2
    assert merged.changes == ()
    assert merged.needs_write is False


def test_an_older_complete_listing_does_not_zero_a_newer_read() -> None:
    known = _known()
    merged = merge(known, _update(T1, {}, listing=True))
    assert merged.balances.tokens[NATIVE] == TokenState(5, T2, "native")


def test_a_newer_read_replaces_and_reports_the_change() -> None:
    merged = merge(_known(), _update(T3, {"stx": (4, "stx")}))
    assert merged.balances.tokens["stx"] == TokenState(4, T3, "stx")
    assert merged.balances.tokens[NATIVE].stamp == T2  # not re-read: untouched
    assert [(c.key, c.kind, c.old, c.new, c.stamp) for c in merged.changes] == [
        ("stx", "stx", 9, 4, T3)
    ]
    assert merged.needs_write is True


def test_a_complete_listing_zeroes_absent_native_tokens_only() -> None:
    merged = merge(_known(), _update(T3, {OTHER_NATIVE: (3, "native")}, listing=True))
    tokens = merged.balances.tokens
    assert tokens[NATIVE] == TokenState(0, T3, "native")
    assert tokens[OTHER_NATIVE] == TokenState(3, T3, "native")
    assert tokens[MAP] == TokenState(7, T2, "map")  # no listing shows map tokens
    assert tokens["stx"] == TokenState(9, T2, "stx")  # STX is not in the FT listing
    assert merged.balances.listing == T3
    assert {(c.key, c.old, c.new) for c in merged.changes} == {
        (NATIVE, 5, 0),
        (OTHER_NATIVE, None, 3),
    }


def test_without_a_complete_listing_nothing_becomes_zero() -> None:
    merged = merge(_known(), _update(T3, {"stx": (9, "stx")}))
    assert merged.balances.tokens[NATIVE] == TokenState(5, T2, "native")
    assert merged.balances.listing == T2


def test_a_listed_native_token_never_seen_reads_zero_but_a_map_token_is_unknown() -> None:
    balances = merge(None, _update(T1, {"stx": (1, "stx")}, listing=True)).balances
    assert balances.state(TokenId.parse(OTHER_NATIVE), "native") == TokenState(0, T1, "native")
    assert balances.state(TokenId.parse(MAP), "map") is None
    unlisted = merge(None, _update(T1, {"stx": (1, "stx")})).balances
    assert unlisted.state(TokenId.parse(OTHER_NATIVE), "native") is None


def test_a_read_confirming_the_stored_amounts_needs_no_write() -> None:
    known = _known()
    merged = merge(known, _update(T3, {"stx": (9, "stx"), NATIVE: (5, "native")}, listing=True))
    assert merged.needs_write is False
    assert merged.changes == ()
    # The fresher stamps are kept in memory, for the caller.
    assert merged.balances.tokens["stx"].stamp == T3
    assert merged.balances.listing == T3


def test_the_first_complete_listing_is_worth_a_write() -> None:
    known = merge(None, _update(T1, {"stx": (9, "stx")})).balances
    merged = merge(known, _update(T2, {"stx": (9, "stx")}, listing=True))
    assert merged.changes == ()
    assert merged.needs_write is True
    assert merged.balances.listing == T2


def test_a_new_token_needs_a_write() -> None:
    merged = merge(_known(), _update(T3, {OTHER_NATIVE: (0, "native")}))
    assert merged.needs_write is True
    assert [(c.key, c.old, c.new) for c in merged.changes] == [(OTHER_NATIVE, None, 0)]


def _errors(balances: AddressBalances) -> dict[str, BalancesError]:
    return {key: failure.error for key, failure in balances.failures.items()}


def test_errors_are_kept_in_memory_and_cleared_by_a_successful_read() -> None:
    down = ChainUnavailableError("503")
    failed = merge(
        _known(), _update(T3, {}, errors={"stx": down, LISTING_KEY: down, MAP: down})
    ).balances
    assert _errors(failed) == {"stx": down, LISTING_KEY: down, MAP: down}
    assert {failure.stamp for failure in failed.failures.values()} == {T3}
    assert _amounts(failed) == {"stx": 9, NATIVE: 5, MAP: 7}  # the old amounts stand
    assert failed.error(TokenId.parse(NATIVE), "native") is down  # via the listing
    assert failed.error(TokenId.parse(MAP), "map") is down
    later = Stamp(4_000.0, 40)
    healed = merge(failed, _update(later, {"stx": (9, "stx")}, listing=True)).balances
    assert _errors(healed) == {MAP: down}
    assert healed.error(TokenId.parse(NATIVE), "native") is None
    # Failures are never stored.
    assert decode_balances(encode_balances(failed), "k").failures == {}


def test_a_failed_refresh_changes_no_amount_and_needs_no_write() -> None:
    down = ChainUnavailableError("503")
    merged = merge(_known(), _update(T3, {}, errors={"stx": down}))
    assert merged.needs_write is False
    assert merged.changes == ()


def test_merge_views_lays_newer_reads_over_older_ones() -> None:
    older = _known()
    newer = merge(None, _update(T3, {"stx": (1, "stx")})).balances
    stale = merge(None, _update(T1, {NATIVE: (100, "native")})).balances
    view = merge_views(older, newer)
    assert _amounts(view) == {"stx": 1, NATIVE: 5, MAP: 7}
    assert merge_views(older, stale).tokens[NATIVE] == TokenState(5, T2, "native")


def test_newest_is_the_latest_read() -> None:
    assert _known().newest == T2.at
    assert AddressBalances(ADDRESS).newest is None


# --- the blob encoding ------------------------------------------------------------


def _sample() -> AddressBalances:
    return AddressBalances(
        ADDRESS,
        {
            "stx": TokenState(MAX_U128, T1, "stx"),
            NATIVE: TokenState(0, T2, "native"),
            f"{DEPLOYER}.multi::a": TokenState(2**64, T2, "native"),
            MAP: TokenState(7, T3, "map"),
        },
        listing=T2,
    )


@pytest.mark.parametrize("listing", [None, T2])
def test_balances_round_trip_exactly(listing: Stamp | None) -> None:
    balances = AddressBalances(ADDRESS, _sample().tokens, listing)
    decoded = decode_balances(encode_balances(balances), "current/x")
    assert decoded == balances
    assert decoded.tokens["stx"].amount == MAX_U128
    assert isinstance(decoded.tokens["stx"].amount, int)
    assert decoded.tokens[MAP].stamp.block_height is None


def test_an_empty_address_round_trips() -> None:
    empty = AddressBalances(ADDRESS)
    assert decode_balances(encode_balances(empty), "current/x") == empty


def test_the_encoding_is_compact_and_deterministic() -> None:
    assert encode_balances(_sample()) == encode_balances(_sample())
    many = AddressBalances(
        ADDRESS, {f"{DEPLOYER}.t{i}": TokenState(i, T1, "native") for i in range(200)}
    )
    # zstd JSON with one shared stamp: well under 40 bytes a token.
    assert len(encode_balances(many)) < 200 * 40


def _document(**changes: object) -> bytes:
    body: dict[str, object] = {
        "address": ADDRESS,
        "stamps": [[1000.0, 10]],
        "tokens": [["stx", "5", 0, "stx"]],
        "listing": None,
    }
    body.update(changes)
    return encode_document(KIND, FORMAT, body)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not zstd at all",
        encode_document("tracked-set", 1, {"addresses": []}),
        encode_document(KIND, FORMAT + 1, {}),
        _document(tokens=[["stx", "-5", 0, "stx"]]),
        _document(tokens=[["stx", "1.5", 0, "stx"]]),
        _document(tokens=[["stx", 5, 0, "stx"]]),
        _document(tokens=[["stx", "5", 3, "stx"]]),
        _document(tokens=[["stx", "5", 0, "nft"]]),
        _document(tokens=[["stx", "5", 0]]),
        _document(stamps=[[1000.0, "ten"]]),
        _document(stamps=[["soon", 10]]),
        _document(listing=4),
        _document(tokens=None),
        _document(tokens=[["stx", str(2**128), 0, "stx"]]),
        _document(tokens=[["stx", "5", -1, "stx"]]),
    ],
    ids=[
        "empty",
        "not-zstd",
        "other-kind",
        "newer-format",
        "negative-amount",
        "fractional-amount",
        "numeric-amount",
        "stamp-index-out-of-range",
        "unknown-kind",
        "short-row",
        "bad-height",
        "bad-time",
        "bad-listing-index",
        "no-tokens",
        "amount-over-u128",
        "negative-stamp-index",
    ],
)
def test_a_corrupt_blob_is_reported(data: bytes) -> None:
    with pytest.raises(CorruptBlobError, match="current/x"):
        decode_balances(data, "current/x")


# --- the store ------------------------------------------------------------------------


async def test_the_store_applies_updates_and_writes_only_on_change() -> None:
    blobs = MemoryBlobStore()
    store = AddressBlobBalanceStore(blobs)
    principal = Principal.parse(ADDRESS)
    assert await store.load(principal) is None
    await store.apply(_update(T1, {"stx": (9, "stx")}, listing=True))
    etag = (await blobs.head(store.key(ADDRESS))).etag
    confirmed = await store.apply(_update(T2, {"stx": (9, "stx")}, listing=True))
    assert confirmed.needs_write is False
    assert (await blobs.head(store.key(ADDRESS))).etag == etag
    await store.apply(_update(T3, {"stx": (8, "stx")}))
    loaded = await store.load(principal)
    assert loaded is not None
    assert loaded.tokens["stx"] == TokenState(8, T3, "stx")
    assert (await store.load_many([principal, principal])) == {ADDRESS: loaded}


async def test_concurrent_applies_to_one_address_lose_nothing() -> None:
    blobs = MemoryBlobStore()
    stores = [AddressBlobBalanceStore(blobs) for _ in range(5)]
    keys = [f"{DEPLOYER}.t{i}" for i in range(5)]
    await asyncio.gather(
        *(
            store.apply(_update(Stamp(1_000.0 + i), {key: (i + 1, "native")}))
            for i, (store, key) in enumerate(zip(stores, keys, strict=True))
        )
    )
    loaded = await stores[0].load(Principal.parse(ADDRESS))
    assert loaded is not None
    assert _amounts(loaded) == {key: i + 1 for i, key in enumerate(keys)}


async def test_a_corrupt_stored_blob_is_reported_and_never_overwritten() -> None:
    blobs = MemoryBlobStore()
    store = AddressBlobBalanceStore(blobs)
    await blobs.put(store.key(ADDRESS), b"garbage", mode=CREATE)
    with pytest.raises(CorruptBlobError):
        await store.load(Principal.parse(ADDRESS))
    with pytest.raises(CorruptBlobError):
        await store.apply(_update(T1, {"stx": (1, "stx")}))
    assert (await blobs.get(store.key(ADDRESS))).data == b"garbage"


class AlwaysRaced(MemoryBlobStore):
    """A rival writer gets in just before every write."""

    rivals = 0

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        self.rivals += 1
        rival = TokenState(self.rivals, Stamp(float(self.rivals)), "native")
        await super().put(key, encode_balances(AddressBalances(ADDRESS, {"rival": rival})))
        return await super().put(key, data, mode=mode, content_type=content_type)


async def test_a_store_that_keeps_losing_races_gives_up_without_losing_anything() -> None:
    blobs = AlwaysRaced()
    store = AddressBlobBalanceStore(blobs, attempts=3)
    with pytest.raises(WriteConflictError, match="3"):
        await store.apply(_update(T1, {"stx": (1, "stx")}))
    assert blobs.rivals == 3
    loaded = await store.load(Principal.parse(ADDRESS))
    assert loaded is not None
    assert _amounts(loaded) == {"rival": 3}  # the rival's write stands
