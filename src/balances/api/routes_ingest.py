"""Ingestion routes: push deliveries (Chainhooks, a node's event observer) and status.

- ``POST /ingest/chainhook``: a Chainhook delivery (v2 or v1), authenticated by
  ``Authorization: Bearer <BALANCES_INGEST__CHAINHOOK_SECRET>``; answered once its
  blocks are applied (a retried delivery changes nothing).
- ``POST /new_block``, ``/new_burn_block``, ``/new_mempool_tx``, ``/drop_mempool_tx``
  (and the node's other observer posts, acknowledged): a stacks-node's
  ``[[events_observer]]``. The node sends no credentials, so only the configured
  client addresses (``BALANCES_INGEST__OBSERVER_HOSTS``, loopback by default) may post.
- ``GET /ingest/status``: the cursor, the lag and what ingestion has done.

A delivery is refused whole: a wrong secret is 401, a malformed body 400, and
nothing of it is applied.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, Request

from balances.api.deps import Service
from balances.api.errors import ApiError
from balances.api.routes_balances import ERRORS
from balances.chain.chainhook import decode_chainhook
from balances.chain.observer import decode_dropped, decode_mempool, decode_new_block
from balances.errors import InvalidDeliveryError
from balances.ingest.feed import Apply, IngestEvent, Pending, Rollback
from balances.service.balances import BalanceService

router = APIRouter(tags=["ingestion"], responses=ERRORS)
#: The routes push deliveries arrive on (their bodies are whole blocks).
DELIVERY_PATHS = (
    "/ingest/chainhook",
    "/new_block",
    "/new_burn_block",
    "/new_mempool_tx",
    "/drop_mempool_tx",
    "/new_microblocks",
    "/attachments/new",
    "/stackerdb_chunks",
    "/proposal_response",
)
_ACK = {"status": "ok"}


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        raise InvalidDeliveryError(f"the body is not JSON: {error}") from error


def _queue(svc: BalanceService, source: str) -> Any:
    ingestion = svc.ingestion
    if ingestion is None or ingestion.source != source or ingestion.push is None:
        raise ApiError(
            503,
            "ingestion_unavailable",
            f"{source} deliveries are not ingested here (set BALANCES_INGEST__SOURCE={source})",
        )
    return ingestion.push


def _check_bearer(svc: BalanceService, request: Request) -> None:
    secret = svc.config.ingest.chainhook_secret
    if secret is None:
        raise ApiError(
            403, "disabled", "Chainhook deliveries need BALANCES_INGEST__CHAINHOOK_SECRET set"
        )
    given = request.headers.get("authorization", "")
    expected = f"Bearer {secret.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "a Chainhook delivery needs its Bearer secret")


@router.post("/ingest/chainhook", summary="Apply a Chainhook delivery (v2, or v1 predicates)")
async def chainhook(svc: Service, request: Request) -> dict[str, Any]:
    _check_bearer(svc, request)
    queue = _queue(svc, "chainhook")
    delivery = decode_chainhook(await _json(request))
    events: list[IngestEvent] = []
    if delivery.rollback:
        events.append(Rollback(delivery.rollback))
    events += [Apply(block) for block in delivery.apply]
    await queue.deliver(events)
    return {"applied": len(delivery.apply), "rolled_back": len(delivery.rollback)}


def _check_observer(svc: BalanceService, request: Request) -> None:
    host = request.client.host if request.client is not None else ""
    if host not in svc.config.ingest.observer_hosts:
        raise ApiError(
            403,
            "forbidden",
            f"{host[:60]} may not post node events (allowed: BALANCES_INGEST__OBSERVER_HOSTS)",
        )


@router.post("/new_block", summary="A stacks-node's new block (event observer)")
async def new_block(svc: Service, request: Request) -> dict[str, str]:
    _check_observer(svc, request)
    queue = _queue(svc, "observer")
    block = decode_new_block(await _json(request))
    await queue.deliver([Apply(block)])
    return _ACK


@router.post("/new_mempool_tx", summary="Transactions a stacks-node accepted (event observer)")
async def new_mempool_tx(svc: Service, request: Request) -> dict[str, str]:
    _check_observer(svc, request)
    queue = _queue(svc, "observer")
    await queue.deliver([Pending(added=tuple(decode_mempool(await _json(request))))])
    return _ACK


@router.post("/drop_mempool_tx", summary="Transactions a stacks-node dropped (event observer)")
async def drop_mempool_tx(svc: Service, request: Request) -> dict[str, str]:
    _check_observer(svc, request)
    queue = _queue(svc, "observer")
    await queue.deliver([Pending(dropped=tuple(decode_dropped(await _json(request))))])
    return _ACK


@router.post("/new_burn_block", summary="A Bitcoin block (event observer; acknowledged)")
async def new_burn_block(svc: Service, request: Request) -> dict[str, str]:
    _check_observer(svc, request)
    await _json(request)  # a malformed post is still a 400
    return _ACK


@router.post("/new_microblocks", include_in_schema=False)
@router.post("/attachments/new", include_in_schema=False)
@router.post("/stackerdb_chunks", include_in_schema=False)
@router.post("/proposal_response", include_in_schema=False)
async def other_node_event(svc: Service, request: Request) -> dict[str, str]:
    """Other observer posts: acknowledged so the node does not retry them forever."""
    _check_observer(svc, request)
    return _ACK


@router.get("/ingest/status", summary="Block ingestion: the cursor, the lag and what it did")
async def ingest_status(svc: Service) -> dict[str, Any]:
    ingestion = svc.ingestion
    if ingestion is None:
        return {"enabled": svc.config.ingest.enabled, "running": False, "source": None}
    return {"enabled": svc.config.ingest.enabled, **ingestion.status().as_dict()}
