"""``roisearch search`` / ``roisearch similar``: nearest neighbours, as a table or ``--json``.

Without ``--url`` they answer from the local data dir in process, with the search service the
API uses (:class:`shared.search.service.SearchService`; the database, index and model are
built once here, for the one command); with ``--url`` they ask a running API. Either way the
``--json`` output is the API's response body (``SimilarResponse`` / ``ImageSearchResponse``
of :mod:`shared.search.models`: stable field names, documented in docs/api.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from roisearch.context import console, settings_or_exit
from roisearch.errors import reported
from shared.errors import CodedError, Conflict, InvalidInput, NotFound, Unavailable, Unsupported
from shared.search.models import GroupBy, Pick
from shared.selection import Selection, selection_from
from shared.settings import Settings

if TYPE_CHECKING:
    import httpx

    from shared.search.service import SearchService

app = typer.Typer()

URL_HELP = (
    "Ask the API at this base URL (e.g. http://localhost:8000) instead of searching the local "
    "data dir in process."
)
KEY_HELP = "API key for --url (default ROISEARCH_API_KEY)."
# Width of piped tables: wider than any row, so that none is wrapped.
UNWRAPPED = 100_000
JSON_HELP = "Print the API's JSON response body instead of a table."
TIMEOUT_S = 120.0


# --- the selection: CLI options → Selection, in this one place --------------------------------
ClassesOption = typer.Option(None, "--classes", help="Class names or ids (comma-separate/repeat)")
IngestionOption = typer.Option(None, "--ingestion", min=1, help="Only objects of this ingestion")
MinScoreOption = typer.Option(None, "--min-score", min=0.0, max=1.0, help="Min detector score")
MinSideOption = typer.Option(None, "--min-box-side", min=0.0, help="Min box side in pixels")
MinSimilarityOption = typer.Option(
    None, "--min-similarity", min=-1.0, max=1.0, help="Min cosine similarity"
)
GroupOption = typer.Option(GroupBy.object, "--group-by", help="'image' rolls hits up to images")


def _selection(
    classes: list[str] | None,
    ingestions: list[int] | None,
    min_score: float | None,
    min_box_side: float | None,
    min_similarity: float | None,
) -> Selection:
    return selection_from(
        classes=classes,
        ingestions=ingestions,
        min_score=min_score,
        min_box_side=min_box_side,
        min_similarity=min_similarity,
    )


def query_params(selection: Selection, group_by: GroupBy) -> dict[str, Any]:
    """The API's query parameters of a selection (the names api/dependencies.py parses)."""
    params: dict[str, Any] = {"group_by": group_by.value}
    if selection.classes:
        params["classes"] = list(selection.classes)
    if selection.ingestions:
        params["ingestions"] = list(selection.ingestions)
    for name in ("min_score", "min_box_side", "min_similarity"):
        value = getattr(selection, name)
        if value is not None:
            params[name] = value
    return params


# --- in process ---------------------------------------------------------------------------------
@contextmanager
def local_search(settings: Settings) -> Iterator[SearchService]:
    """The search service over the local data dir: database (migrated), index (loaded and
    caught up once), model (loaded only if an image is searched)."""
    from roisearch.commands.ingest import open_database
    from shared.index import IndexManager
    from shared.model_provider import ModelProvider
    from shared.search.service import SearchService

    db = open_database(settings)
    index = IndexManager(settings, db)
    try:
        index.sync_once()
        yield SearchService(
            db=db,
            index=index,
            detector=ModelProvider(settings.detector_config()).get,
            max_image_pixels=settings.max_image_pixels,
        )
    finally:
        index.stop()
        db.dispose()


# --- through the API ----------------------------------------------------------------------------
# An API error's status → the error family (the inverse of api/errors.py's map).
STATUS_ERRORS: dict[int, type[CodedError]] = {
    404: NotFound,
    409: Conflict,
    415: Unsupported,
    503: Unavailable,
}


@contextmanager
def remote(url: str, api_key: str | None, settings: Settings) -> Iterator[httpx.Client]:
    """An HTTP client of the API at ``url``; a failed connection is one ``api_unreachable``
    error saying what to do, not a traceback."""
    import httpx  # only --url needs it (pyproject: a runtime dependency)

    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    headers = {"X-API-Key": key} if key else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_S) as client:
            yield client
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unavailable(
            "api_unreachable",
            f"cannot reach the API at {url} ({type(exc).__name__}); start it with "
            "`roisearch serve`, or check --url (without --url the search runs in process)",
        ) from None
    except httpx.TransportError as exc:
        raise Unavailable(
            "api_failed", f"the request to {url} failed ({type(exc).__name__}: {exc})"
        ) from None


def body_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 2xx response; an API error as the coded error of its status."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_error:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = error.get("message") or response.text[:200]
        code = error.get("code") or f"http_{response.status_code}"
        kind = STATUS_ERRORS.get(response.status_code, InvalidInput)
        raise kind(code, f"{message} (HTTP {response.status_code})", error.get("details"))
    result: dict[str, Any] = body
    return result


# --- presenting ---------------------------------------------------------------------------------
def emit_json(body: dict[str, Any]) -> None:
    typer.echo(json.dumps(body, indent=2))


def print_hits(title: str, hits: list[dict[str, Any]], base_url: str) -> None:
    """One row per hit. In a terminal the table takes its width and the crop column the rest
    (folded if longer); piped or redirected, nothing is wrapped: a row is one line."""
    fit = console.is_terminal
    table = Table(
        title=title, box=box.SIMPLE_HEAD, expand=fit, pad_edge=False, collapse_padding=True
    )
    for column in ("#", "score", "object", "class", "det", "box", "image"):
        table.add_column(column, justify="left" if column == "class" else "right", no_wrap=True)
    table.add_column("crop", overflow="fold", ratio=1 if fit else None)
    for rank, hit in enumerate(hits, 1):
        box_ = hit["box"]
        table.add_row(
            str(rank),
            f"{hit['score']:.3f}",
            str(hit["object_id"]),
            hit["class_name"],
            f"{hit['detector_score']:.2f}",
            f"{box_['x1']:.0f},{box_['y1']:.0f},{box_['x2']:.0f},{box_['y2']:.0f}",
            str(hit["image_id"]),
            base_url.rstrip("/") + hit["crop_url"],
        )
    # A console's width caps what one print may use: piped output gets a console of its own.
    (console if fit else Console(file=sys.stdout, width=UNWRAPPED)).print(table)


def _parse_box(text: str) -> str:
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        [float(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected x1,y1,x2,y2 in pixels") from None
    return text


# --- commands -----------------------------------------------------------------------------------
@app.command()
def search(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    box: list[str] = typer.Option(
        [], "--box", callback=lambda v: [_parse_box(b) for b in v], help="x1,y1,x2,y2 (repeat)"
    ),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of neighbours."),
    pick: Pick = typer.Option(Pick.all, help="Without --box: which detections to search for"),
    classes: list[str] | None = ClassesOption,
    ingestions: list[int] | None = IngestionOption,
    min_score: float | None = MinScoreOption,
    min_box_side: float | None = MinSideOption,
    min_similarity: float | None = MinSimilarityOption,
    group_by: GroupBy = GroupOption,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    url: str | None = typer.Option(None, help=URL_HELP),
    api_key: str | None = typer.Option(None, help=KEY_HELP),
) -> None:
    """Search with IMAGE: its detected objects, or the regions given with --box."""
    selection = _selection(classes, ingestions, min_score, min_box_side, min_similarity)
    settings = settings_or_exit()
    data = image.read_bytes()
    with reported():
        if url is None:
            from shared.search.boxes import parse_boxes

            with local_search(settings) as service:
                found = service.search_image(
                    data, image.name, parse_boxes(box), k, selection, group_by, pick
                )
            body, base = found.model_dump(mode="json"), ""
        else:
            params = {"k": k, "pick": pick.value, **query_params(selection, group_by)}
            with remote(url, api_key, settings) as client:
                body = body_of(
                    client.post(
                        "/v1/search",
                        params=params,
                        files={"image": (image.name, data)},
                        data={"boxes": box} if box else None,
                    )
                )
            base = url
    if as_json:
        emit_json(body)
        return
    if not body["queries"]:
        console.print("no objects detected; draw a region with --box x1,y1,x2,y2")
    for query in body["queries"]:
        b = query["box"]
        what = query.get("class_name") or "region"
        title = (
            f"{query['source']} {what} at {b['x1']:.0f},{b['y1']:.0f},{b['x2']:.0f},{b['y2']:.0f}"
        )
        print_hits(title, query["hits"], base)


@app.command()
def similar(
    object_id: int = typer.Argument(..., min=1),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of neighbours."),
    classes: list[str] | None = ClassesOption,
    ingestions: list[int] | None = IngestionOption,
    min_score: float | None = MinScoreOption,
    min_box_side: float | None = MinSideOption,
    min_similarity: float | None = MinSimilarityOption,
    group_by: GroupBy = GroupOption,
    include_self: bool = typer.Option(False, "--include-self", help="Keep OBJECT_ID in the hits"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    url: str | None = typer.Option(None, help=URL_HELP),
    api_key: str | None = typer.Option(None, help=KEY_HELP),
) -> None:
    """Objects similar to stored object OBJECT_ID."""
    selection = _selection(classes, ingestions, min_score, min_box_side, min_similarity)
    settings = settings_or_exit()
    with reported():
        if url is None:
            with local_search(settings) as service:
                found = service.similar(
                    object_id, k, selection, group_by, include_self=include_self
                )
            body, base = found.response.model_dump(mode="json"), ""
        else:
            params = {"k": k, "include_self": include_self, **query_params(selection, group_by)}
            with remote(url, api_key, settings) as client:
                body = body_of(client.get(f"/v1/objects/{object_id}/similar", params=params))
            base = url
    if as_json:
        emit_json(body)
        return
    query = body["query"]
    title = f"similar to object {object_id} ({query['class_name']}, image {query['image_id']})"
    print_hits(title, body["hits"], base)
