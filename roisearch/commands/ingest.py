"""``roisearch ingest``, ``roisearch ingestions list`` and ``roisearch worker``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from roisearch import context
from roisearch.context import console, err_console, settings_or_exit
from shared.db.database import Database
from shared.db.models import Ingestion
from shared.ingestion.pipeline import ChunkSummary
from shared.ingestion.planning import PlanSummary
from shared.ingestion.progress import IngestionProgress, ingestion_progress
from shared.ingestion.runner import (
    enqueue_plan,
    resume_interrupted,
    run_plan,
    start_ingestion,
    start_or_resume,
)
from shared.ingestion.sources import SourceError
from shared.model_provider import ModelProvider
from shared.queueing import RQJobQueue
from shared.settings import Settings

ingestions_app = typer.Typer(help="Ingestions and their progress.", no_args_is_help=True)


def open_database(settings: Settings) -> Database:
    """Connect with the schema at head: a fresh data directory just works (see
    :func:`roisearch.context.open_database`)."""
    return context.open_database(settings)


def summary_table(progress: IngestionProgress) -> Table:
    table = Table(title=f"ingestion {progress.id}: {progress.source}")
    table.add_column("status")
    for key in ("done", "failed", "pending", "skipped"):
        table.add_column(key, justify="right")
    table.add_column("objects", justify="right")
    table.add_column("images/s", justify="right")
    table.add_row(
        progress.status,
        *(str(progress.counts.get(k, 0)) for k in ("done", "failed", "pending", "skipped")),
        str(progress.objects),
        f"{progress.images_per_s:.2f}" if progress.images_per_s else "-",
    )
    return table


def failures_table(progress: IngestionProgress) -> Table:
    table = Table(title="failed and skipped items (first 20 of each)")
    table.add_column("member")
    table.add_column("status")
    table.add_column("code")
    table.add_column("reason")
    for status, items in (("failed", progress.failed), ("skipped", progress.skipped)):
        for item in items:
            table.add_row(item.member, status, item.error_code or "", item.error_message or "")
    return table


def ingest_embedded(
    settings: Settings, db: Database, source: Path, models: ModelProvider | None = None
) -> int:
    """Plan and process ``source`` in this process with a progress bar; return its id.

    An earlier embedded run of the same source that was interrupted (killed, full disk) is
    resumed rather than started again; other interrupted embedded ingestions are finished
    afterwards, so that none is left pending.
    """
    models = models or ModelProvider(settings, throughput=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        with start_or_resume(db, settings, source.resolve()) as plan:
            task = bar.add_task(f"ingesting {source.name}", total=len(plan.pending_chunks))

            def advance(_: PlanSummary, __: ChunkSummary) -> None:
                bar.advance(task)

            run_plan(db, settings, models, plan, on_chunk=advance)
        tasks: dict[int, TaskID] = {}

        def resuming(other: PlanSummary) -> None:
            tasks[other.ingestion_id] = bar.add_task(
                f"finishing interrupted ingestion {other.ingestion_id}",
                total=len(other.pending_chunks),
            )

        def advance_other(other: PlanSummary, __: ChunkSummary) -> None:
            bar.advance(tasks[other.ingestion_id])

        resume_interrupted(db, settings, models, on_plan=resuming, on_chunk=advance_other)
    return plan.ingestion_id


def ingest(
    source: Path = typer.Argument(..., help="folder, .zip, .tar(.gz) or image file"),
    wait: bool = typer.Option(True, help="with Redis: wait until the workers are done"),
) -> None:
    """Ingest SOURCE: in-process without Redis (embedded mode), else through RQ workers."""
    settings = settings_or_exit()
    if not source.exists():
        err_console.print(f"[red]{source} does not exist[/red]")
        raise typer.Exit(2)
    db = open_database(settings)
    try:
        if settings.embedded:
            ingestion_id = ingest_embedded(settings, db, source)
        else:
            plan = start_ingestion(db, settings, source.resolve())
            queue = RQJobQueue.from_settings(settings)
            n = enqueue_plan(queue, plan)
            console.print(f"ingestion {plan.ingestion_id}: {n} chunk job(s) enqueued")
            ingestion_id = plan.ingestion_id
            while wait:
                with db.read() as session:
                    progress = ingestion_progress(session, ingestion_id)
                assert progress is not None
                if progress.status not in ("planning", "running"):
                    break
                time.sleep(2)
    except SourceError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    with db.read() as session:
        progress = ingestion_progress(session, ingestion_id)
    assert progress is not None
    console.print(summary_table(progress))
    if progress.failed or progress.skipped:
        console.print(failures_table(progress))
    db.dispose()


@ingestions_app.command("list")
def list_ingestions(limit: int = typer.Option(20, min=1, max=1000)) -> None:
    """The most recent ingestions with their counts."""
    settings = settings_or_exit()
    db = open_database(settings)
    with db.read() as session:
        ids = session.scalars(select(Ingestion.id).order_by(Ingestion.id.desc()).limit(limit))
        table = Table(title="ingestions")
        for col in ("id", "source", "status", "items", "done", "failed", "objects"):
            table.add_column(col)
        for ingestion_id in ids:
            p = ingestion_progress(session, ingestion_id, failed_limit=0, skipped_limit=0)
            assert p is not None
            table.add_row(
                str(p.id),
                p.source,
                p.status,
                str(p.total),
                str(p.counts.get("done", 0)),
                str(p.counts.get("failed", 0)),
                str(p.objects),
            )
    console.print(table)
    db.dispose()


def worker(burst: bool = typer.Option(False, help="exit when the queue is empty")) -> None:
    """Run an RQ worker: loads the model once, then processes chunk jobs."""
    from worker.main import run_worker

    run_worker(settings_or_exit(), burst=burst)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(worker)
    app.add_typer(ingestions_app, name="ingestions")
