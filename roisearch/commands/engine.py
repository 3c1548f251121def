"""``roisearch layers`` and ``roisearch convert``: model inspection and safe conversion."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from roisearch.context import console, err_console
from shared.yolov7.errors import EngineError


def layers(
    weights: Path = typer.Option(..., "--weights", help="YOLOv7 .pt or .safetensors"),
    imgsz: int = typer.Option(640, "--imgsz", help="square input side for the shapes"),
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
        raise typer.Exit(1) from None
    table = Table(
        title=f"{weights.name} at {imgsz}x{imgsz} (default ROI layer "
        f"{model.default_feature_layers()[0]})"
    )
    for col in ("#", "type", "from", "output shape", "C", "stride", "params", "ROI", "note"):
        table.add_column(col)
    for row in inspect_layers(model, imgsz):
        table.add_row(
            str(row.index),
            row.type,
            row.source,
            row.shape_text,
            str(row.channels),
            f"{row.stride:g}" if row.stride else "-",
            f"{row.parameters:,}",
            "yes" if row.roi_suitable else "no",
            row.note,
        )
    console.print(table)


def convert(
    src: Path = typer.Argument(..., help="official or plain-state-dict .pt"),
    dst: Path = typer.Argument(..., help="output .safetensors (a .json is written beside it)"),
) -> None:
    """Convert a .pt checkpoint (read with the restricted unpickler) to safetensors + JSON."""
    from shared.yolov7.safe_format import convert as convert_file

    if dst.suffix != ".safetensors":
        err_console.print("[red]DST must end in .safetensors[/red]")
        raise typer.Exit(2)
    try:
        convert_file(src, dst)
    except EngineError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"wrote {dst} and {dst.with_suffix('.json')}")


def register(app: typer.Typer) -> None:
    app.command("layers")(layers)
    app.command("convert")(convert)
