"""``roisearch report clusters``: a clustering report computed in this process.

The report is recorded in the database like one started through the API (so
``GET /v1/reports/{id}`` shows it too); its HTML page is copied to ``--out``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from pydantic import ValidationError

from roisearch.commands.ingest import open_database
from roisearch.context import err_console, settings_or_exit
from roisearch.exit_codes import FAILURE, USAGE
from roisearch.output import (
    Column,
    Listing,
    json_option,
    listing_json,
    message,
    print_json,
    print_listing,
)
from shared.db.models import Report, ReportStatus
from shared.errors import InvalidInput
from shared.reports.assignments import ASSIGNMENTS_CSV, ASSIGNMENTS_PARQUET
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.params import ClusterMethod, ClusterParams
from shared.reports.pipeline import REPORT_HTML, plan_report

report_app = typer.Typer(help="Reports on the collection.", no_args_is_help=True)
TOP_CLUSTERS = 30
CLUSTER_COLUMNS = (
    Column("id", "cluster", "right"),
    Column("size", justify="right"),
    Column("cohesion", justify="right"),
    Column(
        "classes",
        wrap=True,
        text=lambda v: ", ".join(f"{c['class_name']} {c['count']}" for c in v[:3]),
    ),
)


def _params(**values: object) -> ClusterParams:
    try:
        return ClusterParams.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        err_console.print(f"[red]invalid options: {problems}[/red]")
        raise typer.Exit(USAGE) from None


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
    duplicate_match: float | None = typer.Option(
        None,
        "--duplicate-match",
        help="crop match a candidate pair needs to count as a near-duplicate (default 0.87)",
    ),
    no_duplicates: bool = typer.Option(False, "--no-duplicates", help="skip near-duplicates"),
    as_json: bool = json_option(),
) -> None:
    """Cluster the selected objects; print a summary and write the HTML page (--out)."""
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
        duplicate_match=duplicate_match,
    )
    if no_duplicates:
        params = params.model_copy(
            update={"duplicate_similarity": None, "image_duplicate_similarity": None}
        )
    settings = settings_or_exit()
    db = open_database(settings)
    try:
        with db.read() as session:
            plan_report(session, params)
    except InvalidInput as exc:
        err_console.print(f"[red]{exc.code}: {exc.message}[/red]")
        db.dispose()
        raise typer.Exit(FAILURE) from None
    report_id = create_cluster_report(db, params)
    with err_console.status(f"computing report {report_id}…"):
        status = run_cluster_report(db, settings.report_config(), report_id)
    with db.read() as session:
        report = session.get(Report, report_id)
        assert report is not None
        code, reason, result = report.error_code, report.error_message, report.result
    db.dispose()
    if status != ReportStatus.DONE or result is None:
        err_console.print(f"[red]report {report_id} failed: {code}: {reason}[/red]")
        raise typer.Exit(FAILURE)
    folder = settings.reports_dir / str(report_id)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / REPORT_HTML, out)
    overall = result["overall"]
    listing = Listing(f"report {report_id}: {overall['objects']} objects", CLUSTER_COLUMNS)
    for cluster in sorted(result["clusters"], key=lambda c: -c["size"])[:TOP_CLUSTERS]:
        listing.add(
            id=cluster["id"],
            size=cluster["size"],
            cohesion=cluster["cohesion"],
            classes=[
                {"class_name": c["class_name"], "count": c["count"]} for c in cluster["classes"]
            ],
        )
    html = out if out is not None else folder / REPORT_HTML
    assignments = [folder / ASSIGNMENTS_CSV, folder / ASSIGNMENTS_PARQUET]
    if as_json:
        print_json(
            {
                "report_id": report_id,
                "objects": overall["objects"],
                "clusters": overall["clusters"],
                "noise": overall["noise"],
                "purity": overall.get("purity"),
                "purity_baseline": overall.get("purity_baseline"),
                "duplicates": result.get("duplicates"),
                "html": str(html),
                "assignments": [str(path) for path in assignments],
                "largest_clusters": listing_json(listing),
            }
        )
        return
    print_listing(listing)
    purity = overall.get("purity")
    message(
        f"clusters: {overall['clusters']}  noise: {overall['noise']}  "
        + (
            f"purity: {purity:.3f} (chance {overall['purity_baseline']:.3f})"
            if purity is not None
            else ""
        )
    )
    duplicates = result.get("duplicates")
    if duplicates:
        message(
            f"near-duplicate objects: {duplicates['group_count']} groups "
            f"({duplicates['objects_in_groups']} objects; {duplicates['candidate_pairs']} "
            f"candidate pairs at similarity ≥ {duplicates['threshold']}, "
            + (
                f"confirmed by crop match ≥ {duplicates['match_threshold']})"
                if duplicates.get("match_threshold") is not None
                else "not checked on the pixels)"
            )
        )
    images = result.get("image_duplicates")
    if images:
        message(
            f"near-duplicate images: {images['group_count']} groups "
            f"({images['images_in_groups']} of {images['images']} images)"
        )
    message(f"HTML: {html}")
    message(f"assignments: {', '.join(str(path) for path in assignments)}")


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
