"""``roisearch serve``: run the HTTP API with uvicorn (one process: the model and the index
replica live in it, so scale out with more processes behind a load balancer, not forks)."""

from __future__ import annotations

import socket

import typer

from roisearch.commands.ingest import announce_model
from roisearch.context import console, err_console, settings_or_exit
from roisearch.exit_codes import FAILURE
from shared.model_identity import model_identity

app = typer.Typer()


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind the server's socket before anything else starts.

    A port in use is then one line and exit status 1; bound later by uvicorn, the failure
    came after the model's loader thread had started, and the process aborted (134,
    "terminate called without an active exception").
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        err_console.print(
            f"[red]cannot listen on {host}:{port}: {reason.lower()} (another server is running "
            "there? choose another --port or ROISEARCH_PORT)[/red]",
            highlight=False,
        )
        raise typer.Exit(FAILURE) from None
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default ROISEARCH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default ROISEARCH_PORT)."),
    warm_model: bool = typer.Option(
        True, help="Load the model in the background at start-up (else on the first query)."
    ),
) -> None:
    """Start the API (OpenAPI docs at /docs)."""
    settings = settings_or_exit(host=host, port=port)
    sock = listening_socket(settings.host, settings.port)

    import uvicorn

    from api.app import create_app

    application = create_app(settings, warm_model=warm_model)
    announce_model(model_identity(settings.weights))
    console.print(
        f"roisearch API on http://{settings.host}:{settings.port}/ "
        f"(docs: /docs, API key {'required' if settings.api_key else 'not set'})"
    )
    config = uvicorn.Config(
        application,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
