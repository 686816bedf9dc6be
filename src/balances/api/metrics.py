"""Prometheus ``/metrics``: request latency, cache, chain requests, blob cost, scheduler.

Each app has its own registry (several apps in one process, as in tests, do not
collide). Request latency is measured by a middleware, labelled with the route
template (never the raw path: addresses would explode the label set). The other
figures are read from the service when Prometheus scrapes, so they cost nothing
between scrapes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from balances.api.fastpath import ASGIApp, Message, Receive, Scope, Send
from balances.service.balances import BalanceService

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceCollector(Collector):
    """Figures read from the service (and scheduler, if any) at scrape time."""

    def __init__(self, service: BalanceService, scheduler: Callable[[], Any]) -> None:
        self._service = service
        self._scheduler = scheduler

    def collect(self) -> Iterator[Any]:
        yield from self._cache()
        yield from self._chain()
        yield from self._blobs()
        yield from self._storage()
        yield from self._scheduler_runs()
        yield from self._ingestion()
        yield from self._webhooks()

    def _webhooks(self) -> Iterator[Any]:
        webhooks = self._service.webhooks
        if webhooks is None:
            return
        states = GaugeMetricFamily(
            "balances_webhooks",
            "webhook subscriptions by state (dead: dead-lettered after repeated failures)",
            labels=["state"],
        )
        counts = Counter(hook.state for hook in webhooks.registry.held())
        for state in ("active", "dead"):
            states.add_metric([state], counts.get(state, 0))
        yield states
        stats = webhooks.dispatcher.stats
        for name, value, help_text in (
            ("batches_delivered", stats.delivered_batches, "webhook batches answered 2xx"),
            ("changes_delivered", stats.delivered_changes, "changes in those batches"),
            ("failed_attempts", stats.failed_attempts, "webhook deliveries that failed"),
            ("dead_lettered", stats.dead_lettered, "subscriptions dead-lettered here"),
        ):
            yield CounterMetricFamily(f"balances_webhook_{name}", help_text, value=value)

    def _storage(self) -> Iterator[Any]:
        health = self._service.storage_health
        errors = CounterMetricFamily(
            "balances_storage_errors",
            "storage errors met, by kind (corrupt: a blob that does not decode)",
            labels=["kind"],
        )
        for kind, count in health.counts().items():
            errors.add_metric([kind], count)
        yield errors
        yield GaugeMetricFamily(
            "balances_storage_damaged_blobs",
            "blobs that failed to read in the last 10 minutes (/health lists them)",
            value=len(health.problems()),
        )

    def _ingestion(self) -> Iterator[Any]:
        ingestion = self._service.ingestion
        if ingestion is None:
            return
        status = ingestion.status()
        stats = status.stats
        if status.cursor is not None:
            yield GaugeMetricFamily(
                "balances_ingest_cursor_height",
                "the last block folded into balances",
                value=status.cursor.height,
            )
        for name, value in (("lag_blocks", status.lag_blocks), ("lag_seconds", status.lag_seconds)):
            if value is not None:
                yield GaugeMetricFamily(f"balances_ingest_{name}", f"ingestion {name}", value=value)
        for name, value, help_text in (
            ("blocks_applied", stats.blocks_applied, "blocks folded into balances"),
            ("reorgs", stats.reorgs, "reorgs undone"),
            ("blocks_undone", stats.blocks_undone, "orphaned blocks undone"),
            ("pairs_read", stats.pairs_read, "pairs read as of their block"),
            ("flushes", stats.flushes, "journal segments ingestion wrote"),
            ("fallbacks", stats.fallbacks, "times ingestion resumed from the tip"),
        ):
            yield CounterMetricFamily(f"balances_ingest_{name}", help_text, value=value)
        for name, counts in (
            ("drift_found", stats.drift_found),
            ("drift_repaired", stats.drift_repaired),
        ):
            family = CounterMetricFamily(
                f"balances_ingest_{name}",
                f"drift {name.split('_')[1]} by token kind",
                labels=["kind"],
            )
            for kind in ("stx", "native", "map"):
                family.add_metric([kind], counts.get(kind, 0))
            yield family

    def _cache(self) -> Iterator[Any]:
        stats = self._service.cache.stats()
        for name, value, help_text in (
            ("hits", stats.hits, "current-balance cache hits"),
            ("misses", stats.misses, "current-balance cache misses"),
            ("evictions", stats.evictions, "entries evicted to stay within bounds"),
        ):
            yield CounterMetricFamily(f"balances_cache_{name}", help_text, value=value)
        yield GaugeMetricFamily("balances_cache_entries", "cached addresses", value=stats.entries)
        yield GaugeMetricFamily("balances_cache_bytes", "estimated cache memory", value=stats.bytes)

    def _chain(self) -> Iterator[Any]:
        family = CounterMetricFamily(
            "balances_chain_requests", "Stacks API answers", labels=["route", "status"]
        )
        counts = getattr(self._service.chain, "request_counts", {})
        for (route, status), count in sorted(counts.items()):
            family.add_metric([route, status], count)
        yield family

    def _blobs(self) -> Iterator[Any]:
        meter = self._service.blobs.snapshot()
        ops = CounterMetricFamily(
            "balances_blob_operations", "blob store operations", labels=["operation"]
        )
        for operation, count in sorted(meter.operations.items()):
            ops.add_metric([operation], count)
        yield ops
        for name, value in (
            ("uploaded", meter.bytes_uploaded),
            ("downloaded", meter.bytes_downloaded),
        ):
            yield CounterMetricFamily(f"balances_blob_bytes_{name}", f"bytes {name}", value=value)
        yield GaugeMetricFamily(
            "balances_blob_bytes_stored", "bytes stored", value=meter.bytes_stored
        )
        cost = self._service.cache_report()["estimated_cost"]
        dollars = GaugeMetricFamily(
            "balances_blob_cost_dollars", "estimated blob cost so far", labels=["category"]
        )
        for category in ("storage", "simple_operations", "advanced_operations", "transfer"):
            dollars.add_metric([category], float(cost[category]))
        yield dollars

    def _scheduler_runs(self) -> Iterator[Any]:
        status = self._scheduler()
        if not status:
            return
        runs = CounterMetricFamily(
            "balances_scheduler_runs", "scheduler task runs", labels=["task", "outcome"]
        )
        for name, task in sorted(status.get("tasks", {}).items()):
            failures = int(task.get("failures", 0))
            runs.add_metric([name, "ok"], int(task.get("runs", 0)) - failures)
            runs.add_metric([name, "failed"], failures)
        yield runs


class LatencyMiddleware:
    """Pure ASGI (no per-request task, unlike BaseHTTPMiddleware): times every request
    and labels it with the route template it matched."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram
        self._children: dict[tuple[str, str, str], Any] = {}  # labels() is slow per call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            matched = scope.get("route")  # path_format drops convertors ({tokenId:path})
            route = scope.get("route_template") or getattr(matched, "path_format", None)
            labels = (scope["method"], route or "unmatched", str(status))
            child = self._children.get(labels)
            if child is None:
                child = self._children[labels] = self.histogram.labels(*labels)
            child.observe(time.perf_counter() - started)


def install_metrics(app: FastAPI, service: BalanceService) -> None:
    """Add the latency middleware (outermost: call it last) and ``GET /metrics``."""
    registry = CollectorRegistry()
    latency = Histogram(
        "balances_http_request_duration_seconds",
        "REST request latency",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )

    def scheduler_status() -> Any:
        scheduler = getattr(app.state, "scheduler", None)
        return None if scheduler is None else scheduler.get_status()

    registry.register(ServiceCollector(service, scheduler_status))
    app.add_middleware(LatencyMiddleware, histogram=latency)

    @app.get("/metrics", tags=["service"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
