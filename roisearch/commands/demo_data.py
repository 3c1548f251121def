"""``roisearch demo-data``: write generated demo scenes with ground truth (folder or zip)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from roisearch.context import console, err_console


def demo_data(
    out: Path = typer.Option(..., "--out", help="output folder, or .zip archive with --zip"),
    n: int = typer.Option(500, "--n", min=0, help="number of images"),
    seed: int = typer.Option(0, "--seed", help="scene stream; same seed, same images"),
    as_zip: bool = typer.Option(False, "--zip", help="write one zip archive instead of a folder"),
    plant_objects: bool = typer.Option(
        True,
        "--plant-objects/--no-plant-objects",
        help="paste near-duplicate objects into odd scenes (near_duplicate_objects.json)",
    ),
) -> None:
    """Generate labelled scenes of the demo classes: JPEGs, COCO JSON, YOLO txt, and the
    planted near-duplicates (images: near_duplicates.json; objects:
    near_duplicate_objects.json)."""
    from demo.export import write_dataset

    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    if out.exists() and (as_zip or any(out.iterdir())):
        err_console.print(f"[red]{out} already exists and is not empty; choose another --out[/red]")
        raise typer.Exit(2)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as bar:
        task = bar.add_task("scenes", total=n)
        summary = write_dataset(
            out,
            n,
            seed,
            as_zip=as_zip,
            plant_objects=plant_objects,
            progress=lambda k: bar.update(task, completed=k),
        )
    table = Table(title=f"{out}: {summary.images} images, {summary.objects} objects (seed {seed})")
    table.add_column("class")
    table.add_column("objects", justify="right")
    for name, count in summary.per_class.items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(
        f"near-duplicates planted: {len(summary.near_duplicates)} image copies, "
        f"{len(summary.object_pairs)} object pairs"
    )


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
