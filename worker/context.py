"""The worker process's resources, built once by the entry point before any job runs.

RQ calls job functions with their arguments only (ids), so the preloaded model and the
database engine are handed over through this explicitly installed context: ``install`` is
called exactly once by ``worker.main.run_worker`` (or a test), never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.db.database import Database
from shared.ingestion.config import IngestionConfig
from shared.model_provider import ModelProvider
from shared.settings import Settings


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    db: Database
    models: ModelProvider

    @property
    def ingestion(self) -> IngestionConfig:
        return self.settings.ingestion_config()


class _Holder:
    context: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    _Holder.context = context


def current() -> WorkerContext:
    if _Holder.context is None:
        raise RuntimeError(
            "the worker context is not installed: run jobs through `roisearch worker` "
            "(worker.main.run_worker), which loads the model first"
        )
    return _Holder.context
