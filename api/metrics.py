"""Prometheus metrics of one API process (own registry: no module-global state).

Request latency is observed by :class:`MetricsMiddleware` per route template (``/v1/objects/
{object_id}/similar``, never the raw path, so label cardinality stays bounded). Queue depth,
ingestion rates and index size are read at scrape time by :class:`StateCollector` from the
database and the index, so they are right whichever process did the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db.database import Database
from shared.db.models import DetectedObject, EmbeddingSpace, IngestionItem, ItemStatus

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RATE_WINDOW_S = 60


class ApiMetrics:
    """The registry and the instruments of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "roisearch_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "roisearch_search_duration_seconds",
            "Time spent in the index search of a request (excludes HTTP and DB work).",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.embed_seconds = Histogram(
            "roisearch_query_embed_duration_seconds",
            "Time spent running the model on a query image.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def register_state(self, collector: Collector) -> None:
        self.registry.register(collector)


class StateCollector(Collector):
    """Gauges computed at scrape time: queue depth, ingestion rates, index size."""

    def __init__(
        self,
        db: Database,
        index_sizes: Callable[[], dict[int, int]],
        queue_depth: Callable[[], int | None],
    ) -> None:
        self.db = db
        self.index_sizes = index_sizes
        self.queue_depth = queue_depth

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "roisearch_ingestion_items_pending", "Ingestion items not yet processed (backlog)."
        )
        rate = GaugeMetricFamily(
            "roisearch_ingestion_items_per_second",
            f"Ingestion items finished per second over the last {RATE_WINDOW_S} s.",
            labels=["status"],
        )
        objects = GaugeMetricFamily(
            "roisearch_objects", "Objects in the database per embedding space.", labels=["space"]
        )
        try:
            since = datetime.now(UTC) - timedelta(seconds=RATE_WINDOW_S)
            with self.db.read() as session:
                pending.add_metric(
                    [],
                    session.scalar(
                        select(func.count()).where(IngestionItem.status == ItemStatus.PENDING)
                    )
                    or 0,
                )
                finished = session.execute(
                    select(IngestionItem.status, func.count())
                    .where(
                        IngestionItem.status != ItemStatus.PENDING,
                        IngestionItem.updated_at >= since,
                    )
                    .group_by(IngestionItem.status)
                ).all()
                for status in (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.SKIPPED):
                    count = next((n for s, n in finished if s == status), 0)
                    rate.add_metric([str(status)], count / RATE_WINDOW_S)
                for space_id, count in session.execute(
                    select(EmbeddingSpace.id, func.count(DetectedObject.id))
                    .join(DetectedObject, DetectedObject.space_id == EmbeddingSpace.id)
                    .group_by(EmbeddingSpace.id)
                ).all():
                    objects.add_metric([str(space_id)], count)
        except Exception:  # a scrape must not fail because the DB hiccups
            log.warning("metrics: database gauges unavailable", exc_info=True)
        yield pending
        yield rate
        yield objects

        size = GaugeMetricFamily(
            "roisearch_index_vectors", "Vectors in the in-process index.", labels=["space"]
        )
        try:
            for space_id, count in self.index_sizes().items():
                size.add_metric([str(space_id)], count)
        except Exception:
            log.warning("metrics: index size unavailable", exc_info=True)
        yield size

        depth = GaugeMetricFamily("roisearch_queue_depth", "Jobs waiting in the job queue.")
        try:
            value = self.queue_depth()
            if value is not None:
                depth.add_metric([], value)
        except Exception:
            log.warning("metrics: queue depth unavailable", exc_info=True)
        yield depth


class MetricsMiddleware:
    """Observe the latency of every HTTP request under its route template."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(template, scope["method"], str(status)).observe(
                time.perf_counter() - start
            )
