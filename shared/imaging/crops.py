"""Object crops from stored originals: box clamping, thumbnails, JPEG bytes.

Coordinate frame: boxes are ``(x1, y1, x2, y2)`` in original-image pixels after EXIF
orientation, the frame of :class:`shared.db.models.DetectedObject`;
:func:`shared.imaging.decoding.decode_image` applies the orientation, so they line up.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from shared.errors import CodedError
from shared.imaging.decoding import ImageDecodeError, decode_image

JPEG_QUALITY = 85


class CropError(CodedError):
    """A crop that cannot be made; ``code`` is stable, ``message`` names the item (codes:
    ``original_not_stored``, ``original_missing``, ``empty_crop`` and the decoding codes)."""


def stored_original(data_dir: Path, storage_path: str | None, image_id: int) -> Path:
    """The original's path, checked to lie inside ``data_dir``."""
    if not storage_path:
        raise CropError("original_not_stored", f"the original of image {image_id} is not stored")
    root = data_dir.resolve()
    path = (root / storage_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise CropError("original_missing", f"the original file of image {image_id} is missing")
    return path


def load_original(
    data_dir: Path, storage_path: str | None, image_id: int, *, max_pixels: int
) -> np.ndarray:
    """RGB uint8 [h, w, 3] of the stored original (EXIF-oriented)."""
    path = stored_original(data_dir, storage_path, image_id)
    try:
        decoded = decode_image(path.read_bytes(), name=f"image {image_id}", max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise CropError(
            exc.code, f"the stored original of image {image_id} cannot be decoded"
        ) from None
    return decoded.array


def crop_thumbnail(
    array: np.ndarray, box: tuple[float, float, float, float], size: int
) -> PILImage.Image:
    """The box's pixels of RGB uint8 [h, w, 3] ``array``, fitted into ``size`` x ``size``.

    The box is widened to whole pixels and clamped to the image; an empty result is an
    ``empty_crop`` error.
    """
    h, w = array.shape[:2]
    x1, y1 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x2, y2 = min(w, math.ceil(box[2])), min(h, math.ceil(box[3]))
    if x2 <= x1 or y2 <= y1:
        raise CropError("empty_crop", f"box {tuple(round(v, 1) for v in box)} is empty")
    crop = PILImage.fromarray(array[y1:y2, x1:x2])
    crop.thumbnail((size, size), PILImage.Resampling.BILINEAR)
    return crop


def jpeg_bytes(image: PILImage.Image, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
