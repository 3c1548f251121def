"""``roisearch export``: vectors + ids, classes and boxes as .npy, CSV and Parquet files."""

from __future__ import annotations

from pathlib import Path

import typer

from roisearch.commands.ingest import open_database
from roisearch.context import err_console, settings_or_exit
from roisearch.exit_codes import FAILURE, USAGE
from roisearch.output import json_option, message, print_json
from roisearch.progress_bars import counting_bar
from shared.db.models import ObjectOrigin
from shared.errors import InvalidInput
from shared.export.files import FILE_FORMATS, export_directory
from shared.export.rows import ExportSpec
from shared.export.splits import SplitSpec, split_index
from shared.reports.errors import ReportError
from shared.reports.selection import count_objects, resolve_selection
from shared.selection import selection_from


def export(
    out: Path = typer.Argument(..., help="output folder (created)"),
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
    min_score: float | None = typer.Option(None, "--min-score", min=0.0, max=1.0),
    origin: ObjectOrigin | None = typer.Option(
        None, "--origin", help="only detections, or only labelled boxes (annotation files)"
    ),
    label_classes: list[str] | None = typer.Option(
        None, "--label-class", help="only labelled boxes of these label classes (repeat)"
    ),
    split: str | None = typer.Option(
        None, "--split", help="train,val[,test] fractions by image, e.g. 0.8,0.1,0.1"
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the split"),
    part: str | None = typer.Option(None, "--part", help="only train, val or test"),
    formats: list[str] | None = typer.Option(
        None, "--format", "-f", help=f"one of {', '.join(FILE_FORMATS)} (repeat); default: all"
    ),
    as_json: bool = json_option(),
) -> None:
    """Write OUT/vectors.npy, objects.csv, objects.parquet, manifest.json (per split part)."""
    chosen = tuple(formats or FILE_FORMATS)
    unknown = sorted(set(chosen) - set(FILE_FORMATS))
    if unknown:
        err_console.print(f"[red]unknown format(s) {unknown}; use {', '.join(FILE_FORMATS)}[/red]")
        raise typer.Exit(USAGE)
    settings = settings_or_exit()
    db = open_database(settings)
    try:
        split_spec = SplitSpec.parse(split, seed) if split is not None else None
        if part is not None and split_spec is None:
            raise ReportError("invalid_split", "--part needs --split")
        with db.read() as session:
            selection = resolve_selection(
                session,
                selection_from(
                    space_id=space,
                    classes=classes,
                    ingestions=ingestions,
                    min_score=min_score,
                    origin=None if origin is None else origin.value,
                    label_classes=label_classes,
                ),
            )
            total = count_objects(session, selection)
        if total == 0:
            raise ReportError("empty_selection", "no object matches the selection")
        spec = ExportSpec(
            selection=selection,
            split=split_spec,
            part=None if part is None else split_index(part),
        )
    except InvalidInput as exc:
        err_console.print(f"[red]{exc.code}: {exc.message}[/red]")
        db.dispose()
        raise typer.Exit(FAILURE) from None
    with counting_bar("objects") as bar:
        task = bar.add_task(f"exporting to {out}", total=total)
        manifest = export_directory(
            db, spec, out, formats=chosen, on_batch=lambda n: bar.advance(task, n)
        )
    db.dispose()
    if as_json:
        print_json(
            {"out": str(out), "dim": manifest["dim"], "rows": manifest["rows"], "formats": chosen}
        )
        return
    rows = ", ".join(f"{name}: {n}" for name, n in manifest["rows"].items())
    message(f"exported {rows} objects (dim {manifest['dim']}) to {out}")


def register(app: typer.Typer) -> None:
    app.command()(export)
