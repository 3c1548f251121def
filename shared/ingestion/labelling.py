"""Planning step for labelled datasets: find the annotation files among an ingestion's items,
store each image item's labels on it, and settle each annotation file's item.

Runs after the members are enumerated and before the chunks are counted (see
``shared.ingestion.planning``). An annotation file that was used becomes a ``done`` item
without an image; one that cannot be used fails with its code (``annotation_*``); an image
with a degenerate labelled box fails with ``label_box_invalid``. Members that are not
recognised as annotations stay pending (the pipeline skips them as before).

Idempotent: a re-plan reads the files again and only touches items still pending.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update

from shared.annotations.catalog import Catalog, build_catalog, is_candidate
from shared.annotations.model import BOX_INVALID, AnnotationError
from shared.db.database import Database
from shared.db.models import IngestionItem, ItemStatus
from shared.imaging.store import read_original, relative_path
from shared.ingestion.config import IngestionConfig
from shared.ingestion.sources import MemberError, MemberReader

_items = cast(Table, IngestionItem.__table__)
_SETTLE = (
    update(_items)
    .where(_items.c.id == bindparam("item"), _items.c.status == ItemStatus.PENDING)
    .values(
        status=bindparam("new_status"),
        error_code=bindparam("new_code"),
        error_message=bindparam("new_message"),
        labels=bindparam("new_labels"),
    )
)


def attach_labels(
    db: Database, settings: IngestionConfig, ingestion_id: int, path: Path, kind: str
) -> int:
    """Parse the ingestion's annotation files into its image items; the number of labelled
    images."""
    if kind == "file":
        return 0
    with db.read() as session:
        rows = session.execute(
            select(
                IngestionItem.id,
                IngestionItem.member,
                IngestionItem.staged_sha256,
                IngestionItem.status,
                IngestionItem.labels,
            ).where(
                IngestionItem.ingestion_id == ingestion_id,
                or_(
                    IngestionItem.status == ItemStatus.PENDING,
                    # annotation files settled by an earlier (interrupted) planning
                    (IngestionItem.status == ItemStatus.DONE) & IngestionItem.image_id.is_(None),
                ),
            )
        ).all()
    if not any(is_candidate(r.member) for r in rows):
        return 0
    staged = {r.member: r.staged_sha256 for r in rows}
    with MemberReader(path, kind, settings) if kind != "tar" else _NoReader() as reader:

        def read(member: str) -> bytes:
            sha = staged.get(member)
            try:
                if sha is not None:
                    return read_original(settings.data_dir, relative_path(sha))
                return reader.read(member)
            except MemberError as exc:
                raise AnnotationError(exc.code, exc.message) from None
            except OSError as exc:
                raise AnnotationError("read_failed", f"{member} could not be read: {exc}") from None

        catalog = build_catalog([r.member for r in rows], _cached(read))
    updates = _updates(catalog, [(int(r.id), str(r.member)) for r in rows])
    if updates:
        with db.begin() as session:
            session.execute(_SETTLE, updates)
    return len(catalog.labels)


def _cached(read: Any) -> Any:
    """Class lists are read once per YOLO file that uses them: keep what was read."""
    seen: dict[str, bytes] = {}

    def cached(member: str) -> bytes:
        if member not in seen:
            seen[member] = read(member)
        return seen[member]

    return cached


class _NoReader:
    """Tar members are all staged: no reader is opened."""

    def __enter__(self) -> _NoReader:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def read(self, member: str) -> bytes:  # pragma: no cover - staged members only
        raise MemberError("read_failed", f"{member} was not staged")


def _updates(catalog: Catalog, items: list[tuple[int, str]]) -> list[dict[str, Any]]:
    updates = []
    for item_id, member in items:
        labels = catalog.labels.get(member)
        outcome = catalog.files.get(member)
        row: dict[str, Any] | None = None
        if labels is not None:
            bad = next(
                ((n, b.problem()) for n, b in enumerate(labels.boxes, 1) if b.problem()), None
            )
            if bad is not None:
                message = f"{member}: labelled box {bad[0]} of {labels.file} {bad[1]}"
                row = _row(item_id, ItemStatus.FAILED, BOX_INVALID, message, None)
            else:
                row = _row(item_id, ItemStatus.PENDING, None, None, labels.as_json())
        elif outcome is not None:
            status = ItemStatus.DONE if outcome.code is None else ItemStatus.FAILED
            row = _row(item_id, status, outcome.code, outcome.message, None)
        if row is not None:
            updates.append(row)
    return updates


def _row(
    item: int, status: str, code: str | None, message: str | None, labels: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "item": item,
        "new_status": status,
        "new_code": code,
        "new_message": message,
        "new_labels": labels,
    }
