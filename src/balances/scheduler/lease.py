"""Leadership among replicas: one lease blob, written only with conditional puts.

Several replicas share one blob store; exactly one of them (the holder of the
lease ``scheduler/lease``) runs the scheduled tasks, so no task runs twice. The
lease names its holder and the wall-clock time it expires. Every write is
conditional, so two replicas can never both believe they won the same race:

- no lease yet: ``Create`` it (fails if another replica created it first);
- our own lease: renew it with ``IfMatch(etag)`` once ``renew_fraction`` of it has
  passed (by default at half the lease);
- another replica's lease that has *expired*: take it over with ``IfMatch(etag)``
  (fails if its holder renewed it, or a third replica took it over, meanwhile);
- another replica's live lease: follow, and read it again after half a lease (or
  at its expiry, if sooner): a released lease is taken within half a lease.

A renewal that fails with :class:`~balances.errors.PreconditionFailedError` means
another replica holds the lease now: we are a follower at once. A renewal that
fails for another reason (the store is unreachable) keeps us leader only until our
lease expires by our own clock. A leader that dies stops renewing and is replaced
once its lease expires. Expiry is compared across replicas' clocks: keep
``lease_seconds`` well above their skew. A leader that stops cleanly
(:meth:`Lease.release`) writes its lease as expired, so a new replica leads at once
and a following one at its next read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from balances.blobs import CREATE, BlobStore, IfMatch, WriteMode, blob_key
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    CorruptBlobError,
    PreconditionFailedError,
)
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

log = logging.getLogger("balances.scheduler")
KIND = "scheduler-lease"
FORMAT = 1
LEASE_KEY = blob_key("scheduler", "lease")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The lease as stored: its holder, when it expires, and its term (one per holder)."""

    owner: str
    expires_at: float
    acquired_at: float
    renewed_at: float
    term: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "expires_at": self.expires_at,
            "acquired_at": self.acquired_at,
            "renewed_at": self.renewed_at,
            "term": self.term,
        }


def encode_lease(record: LeaseRecord) -> bytes:
    return encode_document(KIND, FORMAT, record.as_dict())


def decode_lease(data: bytes, where: str) -> LeaseRecord:
    document: Mapping[str, Any] = decode_document(data, KIND, FORMAT, where=where)
    try:
        return LeaseRecord(
            str(document["owner"]),
            float(document["expires_at"]),
            float(document["acquired_at"]),
            float(document["renewed_at"]),
            int(document["term"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


class Lease:
    """This replica's view of the lease, and the writes that take or keep it."""

    def __init__(
        self,
        blobs: BlobStore,
        owner: str,
        *,
        lease_seconds: float = 60.0,
        renew_fraction: float = 0.5,
        key: str = LEASE_KEY,
    ) -> None:
        self._blobs = blobs
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.renew_fraction = renew_fraction
        self.key = key
        #: The last lease seen (ours or another's), and the etag of our own write.
        self.record: LeaseRecord | None = None
        self._etag: str | None = None
        #: After a failed read, when to try again (the store may be down).
        self._retry_at: float | None = None
        #: When a follower last read the lease (it reads again after half a lease).
        self._read_at = float("-inf")

    @property
    def leader(self) -> bool:
        """We hold the lease as last written (it may have expired since)."""
        return self._etag is not None

    def holds(self, now: float) -> bool:
        """We hold the lease and it has not expired at ``now``: tasks may run."""
        return self.leader and self.record is not None and now < self.record.expires_at

    def next_check(self, now: float) -> float:
        """When :meth:`step` has something to do: renew ours, or see whether another's
        has expired."""
        if self.leader and self.record is not None:
            renew_at = self.record.renewed_at + self.lease_seconds * self.renew_fraction
            return max(renew_at, self._retry_at or renew_at)
        if self.record is None:
            return max(self._retry_at or now, now)
        look_again = min(self.record.expires_at, self._read_at + self.lease_seconds / 2)
        return max(look_again, self._retry_at or now, now)

    async def step(self, now: float) -> bool:
        """Acquire, renew or observe the lease as due at ``now``; True if we may run tasks."""
        if self.leader:
            if now < self.next_check(now):
                return self.holds(now)
            return await self._renew(now)
        if now < self.next_check(now):
            return False
        return await self._try_acquire(now)

    async def observe(self) -> LeaseRecord | None:
        """Read the lease without writing (for status); None when there is none."""
        found = await self._read()
        self.record = None if found is None else found[0]
        return self.record

    async def release(self, now: float) -> None:
        """Give the lease up: write it as expired, for the next replica to take."""
        if self._etag is None or self.record is None:
            return
        ended = LeaseRecord(self.owner, now, self.record.acquired_at, now, self.record.term)
        try:
            await self._write(ended, IfMatch(self._etag))
        except BalancesError as error:
            log.info("lease not released (%s); it expires by itself", error)
        self._etag = None

    async def _renew(self, now: float) -> bool:
        assert self.record is not None
        assert self._etag is not None
        renewed = LeaseRecord(
            self.owner, now + self.lease_seconds, self.record.acquired_at, now, self.record.term
        )
        try:
            await self._write(renewed, IfMatch(self._etag))
        except PreconditionFailedError:
            log.warning("%s lost the scheduler lease", self.owner)
            self._etag = None
            await self._observe_quietly()
            return False
        except BalancesError as error:
            log.warning("lease renewal failed (%s); leading until it expires", error)
            self._retry_at = now + self.lease_seconds * (1 - self.renew_fraction) / 4
            return self.holds(now)
        self._retry_at = None
        return True

    async def _try_acquire(self, now: float) -> bool:
        """Create the lease, or take over our own or an expired one."""
        try:
            found = await self._read()
        except BalancesError as error:
            log.warning("scheduler lease unreadable: %s", error)
            self._retry_at = now + self.lease_seconds * self.renew_fraction
            return False
        self._retry_at, self._read_at = None, now
        if found is None:
            return await self._claim(now, None, CREATE)
        current, etag = found
        self.record = current
        if current is not None and current.owner != self.owner and now < current.expires_at:
            return False
        return await self._claim(now, current, IfMatch(etag))

    async def _claim(self, now: float, current: LeaseRecord | None, mode: WriteMode) -> bool:
        ours = current is not None and current.owner == self.owner
        term = 1 if current is None else current.term + (0 if ours else 1)
        acquired = current.acquired_at if ours and current is not None else now
        record = LeaseRecord(self.owner, now + self.lease_seconds, acquired, now, term)
        try:
            await self._write(record, mode)
        except PreconditionFailedError:
            await self._observe_quietly()
            return False
        except BalancesError as error:
            log.warning("could not take the scheduler lease: %s", error)
            self._retry_at = now + self.lease_seconds * self.renew_fraction
            return False
        if not ours:
            log.info("%s leads the scheduler (term %d)", self.owner, term)
        return True

    async def _observe_quietly(self) -> None:
        """After a lost write: learn who holds the lease now, if the store answers."""
        try:
            await self.observe()
        except BalancesError as error:
            log.info("lease unreadable: %s", error)

    async def _read(self) -> tuple[LeaseRecord | None, str] | None:
        """(record, etag) of the stored lease, None if there is none. A corrupt lease
        reads as a record of None: it may be taken over, conditionally."""
        try:
            blob = await self._blobs.get(self.key)
        except BlobNotFoundError:
            return None
        try:
            return decode_lease(blob.data, self.key), blob.etag
        except CorruptBlobError as error:
            log.warning("replacing an unreadable lease: %s", error)
            return None, blob.etag

    async def _write(self, record: LeaseRecord, mode: WriteMode) -> None:
        info = await self._blobs.put(
            self.key, encode_lease(record), mode=mode, content_type=CONTENT_TYPE
        )
        self.record, self._etag = record, info.etag
