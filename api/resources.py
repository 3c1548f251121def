"""The process's heavy resources, built once by the app's lifespan and kept on ``app.state``.

Query-by-image runs the model **in the API process** (lazily loaded on the first such query,
or warmed up in the background at start-up). The alternative, a round trip through Redis to a
worker, would add enqueue/poll latency (tens of ms at best), make interactive queries wait
behind bulk ingestion chunks (seconds to minutes), and would not work in embedded mode (no
Redis). The cost is the model's memory in the API process; model calls are serialised by a
small capacity limiter so that concurrent queries do not oversubscribe the CPU.

In embedded mode (no Redis) there are no workers to take over an ingestion whose driver died
(the API killed mid-upload, or while its in-process queue was running the chunks): the API
does it itself through its ingestion supervisor (``IngestionSupervisor.keep_recovering``), at
start-up and then every :data:`REPLAN_INTERVAL_S`, into its in-process queue — planning
again what was left ``planning``, queueing again the pending chunks of what was left
``running``. Its queue leases the ingestions it has chunks of, so neither its own work nor
that of a live ``roisearch ingest`` is taken over. With Redis the workers' re-planner and
reconciler do this.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import anyio
from redis import Redis

from api.metrics import ApiMetrics, StateCollector
from api.schema_gate import SchemaGate
from api.schemas import RebuildResponse
from shared.db.database import Database
from shared.deletion import Deletion
from shared.ingestion.uploads import remove_upload
from shared.search.service import SearchService
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.index import IndexManager
    from shared.ingestion.supervisor import IngestionSupervisor
    from shared.model_provider import ModelProvider
    from shared.queueing import JobQueue
    from shared.yolov7.detector import Detector

log = logging.getLogger(__name__)

# Index searches are short and release the GIL; more threads than cores buys nothing.
INDEX_SEARCH_THREADS = 4
PROBE_TIMEOUT_S = 2.0
# One forward pass at a time: torch already uses every core for one batch.
MODEL_THREADS = 1
# Not only at start-up: a dead planner on another host (a container recreated under a new
# host name) is recognised only once its heartbeat is stale, after the restart.
REPLAN_INTERVAL_S = 10.0
# Shutdown waits this long for a re-planning pass (idempotent: a cut one is resumed later).
REPLAN_JOIN_S = 5.0


@dataclass
class ModelState:
    """Background warm-up of the lazy model; ``/readyz`` reports it."""

    state: str = "lazy"  # lazy | loading | loaded | failed
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def warm_up(self, provider: ModelProvider) -> None:
        with self._lock:
            if self.state in {"loading", "loaded"}:
                return
            self.state = "loading"

        def run() -> None:
            try:
                provider.get()
            except Exception as exc:  # reported by /readyz; a query retries the load
                log.exception("model warm-up failed")
                self.state, self.error = "failed", type(exc).__name__  # no paths: public
            else:
                self.state = "loaded"

        threading.Thread(target=run, name="model-warm-up", daemon=True).start()


@dataclass
class Resources:
    """Everything a request handler may use; one instance per process."""

    settings: Settings
    db: Database
    models: ModelProvider
    index: IndexManager
    queue: JobQueue
    supervisor: IngestionSupervisor
    metrics: ApiMetrics
    model_state: ModelState
    model_limiter: anyio.CapacityLimiter
    index_limiter: anyio.CapacityLimiter
    schema: SchemaGate
    search: SearchService
    deletion: Deletion
    redis: Redis | None = None  # for readiness probes only (the queue has its own connection)

    # Per-process memo of derived, immutable answers (e.g. the model's layer table).
    cache: dict[str, object] = field(default_factory=dict)
    rebuilds: dict[int, threading.Thread] = field(default_factory=dict)
    rebuild_lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    replanner: threading.Thread | None = None

    def detector(self) -> Detector:
        """The model (loaded on first use); 503 ``model_unavailable`` if it cannot be loaded."""
        return self.search.model()

    def start_rebuild(self, space_id: int) -> RebuildResponse:
        """Rebuild one space's index in a background thread (one at a time per space)."""
        with self.rebuild_lock:
            running = self.rebuilds.get(space_id)
            if running is not None and running.is_alive():
                return RebuildResponse(
                    space_id=space_id, started=False, message="a rebuild is already running"
                )

            def run() -> None:
                try:
                    self.index.rebuild(space_id)
                except Exception:
                    log.exception("index rebuild of space %s failed", space_id)

            thread = threading.Thread(target=run, name=f"index-rebuild-{space_id}", daemon=True)
            self.rebuilds[space_id] = thread
            thread.start()
        return RebuildResponse(
            space_id=space_id, started=True, message="rebuild started; see /v1/index/status"
        )

    def start_replanner(self) -> None:
        """Take over the unfinished ingestions of dead drivers (plan again those left
        ``planning``, queue the pending chunks of those left ``running``), now and
        periodically, in a background thread (planning a large archive again takes long)."""
        self.replanner = threading.Thread(
            target=self.supervisor.keep_recovering,
            args=(self.stopping, REPLAN_INTERVAL_S),
            name="replanner",
            daemon=True,
        )
        self.replanner.start()

    def start_background(self) -> None:
        """What needs the tables: the index catch-up and, without Redis, the re-planner."""
        if self.stopping.is_set():
            return
        self.index.start()  # catch-up from the database runs in the index's background thread
        if self.settings.redis_url is None:
            self.start_replanner()

    def close(self) -> None:
        self.stopping.set()
        self.schema.join(timeout=REPLAN_JOIN_S)
        if self.replanner is not None:
            self.replanner.join(timeout=REPLAN_JOIN_S)
        try:
            self.index.stop()
        finally:
            close_queue = getattr(self.queue, "close", None)
            if callable(close_queue):
                close_queue()
            if self.redis is not None:
                self.redis.close()
            self.db.dispose()


def _index_sizes(index: IndexManager) -> dict[int, int]:
    return index.sizes()


def build_resources(settings: Settings, *, metrics: ApiMetrics, warm_model: bool) -> Resources:
    """Build the process's resources (called once, from the lifespan)."""
    # Imported here, not at module level: they pull in torch/faiss, which the app factory and
    # the CLI client must not pay for at import time.
    from shared.index import IndexManager
    from shared.ingestion.supervisor import IngestionSupervisor
    from shared.jobs import make_queue
    from shared.model_provider import ModelProvider

    for directory in (settings.data_dir, settings.cache_dir, settings.uploads_dir):
        directory.mkdir(parents=True, exist_ok=True)
    db = Database.from_url(settings.resolved_database_url)
    schema = SchemaGate(db, settings.resolved_database_url)
    models = ModelProvider(settings.detector_config())
    index = IndexManager(settings, db)
    queue = make_queue(settings, db, models)  # embedded mode shares this process's model
    search = SearchService(
        db=db,
        index=index,
        detector=models.get,
        max_image_pixels=settings.max_image_pixels,
        observe_search=lambda kind, seconds: metrics.search_seconds.labels(kind).observe(seconds),
        observe_embed=metrics.embed_seconds.observe,
    )
    resources = Resources(
        settings=settings,
        db=db,
        models=models,
        index=index,
        queue=queue,
        supervisor=IngestionSupervisor(db, settings.ingestion_config(), queue),
        metrics=metrics,
        model_state=ModelState(),
        model_limiter=anyio.CapacityLimiter(MODEL_THREADS),
        index_limiter=anyio.CapacityLimiter(INDEX_SEARCH_THREADS),
        schema=schema,
        search=search,
        deletion=Deletion(
            db, index, settings.data_dir, release_source=partial(remove_upload, settings.data_dir)
        ),
        redis=(
            Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=PROBE_TIMEOUT_S,
                socket_timeout=PROBE_TIMEOUT_S,
            )
            if settings.redis_url
            else None
        ),
    )
    metrics.register_state(
        StateCollector(db, index_sizes=partial(_index_sizes, index), queue_depth=queue.depth)
    )
    # SQLite: brought to head now. PostgreSQL behind head: data routes answer 503 and the
    # background work starts once someone has run `roisearch db upgrade`.
    schema.start(on_ready=resources.start_background, stopping=resources.stopping)
    if warm_model:
        resources.model_state.warm_up(models)
    return resources
