"""Entry point of the ``roisearch`` console script."""

from __future__ import annotations

import typer

from roisearch.commands import client, db, engine, ingest, serve

app = typer.Typer(
    name="roisearch",
    help="Object-level similarity search for image archives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
engine.register(app)  # top-level `layers` and `convert`
ingest.register(app)  # `ingest`, `worker`, `ingestions list`
app.add_typer(serve.app)  # top-level `serve`
app.add_typer(client.app)  # top-level `search`, `similar`


def main() -> None:
    app()
