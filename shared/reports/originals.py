"""Stored originals read for a report: each image decoded once, its objects' boxes with it.

An object or image whose original cannot be read (not stored, file missing, undecodable) is
skipped and logged; callers treat it as absent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np
from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import DetectedObject, Image
from shared.imaging.crops import CropError, load_original
from shared.reports.config import ReportConfig

log = logging.getLogger(__name__)

IN_CHUNK = 2000
Box = tuple[float, float, float, float]


def _object_rows(db: Database, object_ids: list[int]) -> list[tuple[int, int, str | None, Box]]:
    rows: list[tuple[int, int, str | None, Box]] = []
    with db.read() as session:
        for start in range(0, len(object_ids), IN_CHUNK):
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
                    .where(DetectedObject.id.in_(object_ids[start : start + IN_CHUNK]))
                ).all()
            )
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


def _load(config: ReportConfig, storage_path: str | None, image_id: int) -> np.ndarray | None:
    try:
        return load_original(
            config.data_dir, storage_path, image_id, max_pixels=config.max_image_pixels
        )
    except CropError as exc:
        log.info("report originals: %s", exc.message)
        return None


def iter_object_pixels(
    db: Database, config: ReportConfig, object_ids: Iterable[int], *, chunk: int = IN_CHUNK
) -> Iterator[tuple[int, np.ndarray, Box]]:
    """(object id, RGB uint8 [h, w, 3] original of its image, box) per readable object, grouped
    by image (each original decoded once per ``chunk`` of ids; memory: one original)."""
    wanted = sorted(set(object_ids))
    for start in range(0, len(wanted), chunk):
        current: int | None = None
        array: np.ndarray | None = None
        for object_id, image_id, storage_path, box in _object_rows(
            db, wanted[start : start + chunk]
        ):
            if image_id != current:
                current = image_id
                array = _load(config, storage_path, image_id)
            if array is not None:
                yield object_id, array, box


def iter_image_pixels(
    db: Database, config: ReportConfig, image_ids: Iterable[int]
) -> Iterator[tuple[int, np.ndarray]]:
    """(image id, RGB uint8 [h, w, 3] original) per readable image, by id."""
    wanted = sorted(set(image_ids))
    for start in range(0, len(wanted), IN_CHUNK):
        with db.read() as session:
            rows = session.execute(
                select(Image.id, Image.storage_path)
                .where(Image.id.in_(wanted[start : start + IN_CHUNK]))
                .order_by(Image.id)
            ).all()
        for image_id, storage_path in rows:
            array = _load(config, storage_path, int(image_id))
            if array is not None:
                yield int(image_id), array
