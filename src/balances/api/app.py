"""``create_app``: the REST API as a FastAPI app (OpenAPI at ``/docs``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import version
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from balances.api import (
    dashboard,
    routes_balances,
    routes_bulk,
    routes_history,
    routes_ingest,
    routes_stream,
    routes_webhooks,
)
from balances.api.bodylimit import BodyLimit
from balances.api.deps import Service
from balances.api.errors import install_error_handlers
from balances.api.fastpath import CachedBalanceFastPath
from balances.api.graphql import graphql_router
from balances.api.metrics import install_metrics
from balances.api.routing import yield_to_literal_routes
from balances.api.schemas import CacheOut, HealthOut, StorageOut, StorageProblemOut
from balances.api.tracking import AnonymousBudget, read_tracking_policy
from balances.config import BalanceServiceConfig
from balances.errors import BlobStoreError
from balances.scheduler import BalanceScheduler, scheduler_config
from balances.service.balances import BalanceService
from balances.service.ingest import Ingestion, supervise
from balances.service.series import BalanceSeriesAPI

DESCRIPTION = """Token balances on the Stacks blockchain: STX, SIP-010 tokens and map-based
("subnet") credit tokens, with the freshness of every answer (`updated_at`,
`block_height`, `source`, `stale`). Amounts are decimal strings in base units.
Write and admin routes need the `x-api-key` header."""

health_router = APIRouter(tags=["service"])


@health_router.get(
    "/health",
    response_model=HealthOut,
    summary="Is the service up and its store readable (the readiness check)",
    responses={503: {"model": HealthOut, "description": "degraded: reads of the store fail"}},
)
async def health(svc: Service, request: Request) -> JSONResponse:
    """200 ``ok``, or 503 ``degraded`` while reads of the store fail (naming each
    failing blob and its error): point a load balancer's readiness check here, and
    a liveness check at ``/health/live``."""
    problems = await svc.storage_problems()
    try:
        tracked: int | None = len(await svc.tracked_addresses())
    except BlobStoreError:
        tracked = None  # already among the problems: the probe read the same blob
    stats = svc.cache.stats()
    running = getattr(request.app.state, "scheduler", None)
    status: Literal["ok", "degraded"] = "degraded" if problems else "ok"
    body = HealthOut(
        status=status,
        version=version("balances"),
        network=svc.config.network,
        store=svc.store_label,
        storage=StorageOut(
            status=status,
            problems=[StorageProblemOut.model_validate(p.as_dict()) for p in problems],
        ),
        tracked_addresses=tracked,
        cache=CacheOut(
            hits=stats.hits,
            misses=stats.misses,
            hit_rate=stats.hit_rate,
            entries=stats.entries,
            evictions=stats.evictions,
        ),
        scheduler=None if running is None else running.get_status(),
        ingestion=None if svc.ingestion is None else svc.ingestion.status().as_dict(),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if problems else 200)


@health_router.get("/health/live", summary="Is the process up (the liveness check)")
async def live() -> dict[str, str]:
    """Always 200 while the process serves: a damaged store is a readiness matter
    (``/health``), not a reason to restart."""
    return {"status": "alive"}


def create_app(
    config: BalanceServiceConfig | None = None,
    *,
    service: BalanceService | None = None,
    scheduler: bool | None = None,
    ingest: bool | None = None,
) -> FastAPI:
    """The API over ``service`` (default: a :class:`BalanceService` built from ``config``,
    itself from ``BALANCES_*`` variables when None). A service the app builds is
    closed when the app shuts down; one passed in belongs to the caller.

    ``scheduler``: run the background scheduler while the app serves (None: when the
    app builds its own service and ``scheduler.enabled`` is set, as ``balances serve``
    does). Its status is at ``/scheduler``, ``/health`` and ``/metrics``.

    ``ingest``: fold blocks while the app serves (None: when the app builds its own
    service and ``ingest.enabled`` is set), on the replica that holds the scheduler's
    lease (on this one, without a scheduler). Status at ``/ingest/status``.
    """
    owned = service is None
    svc = service if service is not None else BalanceService(config)
    config = svc.config
    run_scheduler = (owned and config.scheduler.enabled) if scheduler is None else scheduler
    background = (
        BalanceScheduler(svc, scheduler_config(config.scheduler)) if run_scheduler else None
    )
    run_ingest = (owned and config.ingest.enabled) if ingest is None else ingest
    ingestion = svc.ingestion_for() if run_ingest else None

    app = FastAPI(
        title="balances",
        version=version("balances"),
        description=DESCRIPTION,
        lifespan=_lifespan(svc, background, ingestion, owned),
        dependencies=[Depends(read_tracking_policy)],  # who may track by reading
        # Our own Prometheus metrics cover requests; FastAPI's OpenTelemetry bridge
        # would otherwise check the environment on every request of the hot path.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = svc
    app.state.settings = config
    app.state.series_api = BalanceSeriesAPI(svc)
    app.state.scheduler = background
    app.state.anonymous_budget = AnonymousBudget(
        config.api.anonymous_track_per_minute, config.api.anonymous_track_max
    )
    _install_middleware(app, svc)
    _install_routes(app, config)
    return app


def _lifespan(
    svc: BalanceService,
    background: BalanceScheduler | None,
    ingestion: Ingestion | None,
    owned: bool,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Run the scheduler and ingestion while the app serves; close an owned service."""

    def leading() -> bool:
        assert background is not None
        return background.lease.holds(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = []
        if background is not None:
            tasks.append(asyncio.create_task(background.run_forever(stop)))
        if ingestion is not None:
            chosen = None if background is None else leading
            tasks.append(asyncio.create_task(supervise(ingestion, chosen, stop)))
            if svc.webhooks is not None:
                svc.webhooks.dispatcher.start()  # delivers while this replica writes the feed
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                await task
            if owned:
                await svc.close()

    return lifespan


def _install_middleware(app: FastAPI, svc: BalanceService) -> None:
    config = svc.config
    app.add_middleware(CachedBalanceFastPath, service=svc)  # inside CORS and metrics
    if config.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["x-api-key", "content-type"],
        )
    install_error_handlers(app)
    # Outside all but the latency metrics: nothing reads a body before it is bounded.
    app.add_middleware(
        BodyLimit,
        limit=config.api.max_body_bytes,
        delivery_limit=config.api.max_delivery_bytes,
        delivery_paths=routes_ingest.DELIVERY_PATHS,
    )
    install_metrics(app, svc)


def _install_routes(app: FastAPI, config: BalanceServiceConfig) -> None:
    routers: list[APIRouter] = [
        health_router,
        routes_ingest.router,
        routes_stream.router,
        routes_webhooks.router,
        routes_bulk.router,  # before /balances/{address}/... routes
        routes_history.router,  # before the catch-all /balances/{a}/{token}
        routes_balances.router,
        dashboard.router,  # GET /: the web dashboard (HTML)
    ]
    if config.graphql.enabled:
        routers.insert(0, graphql_router(config.graphql))
    for router in routers:
        app.include_router(router)
    app.mount(dashboard.STATIC_PATH, dashboard.static_files(), name=dashboard.STATIC_NAME)
    # The routes in the order they match: a 405 names the methods of its path.
    app.state.api_routes = [route for router in routers for route in router.routes]
    yield_to_literal_routes(app.state.api_routes)


__all__ = ["create_app"]
