"""``roisearch ingest`` and ``roisearch worker``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import TaskID

from roisearch import context
from roisearch.context import err_console, settings_or_exit
from roisearch.exit_codes import FAILURE, USAGE
from roisearch.ingestion_report import load_report, print_report, report_document
from roisearch.output import json_option, message, print_json
from roisearch.progress_bars import counting_bar
from shared.db.database import Database
from shared.ingestion.label_rows import BoxSource
from shared.ingestion.outcome import last_object_id
from shared.ingestion.pipeline import ChunkSummary
from shared.ingestion.planning import PlanSummary
from shared.ingestion.progress import ingestion_progress, item_counts
from shared.ingestion.sources import SourceError
from shared.ingestion.supervisor import IngestionSupervisor
from shared.model_identity import ModelIdentity, model_identity
from shared.model_provider import ModelProvider
from shared.queueing import RQJobQueue
from shared.settings import Settings

POLL_S = 2.0


def open_database(settings: Settings) -> Database:
    """Connect with the schema at head: a fresh data directory just works (see
    :func:`roisearch.context.open_database`)."""
    return context.open_database(settings)


def items_done(db: Database, ingestion_id: int) -> tuple[int, int]:
    """(items no longer pending, all items) of the ingestion."""
    with db.read() as session:
        counts = item_counts(session, ingestion_id)
    total = sum(counts.values())
    return total - counts["pending"], total


def announce_model(identity: ModelIdentity) -> None:
    """The model in use, on stderr (stdout stays for the results): name, classes, demo."""
    err_console.print(identity.line(), markup=False, highlight=False)
    if identity.notice:
        err_console.print(f"[yellow]{identity.notice}[/yellow]")


def model_document(identity: ModelIdentity) -> dict[str, object]:
    """The ``model`` field of ``ingest --json``: the names of ``GET /v1/model``."""
    return {
        "name": identity.name,
        "demo": identity.demo,
        "notice": identity.notice,
        "class_names": None if identity.class_names is None else list(identity.class_names),
    }


def ingest_embedded(
    settings: Settings,
    db: Database,
    source: Path,
    models: ModelProvider | None = None,
    options: dict[str, Any] | None = None,
) -> int:
    """Plan and process ``source`` in this process with a progress bar; return its id.

    The bar counts items (images and the other members), not chunks. An earlier embedded run
    of the same source that was interrupted (killed, full disk) is resumed rather than
    started again; other interrupted embedded ingestions are finished afterwards, so that
    none is left pending.
    """
    models = models or ModelProvider(settings.detector_config(), throughput=True)
    supervisor = IngestionSupervisor(db, settings.ingestion_config())  # no queue: runs here
    announce_model(model_identity(settings.weights, models.get().class_names))
    with counting_bar("items") as bar:

        def track(plan: PlanSummary, description: str) -> None:
            completed, total = items_done(db, plan.ingestion_id)
            task = bar.add_task(description, total=total, completed=completed, start_at=completed)

            def advance(_: PlanSummary, __: ChunkSummary) -> None:
                completed, _total = items_done(db, plan.ingestion_id)
                bar.update(task, completed=completed)

            supervisor.run(plan, models, on_chunk=advance)

        with supervisor.start_embedded(source.resolve(), options=options) as plan:
            track(plan, f"ingesting {source.name}")

        tasks: dict[int, TaskID] = {}

        def resuming(other: PlanSummary) -> None:
            completed, total = items_done(db, other.ingestion_id)
            tasks[other.ingestion_id] = bar.add_task(
                f"finishing interrupted ingestion {other.ingestion_id}",
                total=total,
                completed=completed,
                start_at=completed,
            )

        def advance_other(other: PlanSummary, __: ChunkSummary) -> None:
            bar.update(tasks[other.ingestion_id], completed=items_done(db, other.ingestion_id)[0])

        supervisor.finish_interrupted(models, on_plan=resuming, on_chunk=advance_other)
    return plan.ingestion_id


def wait_for_workers(db: Database, ingestion_id: int, name: str) -> None:
    """Follow an ingestion run by RQ workers until it is no longer planning or running."""
    with counting_bar("items") as bar:
        completed, total = items_done(db, ingestion_id)
        task = bar.add_task(
            f"ingesting {name} (workers)", total=total, completed=completed, start_at=completed
        )
        while True:
            with db.read() as session:
                progress = ingestion_progress(
                    session, ingestion_id, failed_limit=0, skipped_limit=0
                )
            assert progress is not None
            bar.update(task, total=progress.total, completed=progress.processed)
            if progress.status not in ("planning", "running"):
                return
            time.sleep(POLL_S)


def ingest(
    source: Path = typer.Argument(..., help="folder, .zip, .tar(.gz) or image file"),
    wait: bool = typer.Option(True, help="with Redis: wait until the workers are done"),
    boxes: BoxSource = typer.Option(
        BoxSource.BOTH,
        "--boxes",
        help="objects from the annotation files' boxes (COCO/YOLO/VOC in SOURCE), "
        "the detector's, or both",
    ),
    as_json: bool = json_option(),
) -> None:
    """Ingest SOURCE: in-process without Redis (embedded mode), else through RQ workers.

    Exit status 1 when the source or any item failed (the reasons are printed, the first
    failed items listed), 0 otherwise; members that are not images are skipped, not failed.
    """
    settings = settings_or_exit()
    if not source.exists():
        err_console.print(f"[red]{source} does not exist[/red]")
        raise typer.Exit(USAGE)
    options = {"boxes": boxes.value}
    db = open_database(settings)
    try:
        with db.read() as session:
            before = last_object_id(session)
        if settings.embedded:
            models = ModelProvider(settings.detector_config(), throughput=True)
            identity = model_identity(settings.weights, models.get().class_names)
            ingestion_id = ingest_embedded(settings, db, source, models, options)
        else:
            identity = model_identity(settings.weights)  # the workers load it
            announce_model(identity)
            supervisor = IngestionSupervisor(
                db, settings.ingestion_config(), RQJobQueue.from_settings(settings)
            )
            plan = supervisor.start(source.resolve(), options=options)
            n = supervisor.enqueue(plan)
            enqueued = f"ingestion {plan.ingestion_id}: {n} chunk job(s) enqueued"
            if as_json:  # stdout holds only the document
                err_console.print(enqueued)
            else:
                message(enqueued)
            ingestion_id = plan.ingestion_id
            if wait:
                wait_for_workers(db, ingestion_id, source.name)
        with db.read() as session:
            report = load_report(session, ingestion_id, after_object_id=before)
    except SourceError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(FAILURE) from None
    finally:
        db.dispose()
    assert report is not None
    if as_json:
        print_json({**report_document(report), "model": model_document(identity)})
    else:
        print_report(report)
        message(f"details: roisearch ingestions show {ingestion_id}")
    raise typer.Exit(report.exit_code)


def worker(burst: bool = typer.Option(False, help="exit when the queue is empty")) -> None:
    """Run an RQ worker: loads the model once, then processes chunk jobs."""
    from worker.main import run_worker

    run_worker(settings_or_exit(), burst=burst)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(worker)
