"""``roisearch index rebuild|status|check``: the vector index, offline.

These commands work on the database and the snapshots in ``<data_dir>/index``. A running API
server keeps its own index in memory (and writes its own snapshots): to rebuild that one use
``POST /v1/index/rebuild``; ``index rebuild`` here writes the snapshot the next start-up loads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime

import typer
from sqlalchemy.exc import SQLAlchemyError

from roisearch.context import console, err_console, open_database, settings_or_exit
from roisearch.exit_codes import FAILURE, USAGE
from roisearch.output import Column, Listing, json_option, listing_json, print_json, print_listing
from shared.db.database import Database
from shared.settings import Settings

app = typer.Typer(help="The vector index (FAISS): rebuild, status, check.", no_args_is_help=True)

SpaceOption = typer.Option(None, "--space", help="One embedding space id (default: all)")


def _database(settings: Settings) -> Database:
    return open_database(settings)  # the schema at head (SQLite: upgraded if needed)


def _space_ids(db: Database, space: int | None) -> list[int]:
    from shared.index.catchup import list_spaces

    try:
        with db.read_connection() as conn:
            ids = [info.id for info in list_spaces(conn)]
    except SQLAlchemyError as exc:
        err_console.print(
            f"[red]cannot read the embedding spaces ({type(exc).__name__}); is the database "
            "migrated? (roisearch db upgrade)[/red]"
        )
        raise typer.Exit(FAILURE) from None
    if space is not None:
        if space not in ids:
            err_console.print(f"[red]embedding space {space} does not exist[/red]")
            raise typer.Exit(USAGE)
        return [space]
    return ids


@app.command()
def rebuild(space: int | None = SpaceOption) -> None:
    """Build each space's index from the database and write its snapshot."""
    from roisearch.rebuild_progress import rebuild_bar
    from shared.index import IndexManager

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = settings_or_exit()
    db = _database(settings)
    try:
        manager = IndexManager(settings, db)
        for space_id in _space_ids(db, space):
            with rebuild_bar(space_id) as progress:
                manager.rebuild(space_id, reason="roisearch index rebuild", progress=progress)
            status = manager.status(space_id)
            console.print(
                f"space {space_id}: {status.count_index} objects, {status.factory} "
                f"{json.dumps(status.params)} -> snapshot written"
            )
    finally:
        db.dispose()


STATUS_COLUMNS = (
    Column("space_id", "space", "right"),
    Column("type"),
    Column("params", text=lambda v: "-" if v is None else json.dumps(v)),
    Column("in_snapshot", "in snapshot", "right"),
    Column("in_database", "in database", "right"),
    Column("covers_id", "covers id ≤", "right"),
    Column("written_at", "written", text=lambda v: v or "-"),
    Column("problem", wrap=True),
)


@app.command()
def status(space: int | None = SpaceOption, as_json: bool = json_option()) -> None:
    """Snapshots against the database: type, size, covered point, age (loads no index)."""
    from shared.index.catchup import count_objects
    from shared.index.snapshots import SnapshotError, read_footer, snapshot_path

    settings = settings_or_exit()
    db = _database(settings)
    listing = Listing(f"index snapshots in {settings.index_dir}", STATUS_COLUMNS)
    try:
        for space_id in _space_ids(db, space):
            with db.read_connection() as conn:
                in_db = count_objects(conn, space_id)
            try:
                footer = read_footer(snapshot_path(settings.index_dir, space_id))
            except SnapshotError as exc:
                listing.add(space_id=space_id, in_database=in_db, problem=f"no snapshot ({exc})")
                continue
            params = {k: v for k, v in footer["plan"]["params"].items() if k != "efConstruction"}
            written = datetime.fromtimestamp(footer["written_at"], UTC)
            listing.add(
                space_id=space_id,
                type=footer["plan"]["factory"],
                params=params,
                in_snapshot=footer["count"],
                in_database=in_db,
                covers_id=footer["cursor"]["low"],
                written_at=written.isoformat(timespec="seconds"),
            )
    finally:
        db.dispose()
    if as_json:
        print_json({"index_dir": str(settings.index_dir), "spaces": listing_json(listing)})
    else:
        print_listing(listing)


@app.command()
def check(space: int | None = SpaceOption, as_json: bool = json_option()) -> None:
    """Load the index (snapshot + catch-up), compare its ids with the database's.

    Exit status 1 when any space has missing, extra or duplicate ids.
    """
    from shared.index import IndexManager

    settings = settings_or_exit()
    db = _database(settings)
    failed = False
    spaces: list[dict[str, object]] = []
    try:
        manager = IndexManager(settings, db)
        for space_id in _space_ids(db, space):
            result = manager.check(space_id)
            failed |= not result.ok
            if as_json:
                spaces.append(dataclasses.asdict(result))  # IndexCheck: the API's fields
                continue
            verdict = "[green]ok[/green]" if result.ok else "[red]MISMATCH[/red]"
            console.print(
                f"space {space_id}: {verdict} — index {result.count_index}, database "
                f"{result.count_db}, FAISS entries {result.count_faiss}"
            )
            for label, count, ids in (
                ("missing from the index", result.missing_count, result.missing),
                ("extra in the index", result.extra_count, result.extra),
                ("duplicated in FAISS", result.duplicates_count, result.duplicates),
            ):
                if count:
                    console.print(f"  {count} {label}: {ids[:20]}{' …' if count > 20 else ''}")
            for object_id, reason in list(result.rejected.items())[:20]:
                console.print(f"  object {object_id} cannot be indexed: {reason}")
    finally:
        db.dispose()
    if as_json:
        print_json({"spaces": spaces})
    if failed:
        raise typer.Exit(FAILURE)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="index")
