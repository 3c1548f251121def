"""``roisearch layers`` and ``roisearch convert``: model inspection and safe conversion."""

from __future__ import annotations

from pathlib import Path

import typer

from roisearch.context import console, err_console
from roisearch.exit_codes import FAILURE, USAGE
from roisearch.output import Column, Listing, json_option, listing_json, print_json, print_listing
from shared.yolov7.errors import EngineError

LAYER_COLUMNS = (
    Column("index", "#", "right"),
    Column("type"),
    Column("source", "from", wrap=True),
    Column("shape", "output shape", wrap=True),
    Column("channels", "C", "right"),
    Column("stride", text=lambda v: f"{v:g}" if v else "-", justify="right"),
    Column("parameters", "params", "right", text=lambda v: f"{v:,}"),
    Column("roi_suitable", "ROI"),
    Column("note", wrap=True),
)


def layers(
    weights: Path = typer.Option(..., "--weights", help="YOLOv7 .pt or .safetensors"),
    imgsz: int = typer.Option(640, "--imgsz", help="square input side for the shapes"),
    as_json: bool = json_option(),
) -> None:
    """List every layer: index, type, from, output shape, channels, stride, ROI suitability."""
    from shared.yolov7.checkpoint import load_pt
    from shared.yolov7.inspection import inspect_layers
    from shared.yolov7.safe_format import load_safe

    try:
        model = (
            load_safe(weights)[0] if weights.suffix == ".safetensors" else load_pt(weights)
        ).model
    except EngineError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(FAILURE) from None
    default_layer = model.default_feature_layers()[0]
    listing = Listing(
        f"{weights.name} at {imgsz}x{imgsz} (default ROI layer {default_layer})", LAYER_COLUMNS
    )
    for row in inspect_layers(model, imgsz):
        listing.add(
            index=row.index,
            type=row.type,
            source=row.source,
            shape=row.shape_text,
            channels=row.channels,
            stride=row.stride or None,
            parameters=row.parameters,
            roi_suitable=row.roi_suitable,
            note=row.note,
        )
    if as_json:
        print_json(
            {
                "weights": weights.name,
                "input_size": imgsz,
                "default_layer": default_layer,
                "layers": listing_json(listing),
            }
        )
    else:
        print_listing(listing)


def convert(
    src: Path = typer.Argument(..., help="official or plain-state-dict .pt"),
    dst: Path = typer.Argument(..., help="output .safetensors (a .json is written beside it)"),
) -> None:
    """Convert a .pt checkpoint (read with the restricted unpickler) to safetensors + JSON."""
    from shared.yolov7.safe_format import convert as convert_file

    if dst.suffix != ".safetensors":
        err_console.print("[red]DST must end in .safetensors[/red]")
        raise typer.Exit(USAGE)
    try:
        convert_file(src, dst)
    except EngineError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(FAILURE) from None
    console.print(f"wrote {dst} and {dst.with_suffix('.json')}")


def register(app: typer.Typer) -> None:
    app.command("layers")(layers)
    app.command("convert")(convert)
