"""The summary of one ingestion, for people and for ``--json``.

Says what was added (objects added next to the collection's total), what was left out
(skipped members by reason, folded into patterns), what failed and why (the source's reason,
the first failed items), and where to see the rest (``roisearch ingestions show ID --failed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from roisearch.context import err_console
from roisearch.exit_codes import FAILURE, OK
from roisearch.output import Column, Listing, listing_json, message, print_listing
from shared.db.models import IngestionStatus, ItemStatus
from shared.ingestion.outcome import (
    ReasonGroup,
    collection_objects,
    objects_added,
    reason_groups,
)
from shared.ingestion.progress import IngestionProgress, ingestion_progress

FAILED_SHOWN = 10
ITEM_COLUMNS = (
    Column("member", wrap=True),
    Column("code"),
    Column("message", "reason", wrap=True),
)


@dataclass(frozen=True)
class IngestionReport:
    progress: IngestionProgress  # with the first FAILED_SHOWN failed items
    skipped: list[ReasonGroup]
    objects_added: int | None  # None: not known (the run's "before" mark is not)
    collection_objects: int

    @property
    def failed(self) -> bool:
        """The source failed, the run was cancelled, or some items failed."""
        status = self.progress.status
        return status in (IngestionStatus.FAILED, IngestionStatus.CANCELLED) or bool(
            self.progress.counts.get(ItemStatus.FAILED, 0)
        )

    @property
    def exit_code(self) -> int:
        return FAILURE if self.failed else OK


def load_report(
    session: Session, ingestion_id: int, *, after_object_id: int | None = None
) -> IngestionReport | None:
    """The report of ``ingestion_id``; ``after_object_id``: the highest object id before the
    run (then objects added are known)."""
    progress = ingestion_progress(session, ingestion_id, failed_limit=FAILED_SHOWN, skipped_limit=0)
    if progress is None:
        return None
    return IngestionReport(
        progress=progress,
        skipped=reason_groups(session, ingestion_id, ItemStatus.SKIPPED),
        objects_added=(
            None
            if after_object_id is None
            else objects_added(session, ingestion_id, after_object_id)
        ),
        collection_objects=collection_objects(session),
    )


def show_command(ingestion_id: int, what: str) -> str:
    return f"roisearch ingestions show {ingestion_id} --{what}"


def report_document(report: IngestionReport) -> dict[str, Any]:
    """The report's JSON fields (documented in docs/cli.md)."""
    p = report.progress
    failed_items = Listing("failed", ITEM_COLUMNS)
    for item in p.failed:
        failed_items.add(member=item.member, code=item.error_code, message=item.error_message)
    return {
        "id": p.id,
        "source": p.source,
        "source_kind": p.source_kind,
        "status": p.status,
        "error_code": p.error_code,
        "error_message": p.error_message,
        "items": p.total,
        "counts": {str(s): p.counts.get(str(s), 0) for s in ItemStatus},
        "objects_added": report.objects_added,
        "objects_in_images": p.objects,
        "collection_objects": report.collection_objects,
        "images_per_s": None if p.images_per_s is None else round(p.images_per_s, 3),
        "created_at": p.created_at.isoformat(),
        "finished_at": p.finished_at.isoformat() if p.finished_at else None,
        "skipped": [asdict(group) for group in report.skipped],
        "failed_items": listing_json(failed_items),
    }


def _objects_line(report: IngestionReport) -> str:
    p = report.progress
    if report.objects_added is None:
        return f"objects: {p.objects} in its images, {report.collection_objects} in the collection"
    linked = p.objects - report.objects_added
    known = f" ({linked} more in images already in the collection)" if linked > 0 else ""
    return (
        f"objects: {report.objects_added} added{known}, "
        f"{report.collection_objects} in the collection"
    )


def print_report(report: IngestionReport) -> None:
    """The summary lines, then the first failed items and how to list the rest."""
    p = report.progress
    message(f"ingestion {p.id} of {p.source} ({p.source_kind}): {p.status}")
    if p.total or p.status != IngestionStatus.FAILED:  # a source that failed has nothing more
        _counts_lines(report)
    _reasons_lines(report)


def _counts_lines(report: IngestionReport) -> None:
    p = report.progress
    c = p.counts
    message(
        f"items: {p.total} — {c.get('done', 0)} done, {c.get('failed', 0)} failed, "
        f"{c.get('skipped', 0)} skipped, {c.get('pending', 0)} pending"
    )
    message(_objects_line(report))
    if p.images_per_s is not None:
        message(f"speed: {p.images_per_s:.2f} images/s")


def _reasons_lines(report: IngestionReport) -> None:
    p = report.progress
    for group in report.skipped:
        message(f"skipped {group.line()}")
    if report.skipped:
        message(f"  list them: {show_command(p.id, 'skipped')}")
    if p.status == IngestionStatus.FAILED:
        err_console.print(
            f"[red]ingestion {p.id} failed: {p.error_code or 'error'}: "
            f"{p.error_message or 'no reason recorded'}[/red]"
        )
    failed = p.counts.get("failed", 0)
    if failed:
        listing = Listing(
            f"failed items ({'all' if failed <= len(p.failed) else f'first {len(p.failed)}'} "
            f"of {failed})",
            ITEM_COLUMNS,
        )
        for item in p.failed:
            listing.add(member=item.member, code=item.error_code, message=item.error_message)
        print_listing(listing)
        if failed > len(p.failed):
            message(f"  list all {failed}: {show_command(p.id, 'failed')}")
