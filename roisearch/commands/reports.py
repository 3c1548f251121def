"""``roisearch report clusters``: a clustering report computed in this process.

The report is recorded in the database like one started through the API (so
``GET /v1/reports/{id}`` shows it too); its HTML page is copied to ``--out``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from roisearch.commands.ingest import open_database
from roisearch.context import console, err_console, settings_or_exit
from shared.db.models import Report, ReportStatus
from shared.errors import InvalidInput
from shared.reports.assignments import ASSIGNMENTS_CSV, ASSIGNMENTS_PARQUET
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.params import ClusterMethod, ClusterParams
from shared.reports.pipeline import REPORT_HTML, plan_report

report_app = typer.Typer(help="Reports on the collection.", no_args_is_help=True)
TOP_CLUSTERS = 30


def _params(**values: object) -> ClusterParams:
    try:
        return ClusterParams.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        err_console.print(f"[red]invalid options: {problems}[/red]")
        raise typer.Exit(2) from None


@report_app.command("clusters")
def clusters(
    out: Path | None = typer.Option(None, "--out", "-o", help="write the HTML page here"),
    space: int | None = typer.Option(None, "--space", help="embedding space id"),
    classes: list[str] | None = typer.Option(
        None,
        "--class",
        "-c",
        help="class names or ids (repeat or comma-separate); default: every class",
    ),
    ingestions: list[int] | None = typer.Option(
        None, "--ingestion", "-i", help="only objects of this ingestion (repeat)"
    ),
    min_score: float | None = typer.Option(None, "--min-score", help="detector score"),
    method: ClusterMethod = typer.Option(ClusterMethod.kmeans, "--method"),
    k: int | None = typer.Option(None, "-k", help="clusters; default: automatic (silhouette)"),
    k_min: int | None = typer.Option(None, "--k-min"),
    k_max: int | None = typer.Option(None, "--k-max"),
    per_class: bool = typer.Option(False, "--per-class", help="cluster each class on its own"),
    sample_size: int | None = typer.Option(None, "--sample-size", help="training objects"),
    seed: int | None = typer.Option(None, "--seed"),
    density_similarity: float | None = typer.Option(None, "--density-similarity"),
    density_min_samples: int | None = typer.Option(None, "--density-min-samples"),
    duplicate_similarity: float | None = typer.Option(
        None, "--duplicate-similarity", help="near-duplicate threshold (default 0.97)"
    ),
    no_duplicates: bool = typer.Option(False, "--no-duplicates", help="skip near-duplicates"),
) -> None:
    """Cluster the selected objects; print a summary and write the HTML page (``--out``)."""
    params = _params(
        space_id=space,
        classes=[p.strip() for c in classes or [] for p in c.split(",") if p.strip()] or None,
        ingestions=ingestions or None,
        min_score=min_score,
        method=method,
        k=k,
        k_min=k_min,
        k_max=k_max,
        per_class=per_class,
        sample_size=sample_size,
        seed=seed,
        density_similarity=density_similarity,
        density_min_samples=density_min_samples,
        duplicate_similarity=duplicate_similarity,
    )
    if no_duplicates:
        params = params.model_copy(update={"duplicate_similarity": None})
    settings = settings_or_exit()
    db = open_database(settings)
    try:
        with db.read() as session:
            plan_report(session, params)
    except InvalidInput as exc:
        err_console.print(f"[red]{exc.code}: {exc.message}[/red]")
        db.dispose()
        raise typer.Exit(1) from None
    report_id = create_cluster_report(db, params)
    with console.status(f"computing report {report_id}…"):
        status = run_cluster_report(db, settings, report_id)
    with db.read() as session:
        report = session.get(Report, report_id)
        assert report is not None
        code, message, result = report.error_code, report.error_message, report.result
    db.dispose()
    if status != ReportStatus.DONE or result is None:
        err_console.print(f"[red]report {report_id} failed: {code}: {message}[/red]")
        raise typer.Exit(1)
    folder = settings.reports_dir / str(report_id)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / REPORT_HTML, out)
    overall = result["overall"]
    table = Table(title=f"report {report_id}: {overall['objects']} objects")
    for col in ("cluster", "size", "cohesion", "classes"):
        table.add_column(col)
    for cluster in sorted(result["clusters"], key=lambda c: -c["size"])[:TOP_CLUSTERS]:
        mix = ", ".join(f"{c['class_name']} {c['count']}" for c in cluster["classes"][:3])
        table.add_row(str(cluster["id"]), str(cluster["size"]), f"{cluster['cohesion']:.3f}", mix)
    console.print(table)
    purity = overall.get("purity")
    console.print(
        f"clusters: {overall['clusters']}  noise: {overall['noise']}  "
        + (
            f"purity: {purity:.3f} (chance {overall['purity_baseline']:.3f})"
            if purity is not None
            else ""
        )
    )
    duplicates = result.get("duplicates")
    if duplicates:
        console.print(
            f"near-duplicate groups: {duplicates['group_count']} "
            f"({duplicates['objects_in_groups']} objects, similarity ≥ {duplicates['threshold']})"
        )
    console.print(f"HTML: {out if out is not None else folder / REPORT_HTML}")
    console.print(f"assignments: {folder / ASSIGNMENTS_CSV}, {folder / ASSIGNMENTS_PARQUET}")


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
