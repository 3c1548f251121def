"""Delete images / ingestions and take their objects out of search at once.

The database transaction deletes the rows and records tombstones (so that every index replica,
in every process, drops the ids on its next catch-up); after the commit this process's index
drops them immediately with ``IndexManager.remove``, so the very next search cannot return them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.db.models import DetectedObject, Image, Ingestion, IngestionItem, ObjectTombstone
from shared.errors import NotFound

if TYPE_CHECKING:
    from shared.index import IndexManager

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


@dataclass(frozen=True)
class Deleted:
    deleted_images: int
    deleted_objects: int
    removed_from_index: int


@dataclass(frozen=True)
class Deletion:
    """Deletes from the database of ``db``, this process's ``index`` and the originals stored
    under ``data_dir``; ``release_source(source)`` is called with a deleted ingestion's source
    (the API removes an uploaded source's files with it)."""

    db: Database
    index: IndexManager
    data_dir: Path
    release_source: Callable[[str], object] | None = None

    def delete_images(self, image_ids: list[int]) -> Deleted:
        """Delete these images (unknown ids are ignored) and their objects."""
        with self.db.begin() as session:
            existing = session.execute(
                select(Image.id, Image.storage_path).where(Image.id.in_(image_ids))
            ).all()
            ids = [int(i) for i, _ in existing]
            by_space = _delete_image_rows(session, ids)
        return self._after_commit(ids, by_space, [p for _, p in existing if p])

    def delete_ingestion(self, ingestion_id: int) -> Deleted:
        """Delete an ingestion and the images no other ingestion contains;
        ``ingestion_not_found`` if unknown."""
        with self.db.begin() as session:
            ingestion = session.get(Ingestion, ingestion_id)
            if ingestion is None:
                raise NotFound("ingestion_not_found", f"ingestion {ingestion_id} does not exist")
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
        deleted = self._after_commit(ids, by_space, [p for _, p in doomed if p])
        if self.release_source is not None:
            # A chunk still running reads the member it has in hand and fails the rest: the
            # ingestion is gone, nothing of it is waited for.
            self.release_source(source)
        return deleted

    def _after_commit(
        self, image_ids: list[int], by_space: dict[int, list[int]], paths: list[str]
    ) -> Deleted:
        removed = 0
        for space_id, object_ids in by_space.items():
            self.index.remove(space_id, object_ids)
            removed += len(object_ids)
        self._unlink_originals(paths)
        return Deleted(
            deleted_images=len(image_ids),
            deleted_objects=sum(len(v) for v in by_space.values()),
            removed_from_index=removed,
        )

    def _unlink_originals(self, paths: list[str]) -> None:
        root = self.data_dir.resolve()
        for relative in paths:
            path = (root / relative).resolve()
            if path.is_relative_to(root):
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    log.warning("could not remove a stored original of a deleted image")
