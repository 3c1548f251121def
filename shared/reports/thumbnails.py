"""Exemplar crops for the HTML report, embedded as base64 JPEG ``data:`` URIs.

Each original is decoded once however many of its objects are shown. An object whose crop
cannot be made (original not stored, file missing, undecodable) is simply absent from the
result; the page shows a placeholder for it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable

from shared.db.database import Database
from shared.imaging.crops import CropError, crop_thumbnail, jpeg_bytes
from shared.reports.config import ReportConfig
from shared.reports.originals import iter_image_pixels, iter_object_pixels

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 112
THUMBNAIL_QUALITY = 80


def crop_data_uris(
    db: Database, config: ReportConfig, object_ids: Iterable[int], *, size: int = THUMBNAIL_SIZE
) -> dict[int, str]:
    """object id → ``data:image/jpeg;base64,...`` of its crop (missing ids are left out)."""
    out: dict[int, str] = {}
    for object_id, array, box in iter_object_pixels(db, config, object_ids):
        try:
            data = jpeg_bytes(crop_thumbnail(array, box, size), THUMBNAIL_QUALITY)
        except CropError as exc:
            log.info("report crop of object %s: %s", object_id, exc.message)
            continue
        out[object_id] = _data_uri(data)
    return out


def image_data_uris(
    db: Database, config: ReportConfig, image_ids: Iterable[int], *, size: int = THUMBNAIL_SIZE
) -> dict[int, str]:
    """image id → ``data:`` URI of the whole image fitted into ``size`` (missing ids left out)."""
    out: dict[int, str] = {}
    for image_id, array in iter_image_pixels(db, config, image_ids):
        h, w = array.shape[:2]
        thumbnail = crop_thumbnail(array, (0.0, 0.0, float(w), float(h)), size)
        out[image_id] = _data_uri(jpeg_bytes(thumbnail, THUMBNAIL_QUALITY))
    return out


def _data_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
