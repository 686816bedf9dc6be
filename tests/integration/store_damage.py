"""Helpers of the damaged-store tests (imported explicitly, not a conftest).

:func:`populate` fills a store the way a running service does, so that every kind
of blob exists: the manifest, compacted shard, month and daily blobs, a journal
segment written after compaction, the tracked set, the token registry and
metadata, a backfill checkpoint, a price month and the scheduler's record.
:data:`DAMAGES` are the ways a blob goes bad (a bad copy, a full disk, a restore
from a partial backup, a bug), applied through the store or, for a local store,
to the file itself.
"""

from __future__ import annotations

import os
from typing import Any

from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, Kit

from balances.blobs import BlobStore, LocalBlobStore
from balances.errors import BalancesError
from balances.scheduler.state import TaskState, state_document
from balances.service.balances import BalanceService
from balances.stores.encoding import encode_document
from balances.testing import FakeChainServer

ADDRESSES = (HOLDER, OTHER)
__all__ = ["HOLDER", "NATIVE", "OTHER"]
DAMAGES = ("truncated", "garbage", "wrong-shape", "zero-length", "missing")
#: A blob of each kind that :func:`populate` writes (a key prefix; the first match).
KIND_KEYS = {
    "manifest": "v1/manifest",
    "journal-segment": "v1/journal/",
    "shard-current": "v1/current/",
    "series-month": "v1/month/",
    "daily-rollup": "v1/daily/",
    "tracked-set": "tracked",
    "token-registry": "tokens",
    "token-metadata": "token-metadata",
    "backfill-checkpoint": "backfill/",
    "price-month": "prices/",
    "scheduler-state": "scheduler/state",
}


def service(kit: Kit, server: FakeChainServer, **fields: Any) -> BalanceService:
    """A service on the kit's store that reads the map token and prices."""
    prices = {"url_template": f"{server.url}/prices/{{token_id}}"}
    return kit.service(map_tokens=[MAP_TOKEN], prices=prices, **fields)


async def populate(kit: Kit, server: FakeChainServer) -> None:
    """Write every kind of blob into ``kit.store`` through a real service."""
    kit.chain.set_price("stx", "1.50")
    svc = service(kit, server)
    for address in ADDRESSES:
        await svc.track(address)
    await svc.syncer.refresh_many([svc._principal(a) for a in ADDRESSES])
    await svc.backfill(HOLDER)
    await svc.sync_prices()
    await svc.sync_token_metadata()
    kit.clocks.advance(mono=3600, wall=3600)
    await svc.layout.maintain()
    kit.chain.transfer(NATIVE, HOLDER, OTHER, 5)
    kit.chain.advance_blocks(1)
    kit.clocks.advance(mono=3600, wall=3600)
    await svc.syncer.refresh_many([svc._principal(a) for a in ADDRESSES])
    record = state_document(kit.store, clock=kit.clocks.wall)
    await record.update(lambda states: {**states, "sync": TaskState(runs=1)})


async def key_of(store: BlobStore, kind: str, *, newest: bool = False) -> str:
    """A blob of ``kind`` (the first listed, or the last: the newest month)."""
    prefix = KIND_KEYS[kind]
    keys = sorted([key async for key in store.iter_keys(prefix)])
    assert keys, f"populate wrote no {kind} blob"
    if prefix in keys:
        return prefix
    return keys[-1] if newest else keys[0]


def damaged_bytes(damage: str, data: bytes, kind: str) -> bytes:
    if damage == "truncated":
        return data[: len(data) // 2]
    if damage == "garbage":
        return os.urandom(max(16, len(data)))
    if damage == "zero-length":
        return b""
    if damage == "wrong-shape":  # a readable document of the right kind and format
        return encode_document(kind, 1, {"x": [1]})
    raise AssertionError(damage)


async def damage(store: BlobStore, key: str, how: str, kind: str) -> None:
    """Damage ``key`` in place: through the store, or in the file of a local store
    (where a bad copy breaks the file's own frame too)."""
    if how == "missing":
        await store.delete(key)
        return
    if isinstance(store, LocalBlobStore) and how != "wrong-shape":
        path = store.path_of(key)  # the file itself: its frame breaks too
        path.write_bytes(damaged_bytes(how, path.read_bytes(), kind))
        return
    data = (await store.get(key)).data
    await store.put(key, damaged_bytes(how, data, _document_kind(kind)))


_DOCUMENT_KINDS = {
    "manifest": "lsm-manifest",
    "journal-segment": "journal-segment",
    "series-month": "series-month",
    "daily-rollup": "daily-rollup",
    "price-month": "price-history",
    "scheduler-state": "scheduler-state",
    "backfill-checkpoint": "backfill-checkpoint",
}


def _document_kind(kind: str) -> str:
    return _DOCUMENT_KINDS.get(kind, kind)


async def wrong_answers(
    service: BalanceService, kit: Kit, addresses: tuple[str, ...] = ADDRESSES
) -> list[str]:
    """Every answered balance that is not the chain's, and every token the chain
    has that an answer left out. A refused read (an error) is not wrong: it says
    it does not know."""
    wrong = []
    for address in addresses:
        try:
            answer = await service.get_all_balances(address)
        except BalancesError:
            continue
        answered = {b.token_id: b.amount for b in answer}
        held = {t for t, a in kit.chain.accounts(address).items() if a.balance}
        wrong += [
            f"{address} {t}: {a}, chain {kit.chain.balance(t, address)}"
            for t, a in answered.items()
            if a != kit.chain.balance(t, address)
        ]
        wrong += [f"{address} {t}: left out" for t in held - set(answered)]
    return wrong


async def stored_differences(service: BalanceService, kit: Kit) -> list[str]:
    """Every (address, token) whose stored amount is not the chain's."""
    found = await service.current.load_many([service._principal(a) for a in ADDRESSES])
    wrong = []
    for address in ADDRESSES:
        balances = found.get(address)
        held = {t: a.balance for t, a in kit.chain.accounts(address).items()}
        stored = {} if balances is None else {k: s.amount for k, s in balances.tokens.items()}
        for token in set(held) | set(stored):
            if stored.get(token, 0) != held.get(token, 0):
                wrong.append(
                    f"{address} {token}: stored {stored.get(token)}, chain {held.get(token)}"
                )
    return wrong
