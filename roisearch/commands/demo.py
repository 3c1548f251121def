"""``roisearch demo``: the main job end to end on the embedded default.

Generate a labelled demo archive (or reuse it), ingest it in this process (SQLite, in-process
queue, bundled demo detector), run one "find objects like this one" query through the FAISS
index, compute a clustering report, and say how to serve the API and the web page.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from sqlalchemy import select

from roisearch.commands.ingest import ingest_embedded, open_database
from roisearch.context import console, err_console, settings_or_exit
from roisearch.exit_codes import USAGE
from roisearch.ingestion_report import load_report, print_report
from roisearch.output import Column, Listing, print_listing
from shared.db.database import Database
from shared.db.models import DetectedObject, Image, Report, ReportStatus
from shared.errors import InvalidInput
from shared.ingestion.outcome import last_object_id
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.params import ClusterParams
from shared.reports.pipeline import REPORT_HTML
from shared.settings import Settings

DEMO_FOLDER = "demo"
ARCHIVE_NAME = "demo-scenes-seed{seed}-n{n}.zip"
NEIGHBOURS = 10
NEIGHBOUR_COLUMNS = (
    Column("rank", justify="right"),
    Column("object_id", "object", "right"),
    Column("class_name", "class"),
    Column("detector_score", "detector score", "right"),
    Column("similarity", justify="right"),
    Column("image", wrap=True),
)


def _archive(settings: Settings, n: int, seed: int) -> Path:
    """The demo archive for (n, seed), generated once into the data directory."""
    from demo.export import write_dataset

    folder = settings.data_dir / DEMO_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / ARCHIVE_NAME.format(seed=seed, n=n)
    if archive.exists():
        console.print(f"reusing {archive}")
        return archive
    with console.status(f"generating {n} demo scenes (seed {seed})…"):
        # Written under a temporary name: an interrupted run never leaves half an archive.
        partial = archive.with_name(archive.name + ".partial.zip")
        partial.unlink(missing_ok=True)
        summary = write_dataset(partial, n, seed, as_zip=True)
        partial.replace(archive)
    console.print(f"wrote {archive}: {summary.images} images, {summary.objects} labelled objects")
    return archive


def _example_query(settings: Settings, db: Database) -> None:
    """Search the neighbours of the most confident object and show how many share its class."""
    from shared.index import IndexManager

    with db.read() as session:
        example = session.scalars(
            select(DetectedObject).order_by(DetectedObject.score.desc()).limit(1)
        ).first()
        if example is None:
            err_console.print("[yellow]no objects were detected; nothing to search[/yellow]")
            return
        query = np.frombuffer(example.vector, dtype="<f4").astype(np.float32)[None, :]
        space_id, example_id, example_class = example.space_id, example.id, example.class_name
        source = session.scalar(select(Image.source).where(Image.id == example.image_id))
        member = (source or "").rsplit("::", 1)[-1]

    index = IndexManager(settings, db)
    try:
        index.sync_once()
        hits = index.search(space_id, query, NEIGHBOURS + 1, None)[0]
    finally:
        index.stop()
    hits = [hit for hit in hits if hit.object_id != example_id][:NEIGHBOURS]
    with db.read() as session:
        rows = {
            row.id: row
            for row in session.execute(
                select(
                    DetectedObject.id,
                    DetectedObject.class_name,
                    DetectedObject.score,
                    Image.source,
                )
                .join(Image, Image.id == DetectedObject.image_id)
                .where(DetectedObject.id.in_([hit.object_id for hit in hits]))
            )
        }
    listing = Listing(
        f"objects like object {example_id} ({example_class}, in {member})",
        NEIGHBOUR_COLUMNS,
        caption="GET /v1/objects/{id}/similar answers the same question over HTTP",
    )
    for rank, hit in enumerate(hits, start=1):
        row = rows.get(hit.object_id)
        if row is None:
            continue
        listing.add(
            rank=rank,
            object_id=hit.object_id,
            class_name=row.class_name,
            detector_score=f"{row.score:.2f}",
            similarity=f"{hit.score:.3f}",
            image=row.source.rsplit("::", 1)[-1],  # the member inside the archive
        )
    print_listing(listing)
    same = sum(
        1 for hit in hits if (row := rows.get(hit.object_id)) and row.class_name == example_class
    )
    console.print(f"{same}/{len(hits)} of the nearest neighbours are also a {example_class}")


def _report(settings: Settings, db: Database) -> Path | None:
    """Cluster every object in this process; return the report page's path."""
    params = ClusterParams()
    try:
        report_id = create_cluster_report(db, params)
        with console.status(f"computing clustering report {report_id}…"):
            status = run_cluster_report(db, settings.report_config(), report_id)
    except InvalidInput as exc:
        err_console.print(f"[yellow]no clustering report: {exc.code}: {exc.message}[/yellow]")
        return None
    with db.read() as session:
        report = session.get(Report, report_id)
        assert report is not None
        result, code, message = report.result, report.error_code, report.error_message
    if status != ReportStatus.DONE or result is None:
        err_console.print(f"[yellow]clustering report failed: {code}: {message}[/yellow]")
        return None
    overall = result["overall"]
    purity = overall.get("purity")
    console.print(
        f"report {report_id}: {overall['clusters']} clusters over {overall['objects']} objects"
        + (
            f", class purity {purity:.2f} (chance {overall['purity_baseline']:.2f})"
            if purity is not None
            else ""
        )
    )
    return settings.reports_dir / str(report_id) / REPORT_HTML


def demo(
    n: int = typer.Option(120, "--n", min=1, max=100_000, help="demo images to generate"),
    seed: int = typer.Option(7, "--seed", help="scene stream; same seed, same archive"),
) -> None:
    """Run the main job on the embedded default: demo archive → ingestion → search → report."""
    settings = settings_or_exit()
    from shared.yolov7.detector import DEMO_WEIGHTS

    if settings.weights is None and not DEMO_WEIGHTS.is_file():
        err_console.print(
            f"[red]the bundled demo detector {DEMO_WEIGHTS.name} is not in this checkout: build it "
            f"with `roisearch train-demo --workers 1 --out {DEMO_WEIGHTS}` (about an hour on 2 "
            "cores), or set ROISEARCH_WEIGHTS to a YOLOv7 checkpoint[/red]"
        )
        raise typer.Exit(USAGE)
    if not settings.embedded:
        # The demo shows the embedded default; a configured Redis would need running workers.
        settings = settings.model_copy(update={"redis_url": None})
    console.rule("1. a demo archive of generated scenes")
    archive = _archive(settings, n, seed)

    console.rule("2. ingestion (embedded: SQLite, in-process queue, bundled detector)")
    db = open_database(settings)
    try:
        with db.read() as session:
            before = last_object_id(session)
        ingestion_id = ingest_embedded(settings, db, archive)
        with db.read() as session:
            report = load_report(session, ingestion_id, after_object_id=before)
        assert report is not None
        print_report(report)

        console.rule("3. find objects like this one")
        _example_query(settings, db)

        console.rule("4. what is in the archive: a clustering report")
        page = _report(settings, db)
        if page is not None:
            console.print(f"open {page.resolve()}")
    finally:
        db.dispose()

    console.rule("5. next")
    console.print(
        "serve the API and the web page:  .venv/bin/roisearch serve   → http://127.0.0.1:8000/\n"
        "search from the shell:           .venv/bin/roisearch similar OBJECT_ID\n"
        f"settings in effect:              {json.dumps({'data_dir': str(settings.data_dir)})}"
    )
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
