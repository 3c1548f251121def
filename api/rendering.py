"""Image renderings served by the API: object crops (cached JPEG thumbnails), drawn detections.

Stored originals are decoded with :func:`shared.imaging.decoding.decode_image`, which applies
EXIF orientation, so boxes (original-image pixels after orientation) line up.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from api.errors import ApiError
from shared.db.models import DetectedObject, Image
from shared.imaging.crops import CropError, crop_thumbnail
from shared.imaging.decoding import ImageDecodeError, decode_image
from shared.settings import Settings

JPEG_QUALITY = 85
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]


def original_path(settings: Settings, image: Image) -> Path:
    """The stored original, checked to lie inside the data directory (else 404)."""
    if not image.storage_path:
        raise ApiError(
            404, "original_not_stored", f"the original of image {image.id} is not stored"
        )
    root = settings.data_dir.resolve()
    path = (root / image.storage_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ApiError(404, "original_missing", f"the original file of image {image.id} is missing")
    return path


def _decode_original(settings: Settings, image: Image) -> np.ndarray:
    path = original_path(settings, image)
    try:
        decoded = decode_image(
            path.read_bytes(), name=f"image {image.id}", max_pixels=settings.max_image_pixels
        )
    except ImageDecodeError as exc:
        raise ApiError(
            422, exc.code, f"the stored original of image {image.id} cannot be decoded"
        ) from None
    return decoded.array


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jpeg(image: PILImage.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def crop_jpeg(settings: Settings, obj: DetectedObject, image: Image, size: int) -> Path:
    """A JPEG of the object's box, fitted into ``size``×``size``, cached on disk.

    The cache key covers the image content hash, the box and the size (not just the object
    id: SQLite may reuse the id of a deleted last row), so a stale crop is never served.
    """
    key = hashlib.sha256(
        f"{image.sha256}:{obj.x1:.3f},{obj.y1:.3f},{obj.x2:.3f},{obj.y2:.3f}:{size}".encode()
    ).hexdigest()
    path = settings.cache_dir / "crops" / key[:2] / f"{key}.jpg"
    if path.is_file():
        return path
    array = _decode_original(settings, image)
    try:
        crop = crop_thumbnail(array, (obj.x1, obj.y1, obj.x2, obj.y2), size)
    except CropError:
        raise ApiError(422, "empty_crop", f"object {obj.id} has an empty box") from None
    _atomic_write(path, _jpeg(crop))
    return path


def detections_jpeg(
    settings: Settings, image: Image, objects: Sequence[DetectedObject], max_side: int
) -> bytes:
    """The image with its detections drawn (box + class + score), at most ``max_side`` px."""
    array = _decode_original(settings, image)
    canvas = PILImage.fromarray(array)
    scale = min(1.0, max_side / max(canvas.width, canvas.height))
    if scale < 1.0:
        canvas = canvas.resize(
            (max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))),
            PILImage.Resampling.BILINEAR,
        )
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(2 * max(canvas.width, canvas.height) / 640))
    for obj in objects:
        color = PALETTE[obj.class_id % len(PALETTE)]
        box = [obj.x1 * scale, obj.y1 * scale, obj.x2 * scale, obj.y2 * scale]
        draw.rectangle(box, outline=color, width=width)
        label = f"#{obj.id} {obj.class_name} {obj.score:.2f}"
        draw.text((box[0] + 2, max(0.0, box[1] - 11)), label, fill=color)
    return _jpeg(canvas)
