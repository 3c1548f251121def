"""Entry point of the ``roisearch`` console script."""

from __future__ import annotations

import sys

import typer

from roisearch.commands import (
    client,
    db,
    demo,
    demo_data,
    demo_model,
    engine,
    evaluation,
    export,
    index,
    ingest,
    ingestions,
    reports,
    serve,
)
from roisearch.context import err_console
from roisearch.errors import report
from roisearch.exit_codes import EPILOG, FAILURE
from roisearch.storage_errors import storage_failure
from shared.errors import CodedError

app = typer.Typer(
    name="roisearch",
    help="Object-level similarity search for image archives.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
engine.register(app)  # top-level `layers` and `convert`
ingest.register(app)  # `ingest`, `worker`
ingestions.register(app)  # `ingestions list|show`
app.add_typer(serve.app)  # top-level `serve`
app.add_typer(client.app)  # top-level `search`, `similar`
reports.register(app)  # `report clusters`
export.register(app)  # `export`
evaluation.register(app)  # `eval`: the detector against imported labels
index.register(app)  # `index rebuild|status|check`
demo.register(app)  # `demo`: the main job end to end
demo_data.register(app)  # `demo-data`
demo_model.register(app)  # `train-demo`, `eval-demo`


def main() -> None:
    try:
        app()
    except CodedError as exc:  # from any command: one line, not a traceback
        sys.exit(report(exc))
    except Exception as exc:
        message = storage_failure(exc)
        if message is None:
            raise
        err_console.print(f"[red]error: {message}[/red]")
        sys.exit(FAILURE)
