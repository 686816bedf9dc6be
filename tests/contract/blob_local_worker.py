"""A separate process that uses LocalBlobStore, for the cross-process tests.

    python blob_local_worker.py increment ROOT KEY COUNT
        print "ready", wait for a line on stdin, then add 1 to the decimal counter
        in KEY, COUNT times (read, if-match, retry); print the conflicts met
    python blob_local_worker.py churn ROOT KEY SIZE
        overwrite KEY with self-checking SIZE-byte blobs forever; prints "ready"
        after the first write (the test kills it with SIGKILL)

A churned blob is ``sequence (8 bytes) || filler || sha256(sequence || filler)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from balances.blobs import IfMatch, LocalBlobStore
from balances.errors import PreconditionFailedError


def churn_payload(sequence: int, size: int) -> bytes:
    head = sequence.to_bytes(8, "big")
    filler = bytes([sequence % 251]) * (size - 8 - 32)
    return head + filler + hashlib.sha256(head + filler).digest()


def is_whole(data: bytes, size: int) -> bool:
    return len(data) == size and hashlib.sha256(data[:-32]).digest() == data[-32:]


async def increment(store: LocalBlobStore, key: str, count: int) -> int:
    conflicts = 0
    for _ in range(count):
        while True:
            blob = await store.get(key)
            try:
                await store.put(key, b"%d" % (int(blob.data) + 1), mode=IfMatch(blob.etag))
                break
            except PreconditionFailedError:
                conflicts += 1
    return conflicts


async def churn(store: LocalBlobStore, key: str, size: int) -> None:
    payloads = [churn_payload(sequence, size) for sequence in range(4)]
    sequence = 0
    while True:
        await store.put(key, payloads[sequence % 4])
        if sequence == 0:
            print("ready", flush=True)
        sequence += 1


async def main(argv: list[str]) -> None:
    command, root, key, number = argv
    store = LocalBlobStore(root)
    if command == "increment":
        print("ready", flush=True)
        sys.stdin.readline()  # start together with the other workers
        print(await increment(store, key, int(number)), flush=True)
    elif command == "churn":
        await churn(store, key, int(number))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
