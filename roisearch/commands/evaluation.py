"""``roisearch eval``: the active collection's detections against its imported labels."""

from __future__ import annotations

import typer

from roisearch.commands.ingest import open_database
from roisearch.context import err_console, settings_or_exit
from roisearch.exit_codes import FAILURE
from roisearch.output import Column, Listing, json_option, message, print_json, print_listing
from shared.evaluation.collection import EvaluationError, evaluate

COLUMNS = (
    Column("class_name", "class"),
    Column("ground_truth", "labelled", justify="right"),
    Column("detections", justify="right"),
    Column("ap50", "AP@0.5", justify="right"),
    Column("ap50_95", "AP@0.5:0.95", justify="right"),
)


def evaluation(
    space: int | None = typer.Option(
        None, "--space", help="embedding space (default: the only one)"
    ),
    as_json: bool = json_option(),
) -> None:
    """mAP@0.5 and @0.5:0.95 per class of the stored detections on the labelled images
    (matching and precision-recall curves with --json)."""
    settings = settings_or_exit()
    db = open_database(settings)
    try:
        with db.read() as session:
            result = evaluate(session, space)
    except EvaluationError as exc:
        err_console.print(f"[red]{exc.code}: {exc.message}[/red]")
        raise typer.Exit(FAILURE) from None
    finally:
        db.dispose()
    if as_json:
        print_json(result)
        return
    listing = Listing(f"{result['images']} labelled image(s), space {result['space_id']}", COLUMNS)
    for c in result["classes"]:
        listing.add(
            class_name=c["class"],
            ground_truth=c["ground_truth"],
            detections=c["detections"],
            ap50=f"{c['ap50']:.3f}",
            ap50_95=f"{c['ap50_95']:.3f}",
        )
    print_listing(listing)
    if result["map50"] is not None:
        message(f"mAP@0.5 {result['map50']:.3f}, mAP@0.5:0.95 {result['map50_95']:.3f}")
    if result["detector_classes_without_labels"]:
        message(
            "detector classes without labels: "
            + ", ".join(result["detector_classes_without_labels"])
        )


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluation)
