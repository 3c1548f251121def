"""``roisearch train-demo`` and ``roisearch eval-demo``: the bundled demo detector."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from roisearch.context import console, err_console
from roisearch.exit_codes import FAILURE, USAGE
from roisearch.output import Column, Listing, json_option, print_json, print_listing
from roisearch.progress_bars import counting_bar


def _default_cache(seed: int, images: int) -> Path:
    return Path.home() / ".cache" / "roisearch" / f"demo-train-seed{seed}-{images}"


def train_demo(
    out: Path = typer.Option(..., "--out", help="output .safetensors (a .json goes beside it)"),
    epochs: int = typer.Option(24, "--epochs", min=1),
    img_size: int = typer.Option(320, "--img-size", min=64, help="square training input"),
    serve_size: int | None = typer.Option(
        None,
        "--serve-size",
        min=64,
        help="inference size recorded in the file (default: the top of the training scale jitter, "
        "1.2 x --img-size rounded to 32)",
    ),
    seed: int = typer.Option(0, "--seed", help="training scenes, init and batch order"),
    images: int = typer.Option(4000, "--images", min=16, help="generated training scenes"),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    workers: int = typer.Option(
        2, "--workers", min=1, help="data-parallel processes (one per core)"
    ),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads per worker"),
    lr: float = typer.Option(1e-2, "--lr", min=1e-6, help="AdamW peak learning rate"),
    width: float = typer.Option(0.25, "--width", min=0.05, help="yolov7-tiny width multiple"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="where the training scenes are cached (default ~/.cache/…)"
    ),
    val_images: int = typer.Option(100, "--val-images", min=0, help="held-out scenes per check"),
    init: Path | None = typer.Option(
        None, "--init", help="continue from these weights (.safetensors) instead of scratch"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="continue an interrupted run from its last epoch checkpoint"
    ),
) -> None:
    """Train the demo detector (width-0.25 yolov7-tiny) on generated scenes, on the CPU.

    The defaults are the recipe of the shipped shared/assets/demo-detector.safetensors."""
    from demo.training.trainer import TrainConfig, train

    if out.suffix != ".safetensors":
        err_console.print("[red]--out must end in .safetensors[/red]")
        raise typer.Exit(USAGE)
    for flag, size in (("--img-size", img_size), ("--serve-size", serve_size)):
        if size is not None and size % 32:
            err_console.print(f"[red]{flag} {size} must be a multiple of 32[/red]")
            raise typer.Exit(USAGE)
    config = TrainConfig(
        out=out,
        data_dir=data_dir or _default_cache(seed, images),
        train_images=images,
        epochs=epochs,
        img_size=img_size,
        serve_size=serve_size,
        batch_size=batch_size,
        width_multiple=width,
        lr=lr,
        seed=seed,
        threads=threads,
        workers=workers,
        val_images=val_images,
        init=init,
        resume=resume,
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    result = train(config, log=err_console.print, progress=err_console.is_terminal)
    console.print(
        f"wrote {result.out}: {result.steps} steps in {result.wall_time_s / 60:.1f} min, "
        f"final loss {result.final_loss:.4f}"
    )


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def eval_demo(
    weights: Path | None = typer.Option(
        None, "--weights", help="detector to evaluate (default: the bundled demo detector)"
    ),
    n: int = typer.Option(200, "--n", min=1, help="held-out scenes"),
    seed: int | None = typer.Option(None, "--seed", help="held-out scene stream"),
    json_out: Path | None = typer.Option(
        None, "--out", help="also write the figures (the --json document) to this file"
    ),
    as_json: bool = json_option(),
    threads: int = typer.Option(2, "--threads", min=1),
    layer: int | None = typer.Option(
        None, "--layer", help="layer of the one-layer vector kinds (default: the family's)"
    ),
    img_size: int | None = typer.Option(
        None, "--img-size", min=64, help="letterbox size (default: the weights file's own)"
    ),
) -> None:
    """Detection mAP and the ROI-vector retrieval study on held-out generated scenes."""
    import torch

    from demo.evaluation import HELD_OUT_SEED, KIND_TITLES, held_out_items, roi_study
    from demo.scenes import CLASS_NAMES
    from shared.yolov7.errors import EngineError

    torch.set_num_threads(threads)
    items = held_out_items(n, HELD_OUT_SEED if seed is None else seed)
    with counting_bar("scenes") as bar:
        task = bar.add_task("study", total=n)
        try:
            report = roi_study(
                weights,
                items,
                progress=lambda k: bar.update(task, completed=k),
                single_layer=layer,
                img_size=img_size,
            )
        except EngineError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(FAILURE) from None
    det = report.detection
    per_class = Listing(
        f"detection on {det.images} held-out scenes, {det.objects} objects: "
        f"mAP@0.5 {_fmt(det.map50)}, mAP@0.5:0.95 {_fmt(det.map50_95)}",
        (
            Column("class_name", "class"),
            Column("objects", justify="right"),
            Column("ap50", "AP@0.5", "right", text=_fmt),
            Column("ap50_95", "AP@0.5:0.95", "right", text=_fmt),
        ),
    )
    for c, name in enumerate(CLASS_NAMES):
        ap = det.scores.ap[c]
        per_class.add(
            class_name=name,
            objects=int(det.scores.gt_per_class[c]),
            ap50=float(ap[0]),
            ap50_95=float(ap.mean()),
        )
    study = Listing(
        f"object retrieval by class (precision@10, mAP of every object's neighbours); "
        f"single layer {report.single_layer}, head inputs {list(report.head_layers)}; "
        f"{report.matched_fraction:.1%} of the objects detected (IoU ≥ 0.5)",
        (
            Column("kind", "vector", text=lambda k: KIND_TITLES[k]),
            Column("boxes"),
            Column("dim", justify="right"),
            Column("precision_at_10", "P@10", "right", text=_fmt),
            Column("mean_ap", "mAP", "right", text=_fmt),
            Column("queries", justify="right"),
            Column("note", wrap=True),
        ),
    )
    for row in report.rows:
        study.add(**row.__dict__)
    doc = {
        "images": det.images,
        "objects": det.objects,
        "map50": det.map50,
        "map50_95": det.map50_95,
        "class_ap50": dict(zip(CLASS_NAMES, det.scores.class_ap50(), strict=True)),
        "class_ap50_95": {
            name: float(det.scores.ap[c].mean()) for c, name in enumerate(CLASS_NAMES)
        },
        "class_objects": dict(zip(CLASS_NAMES, det.scores.gt_per_class, strict=True)),
        "matched_fraction": report.matched_fraction,
        "retrieval": [row.__dict__ for row in report.rows],
    }
    if json_out is not None:
        json_out.write_text(json.dumps(doc, indent=1, default=_plain))
    if as_json:
        print_json(json.loads(json.dumps(doc, default=_plain)))  # numpy → Python numbers
        return
    print_listing(per_class)
    print_listing(study)


def _plain(value: object) -> object:
    """numpy scalars in the figures → Python numbers."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def register(app: typer.Typer) -> None:
    app.command("train-demo")(train_demo)
    app.command("eval-demo")(eval_demo)
