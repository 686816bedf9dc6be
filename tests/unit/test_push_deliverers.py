"""The stand-in's push senders over real HTTP on loopback: what they POST, in which
order, with which secret, and that they retry until the receiver answers 2xx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from balances.testing import fake_address
from balances.testing.fake_chain.deliverers import ChainhookDeliverer, ObserverDeliverer
from balances.testing.fake_chain.ledger import FakeChain


class Receiver:
    """A minimal HTTP/1.1 server recording POSTs; the first ``failures`` get a 503."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.posts: list[tuple[str, str, Any]] = []  # (path, authorization, body)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        lowered = {k.lower(): v for k, v in fields.items()}
        body = await reader.readexactly(int(lowered.get("content-length", "0")))
        status = "503 Service Unavailable" if self.failures else "200 OK"
        if self.failures:
            self.failures -= 1
        else:
            path = head[0].split(" ")[1]
            self.posts.append((path, lowered.get("authorization", ""), json.loads(body)))
        writer.write(
            f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


async def _serve(receiver: Receiver) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _activity(chain: FakeChain) -> None:
    alice, bob = fake_address("alice"), fake_address("bob")
    chain.mint("stx", alice, 5_000_000)
    chain.transfer("stx", alice, bob, 1_234, fee=10)


async def test_chainhook_sender_retries_and_sends_a_reorg_as_one_rollback_delivery() -> None:
    receiver = Receiver(failures=2)
    server, url = await _serve(receiver)
    async with server:
        chain = FakeChain()
        sender = ChainhookDeliverer(chain, url + "/ingest/chainhook", "s3cret")
        _activity(chain)
        for _ in range(3):
            chain.mine_block()
        reorg = chain.reorg(3)
        await sender.deliver_pending()
    assert sender.attempts == len(receiver.posts) + 2
    assert {path for path, _, _ in receiver.posts} == {"/ingest/chainhook"}
    assert {auth for _, auth, _ in receiver.posts} == {"Bearer s3cret"}
    last = receiver.posts[-1][2]["event"]
    assert [b["block_identifier"]["hash"] for b in last["rollback"]] == [
        b.index_block_hash for b in reversed(reorg.orphaned)
    ]
    assert [b["block_identifier"]["hash"] for b in last["apply"]] == [
        b.index_block_hash for b in reorg.applied
    ]


async def test_observer_sender_posts_blocks_mempool_and_the_new_fork_only() -> None:
    receiver = Receiver(failures=1)
    server, url = await _serve(receiver)
    async with server:
        chain = FakeChain()
        sender = ObserverDeliverer(chain, url)
        _activity(chain)
        with chain.pending():
            chain.transfer("stx", fake_address("alice"), fake_address("carol"), 5)
        chain.drop_pending([entry.intent.tx_id for entry in chain.mempool])
        reorg = chain.reorg(2)
        await sender.deliver_pending()
    paths = [path for path, _, _ in receiver.posts]
    assert {"/new_block", "/new_burn_block", "/new_mempool_tx", "/drop_mempool_tx"} <= set(paths)
    blocks = [body for path, _, body in receiver.posts if path == "/new_block"]
    assert [b["index_block_hash"] for b in blocks[-len(reorg.applied) :]] == [
        b.index_block_hash for b in reorg.applied
    ]
    assert paths.index("/new_mempool_tx") < paths.index("/drop_mempool_tx")
