"""``roisearch serve``: run the HTTP API with uvicorn (one process: the model and the index
replica live in it, so scale out with more processes behind a load balancer, not forks)."""

from __future__ import annotations

import typer

from roisearch.context import console, settings_or_exit

app = typer.Typer()


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default ROISEARCH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default ROISEARCH_PORT)."),
    warm_model: bool = typer.Option(
        True, help="Load the model in the background at start-up (else on the first query)."
    ),
) -> None:
    """Start the API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app

    settings = settings_or_exit(host=host, port=port)
    application = create_app(settings, warm_model=warm_model)
    console.print(
        f"roisearch API on http://{settings.host}:{settings.port}/ "
        f"(docs: /docs, API key {'required' if settings.api_key else 'not set'})"
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
    )
