"""Delete images / ingestions and take their objects out of search at once.

The database transaction deletes the rows and records tombstones (so that every index replica,
in every process, drops the ids on its next catch-up); after the commit this process's index
drops them immediately with ``IndexManager.remove``, so the very next search cannot return them.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.resources import Resources
from api.schemas import DeleteResponse
from shared.db.models import DetectedObject, Image, Ingestion, IngestionItem, ObjectTombstone
from shared.ingestion.uploads import remove_upload

log = logging.getLogger(__name__)


def _delete_image_rows(session: Session, image_ids: list[int]) -> dict[int, list[int]]:
    """Delete images (objects cascade) and write tombstones; returns object ids per space."""
    by_space: dict[int, list[int]] = defaultdict(list)
    if not image_ids:
        return by_space
    for object_id, space_id in session.execute(
        select(DetectedObject.id, DetectedObject.space_id).where(
            DetectedObject.image_id.in_(image_ids)
        )
    ):
        by_space[int(space_id)].append(int(object_id))
    if by_space:
        session.add_all(
            ObjectTombstone(object_id=oid, space_id=sid)
            for sid, oids in by_space.items()
            for oid in oids
        )
    # Explicit object delete: SQLite only cascades with foreign_keys=ON, which a foreign
    # connection might not have set.
    session.execute(delete(DetectedObject).where(DetectedObject.image_id.in_(image_ids)))
    session.execute(delete(Image).where(Image.id.in_(image_ids)))
    return by_space


def _remove_from_index(resources: Resources, by_space: dict[int, list[int]]) -> int:
    removed = 0
    for space_id, object_ids in by_space.items():
        resources.index.remove(space_id, object_ids)
        removed += len(object_ids)
    return removed


def _unlink_originals(resources: Resources, paths: list[str]) -> None:
    root = resources.settings.data_dir.resolve()
    for relative in paths:
        path = (root / relative).resolve()
        if path.is_relative_to(root):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove a stored original of a deleted image")


def delete_images(resources: Resources, image_ids: list[int]) -> DeleteResponse:
    with resources.db.begin() as session:
        existing = session.execute(
            select(Image.id, Image.storage_path).where(Image.id.in_(image_ids))
        ).all()
        ids = [int(i) for i, _ in existing]
        by_space = _delete_image_rows(session, ids)
    removed = _remove_from_index(resources, by_space)
    _unlink_originals(resources, [p for _, p in existing if p])
    return DeleteResponse(
        deleted_images=len(ids),
        deleted_objects=sum(len(v) for v in by_space.values()),
        removed_from_index=removed,
    )


def delete_ingestion(resources: Resources, ingestion_id: int) -> DeleteResponse | None:
    """Delete an ingestion and the images no other ingestion contains; None if unknown."""
    with resources.db.begin() as session:
        ingestion = session.get(Ingestion, ingestion_id)
        if ingestion is None:
            return None
        mine = select(IngestionItem.image_id).where(
            IngestionItem.ingestion_id == ingestion_id, IngestionItem.image_id.is_not(None)
        )
        shared_ids = select(IngestionItem.image_id).where(
            IngestionItem.ingestion_id != ingestion_id, IngestionItem.image_id.in_(mine)
        )
        doomed = session.execute(
            select(Image.id, Image.storage_path).where(
                Image.id.in_(mine), Image.id.not_in(shared_ids)
            )
        ).all()
        ids = [int(i) for i, _ in doomed]
        by_space = _delete_image_rows(session, ids)
        session.execute(delete(IngestionItem).where(IngestionItem.ingestion_id == ingestion_id))
        session.execute(delete(Ingestion).where(Ingestion.id == ingestion_id))
        source = ingestion.source
    removed = _remove_from_index(resources, by_space)
    _unlink_originals(resources, [p for _, p in doomed if p])
    # A chunk still running reads the member it has in hand and fails the rest: the
    # ingestion is gone, nothing of it is waited for.
    remove_upload(resources.settings, source)
    return DeleteResponse(
        deleted_images=len(ids),
        deleted_objects=sum(len(v) for v in by_space.values()),
        removed_from_index=removed,
    )
