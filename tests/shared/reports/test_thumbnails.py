"""Exemplar crops embedded as data URIs."""

from __future__ import annotations

import base64
import io

from PIL import Image as PILImage

from shared.db.database import Database
from shared.db.models import Image
from shared.reports.thumbnails import crop_data_uris
from shared.settings import Settings
from tests.factories import seed_clustered


def test_crops_of_stored_objects_and_none_for_missing_files(
    settings: Settings, database: Database
) -> None:
    collection = seed_clustered(settings, database, images=3, objects_per_image=2, duplicates=0)
    wanted = collection.object_ids
    # The first image's original is gone: its objects get no crop (the page shows a placeholder).
    with database.begin() as session:
        image = session.get(Image, collection.image_ids[0])
        assert image is not None and image.storage_path is not None
        (settings.data_dir / image.storage_path).unlink()
    uris = crop_data_uris(database, settings.report_config(), [*wanted, 99_999], size=16)
    gone = {o for o, i in collection.image_of.items() if i == collection.image_ids[0]}
    assert set(uris) == set(wanted) - gone
    for uri in uris.values():
        assert uri.startswith("data:image/jpeg;base64,")
        crop = PILImage.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert crop.format == "JPEG" and crop.size == (16, 14)  # 20 x 18 box fitted into 16
