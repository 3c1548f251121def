"""``roisearch ingestions list`` and ``roisearch ingestions show ID [--skipped|--failed]``."""

from __future__ import annotations

import typer
from sqlalchemy import select

from roisearch.commands.ingest import open_database
from roisearch.context import err_console, settings_or_exit
from roisearch.exit_codes import USAGE
from roisearch.ingestion_report import ITEM_COLUMNS, load_report, print_report, report_document
from roisearch.output import (
    Column,
    Listing,
    json_option,
    listing_json,
    print_json,
    print_listing,
)
from shared.db.models import Ingestion, ItemStatus
from shared.ingestion.progress import ingestion_progress, items_in_status

app = typer.Typer(help="Ingestions and their progress.", no_args_is_help=True)
PAGE = 1000
LIST_COLUMNS = (
    Column("id", justify="right"),
    Column("source", wrap=True),
    Column("status"),
    Column("items", justify="right"),
    Column("done", justify="right"),
    Column("failed", justify="right"),
    Column("skipped", justify="right"),
    Column("objects_in_images", "objects", "right"),
    Column("created_at", "created", text=lambda v: v[:19].replace("T", " ")),
)


@app.command("list")
def list_ingestions(
    limit: int = typer.Option(20, min=1, max=1000), as_json: bool = json_option()
) -> None:
    """The most recent ingestions with their counts."""
    settings = settings_or_exit()
    db = open_database(settings)
    listing = Listing("ingestions (newest first)", LIST_COLUMNS)
    try:
        with db.read() as session:
            ids = session.scalars(select(Ingestion.id).order_by(Ingestion.id.desc()).limit(limit))
            for ingestion_id in ids:
                p = ingestion_progress(session, ingestion_id, failed_limit=0, skipped_limit=0)
                assert p is not None
                listing.add(
                    id=p.id,
                    source=p.source,
                    status=p.status,
                    items=p.total,
                    done=p.counts.get("done", 0),
                    failed=p.counts.get("failed", 0),
                    skipped=p.counts.get("skipped", 0),
                    objects_in_images=p.objects,
                    created_at=p.created_at.isoformat(),
                )
    finally:
        db.dispose()
    if as_json:
        print_json({"ingestions": listing_json(listing)})
    else:
        print_listing(listing)


@app.command("show")
def show(
    ingestion_id: int = typer.Argument(..., min=1),
    skipped: bool = typer.Option(False, "--skipped", help="List every skipped item."),
    failed: bool = typer.Option(False, "--failed", help="List every failed item."),
    as_json: bool = json_option(),
) -> None:
    """One ingestion: counts, objects, reasons; with --skipped or --failed, every such item."""
    if skipped and failed:
        err_console.print("[red]choose one of --skipped and --failed[/red]")
        raise typer.Exit(USAGE)
    settings = settings_or_exit()
    db = open_database(settings)
    try:
        with db.read() as session:
            if skipped or failed:
                status = ItemStatus.SKIPPED if skipped else ItemStatus.FAILED
                listing = Listing(f"{status} items of ingestion {ingestion_id}", ITEM_COLUMNS)
                exists = session.get(Ingestion, ingestion_id) is not None
                offset = 0
                while exists:
                    page = items_in_status(session, ingestion_id, status, offset, PAGE)
                    for item in page:
                        listing.add(
                            member=item.member, code=item.error_code, message=item.error_message
                        )
                    if len(page) < PAGE:
                        break
                    offset += PAGE
                report = None
            else:
                report = load_report(session, ingestion_id)
                exists = report is not None
    finally:
        db.dispose()
    if not exists:
        err_console.print(f"[red]ingestion {ingestion_id} does not exist[/red]")
        raise typer.Exit(USAGE)
    if report is not None and as_json:
        print_json(report_document(report))
    elif report is not None:
        print_report(report)
    elif as_json:
        print_json({"ingestion_id": ingestion_id, "items": listing_json(listing)})
    else:
        print_listing(listing)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ingestions")
