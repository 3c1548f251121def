"""``roisearch search`` / ``roisearch similar``: query a running API and print a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from roisearch.context import console, err_console, settings_or_exit

if TYPE_CHECKING:
    import httpx

app = typer.Typer()

URL_HELP = "API base URL (default http://ROISEARCH_HOST:ROISEARCH_PORT)."
KEY_HELP = "API key (default ROISEARCH_API_KEY)."
TIMEOUT_S = 120.0


def _client(url: str | None, api_key: str | None) -> httpx.Client:
    import httpx  # only the client commands need it (pyproject: a runtime dependency)

    settings = settings_or_exit()
    base = url or f"http://{settings.host}:{settings.port}"
    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    headers = {"X-API-Key": key} if key else {}
    return httpx.Client(base_url=base, headers=headers, timeout=TIMEOUT_S)


def _check(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_error:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = error.get("message") or response.text[:200]
        err_console.print(f"[red]error {response.status_code}: {message}[/red]")
        raise typer.Exit(1)
    result: dict[str, Any] = body
    return result


def _hits_table(title: str, hits: list[dict[str, Any]], base_url: str) -> Table:
    table = Table(title=title)
    for column in ("rank", "score", "object", "class", "det. score", "box", "image"):
        table.add_column(column, justify="right" if column != "class" else "left", no_wrap=True)
    table.add_column("crop", overflow="fold")
    for rank, hit in enumerate(hits, 1):
        box = hit["box"]
        table.add_row(
            str(rank),
            f"{hit['score']:.3f}",
            str(hit["object_id"]),
            hit["class_name"],
            f"{hit['detector_score']:.2f}",
            f"{box['x1']:.0f},{box['y1']:.0f},{box['x2']:.0f},{box['y2']:.0f}",
            str(hit["image_id"]),
            base_url.rstrip("/") + hit["crop_url"],
        )
    return table


def _parse_box(text: str) -> str:
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        [float(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected x1,y1,x2,y2 in pixels") from None
    return text


@app.command()
def search(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    box: list[str] = typer.Option(
        [], "--box", callback=lambda v: [_parse_box(b) for b in v], help="x1,y1,x2,y2 (repeat)"
    ),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of neighbours."),
    pick: str = typer.Option("all", help="all | central | largest | best (without --box)"),
    classes: str | None = typer.Option(None, "--classes", help="Comma-separated class names"),
    url: str | None = typer.Option(None, help=URL_HELP),
    api_key: str | None = typer.Option(None, help=KEY_HELP),
) -> None:
    """Search with IMAGE: its detected objects, or the regions given with --box."""
    params: dict[str, Any] = {"k": k, "pick": pick}
    if classes:
        params["classes"] = classes
    with _client(url, api_key) as client, image.open("rb") as handle:
        body = _check(
            client.post(
                "/v1/search",
                params=params,
                files={"image": (image.name, handle)},
                data={"boxes": box} if box else None,
            )
        )
        base = str(client.base_url)
    if not body["queries"]:
        console.print("no objects detected; draw a region with --box x1,y1,x2,y2")
    for query in body["queries"]:
        b = query["box"]
        what = query.get("class_name") or "region"
        title = (
            f"{query['source']} {what} at {b['x1']:.0f},{b['y1']:.0f},{b['x2']:.0f},{b['y2']:.0f}"
        )
        console.print(_hits_table(title, query["hits"], base))


@app.command()
def similar(
    object_id: int = typer.Argument(..., min=1),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of neighbours."),
    url: str | None = typer.Option(None, help=URL_HELP),
    api_key: str | None = typer.Option(None, help=KEY_HELP),
) -> None:
    """Objects similar to stored object OBJECT_ID."""
    with _client(url, api_key) as client:
        body = _check(client.get(f"/v1/objects/{object_id}/similar", params={"k": k}))
        base = str(client.base_url)
    query = body["query"]
    console.print(
        _hits_table(
            f"similar to object {object_id} ({query['class_name']}, image {query['image_id']})",
            body["hits"],
            base,
        )
    )
