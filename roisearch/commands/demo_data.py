"""``roisearch demo-data``: write generated demo scenes with ground truth (folder or zip)."""

from __future__ import annotations

from pathlib import Path

import typer

from roisearch.context import err_console
from roisearch.exit_codes import USAGE
from roisearch.output import (
    Column,
    Listing,
    json_option,
    listing_json,
    message,
    print_json,
    print_listing,
)
from roisearch.progress_bars import counting_bar

CLASS_COLUMNS = (Column("class_name", "class"), Column("objects", justify="right"))


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
    as_json: bool = json_option(),
) -> None:
    """Generate labelled scenes of the demo classes: JPEGs, COCO JSON, YOLO txt, and the
    planted near-duplicates (images: near_duplicates.json; objects:
    near_duplicate_objects.json)."""
    from demo.export import write_dataset

    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    if out.exists() and (as_zip or any(out.iterdir())):
        err_console.print(f"[red]{out} already exists and is not empty; choose another --out[/red]")
        raise typer.Exit(USAGE)
    with counting_bar("scenes") as bar:
        task = bar.add_task("scenes", total=n)
        summary = write_dataset(
            out,
            n,
            seed,
            as_zip=as_zip,
            plant_objects=plant_objects,
            progress=lambda k: bar.update(task, completed=k),
        )
    listing = Listing(
        f"{out}: {summary.images} images, {summary.objects} objects (seed {seed})", CLASS_COLUMNS
    )
    for name, count in summary.per_class.items():
        listing.add(class_name=name, objects=count)
    if as_json:
        print_json(
            {
                "out": str(out),
                "seed": seed,
                "images": summary.images,
                "objects": summary.objects,
                "classes": listing_json(listing),
                "near_duplicate_pairs": len(summary.near_duplicates),
                "near_duplicate_object_pairs": len(summary.object_pairs),
            }
        )
        return
    print_listing(listing)
    message(
        f"near-duplicates planted: {len(summary.near_duplicates)} image copies, "
        f"{len(summary.object_pairs)} object pairs"
    )


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
