"""Deleting images and ingestions: rows, tombstones, this process's index and the originals."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import func, select

from shared.db.database import Database
from shared.db.models import DetectedObject, Image, Ingestion, ObjectTombstone
from shared.deletion import Deleted, Deletion
from shared.errors import NotFound
from shared.index import IndexManager
from shared.settings import Settings
from tests.factories import seed_collection


def _count(db: Database, column: object) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count(column))) or 0)  # type: ignore[arg-type]


@pytest.fixture
def index(settings: Settings, database: Database) -> Iterator[IndexManager]:
    manager = IndexManager(settings, database)
    yield manager
    manager.stop()


def test_deleted_images_leave_search_at_once_and_lose_their_originals(
    settings: Settings, database: Database, index: IndexManager
) -> None:
    seeded = seed_collection(settings, database, images=4, objects_per_image=3)
    index.sync_once()
    deletion = Deletion(database, index, settings.data_dir)
    with database.read() as session:
        stored = settings.data_dir / str(
            session.scalar(select(Image.storage_path).where(Image.id == seeded.image_ids[0]))
        )
    gone = seeded.object_ids[:3]  # the first image's (seeded image by image)
    assert stored.is_file()

    result = deletion.delete_images([seeded.image_ids[0], 99_999])  # an unknown id is ignored
    assert result == Deleted(deleted_images=1, deleted_objects=3, removed_from_index=3)
    assert not stored.exists()
    assert _count(database, ObjectTombstone.object_id) == 3
    assert _count(database, DetectedObject.id) == 9
    query = np.stack([seeded.vectors[o] for o in gone]).astype(np.float32)
    hits = index.search(seeded.space_id, query, 12, None)
    assert not {h.object_id for row in hits for h in row} & set(gone)


def test_an_ingestion_goes_with_its_images_and_then_is_not_found(
    settings: Settings, database: Database, index: IndexManager
) -> None:
    first = seed_collection(settings, database, images=2, objects_per_image=1)
    index.sync_once()
    deletion = Deletion(database, index, settings.data_dir)
    result = deletion.delete_ingestion(first.ingestion_id)
    assert result == Deleted(deleted_images=2, deleted_objects=2, removed_from_index=2)
    with database.read() as session:
        assert session.get(Ingestion, first.ingestion_id) is None
    with pytest.raises(NotFound) as info:
        deletion.delete_ingestion(first.ingestion_id)
    assert (info.value.code, info.value.message) == (
        "ingestion_not_found",
        f"ingestion {first.ingestion_id} does not exist",
    )
