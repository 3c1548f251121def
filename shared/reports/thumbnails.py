"""Exemplar crops for the HTML report, embedded as base64 JPEG ``data:`` URIs.

Each original is decoded once however many of its objects are shown. An object whose crop
cannot be made (original not stored, file missing, undecodable) is simply absent from the
result; the page shows a placeholder for it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable

from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import DetectedObject, Image
from shared.imaging.crops import CropError, crop_thumbnail, jpeg_bytes, load_original
from shared.reports.config import ReportConfig

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 112
THUMBNAIL_QUALITY = 80
IN_CHUNK = 2000


def crop_data_uris(
    db: Database, config: ReportConfig, object_ids: Iterable[int], *, size: int = THUMBNAIL_SIZE
) -> dict[int, str]:
    """object id → ``data:image/jpeg;base64,...`` of its crop (missing ids are left out)."""
    wanted = sorted(set(object_ids))
    rows: list[tuple[int, int, str | None, tuple[float, float, float, float]]] = []
    with db.read() as session:
        for start in range(0, len(wanted), IN_CHUNK):
            rows.extend(
                (int(r[0]), int(r[1]), r[2], (r[3], r[4], r[5], r[6]))
                for r in session.execute(
                    select(
                        DetectedObject.id,
                        DetectedObject.image_id,
                        Image.storage_path,
                        DetectedObject.x1,
                        DetectedObject.y1,
                        DetectedObject.x2,
                        DetectedObject.y2,
                    )
                    .join(Image, Image.id == DetectedObject.image_id)
                    .where(DetectedObject.id.in_(wanted[start : start + IN_CHUNK]))
                ).all()
            )
    rows.sort(key=lambda r: (r[1], r[0]))
    out: dict[int, str] = {}
    current_image: int | None = None
    array = None
    for object_id, image_id, storage_path, box in rows:
        if image_id != current_image:
            current_image = image_id
            try:
                array = load_original(
                    config.data_dir,
                    storage_path,
                    image_id,
                    max_pixels=config.max_image_pixels,
                )
            except CropError as exc:
                log.info("report crops: %s", exc.message)
                array = None
        if array is None:
            continue
        try:
            data = jpeg_bytes(crop_thumbnail(array, box, size), THUMBNAIL_QUALITY)
        except CropError as exc:
            log.info("report crop of object %s: %s", object_id, exc.message)
            continue
        out[object_id] = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return out
