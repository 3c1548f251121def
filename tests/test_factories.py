"""The test factories write what the service writes: originals where the image store puts them."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import Image
from shared.imaging.store import read_original, relative_path
from shared.settings import Settings
from tests.factories import seed_clustered, seed_collection


def test_seeded_originals_are_in_the_image_stores_layout(
    settings: Settings, database: Database
) -> None:
    seed_collection(settings, database, images=2)
    seed_clustered(settings, database, images=2, duplicates=1, space_key="other")
    with database.read() as session:
        images = session.execute(select(Image.sha256, Image.storage_path, Image.bytes)).all()
    assert len(images) == 5
    for sha256, storage_path, size in images:
        assert storage_path == relative_path(sha256)
        data = read_original(settings.data_dir, storage_path)
        assert hashlib.sha256(data).hexdigest() == sha256 and len(data) == size
