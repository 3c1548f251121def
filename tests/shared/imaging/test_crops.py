"""Object crops: clamping, thumbnails, stored originals."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from shared.imaging.crops import (
    CropError,
    crop_thumbnail,
    jpeg_bytes,
    load_original,
    stored_original,
)


def test_crop_is_clamped_and_fitted() -> None:
    array = np.zeros((50, 80, 3), dtype=np.uint8)
    array[10:20, 30:70] = 255
    crop = crop_thumbnail(array, (30.2, 10.0, 69.5, 19.9), 16)
    assert crop.size == (16, 4)  # 40 x 10 pixels, fitted into 16 x 16
    assert np.asarray(crop).min() > 200
    edge = crop_thumbnail(array, (-5.0, -5.0, 10.0, 10.0), 64)
    assert edge.size == (10, 10)
    with pytest.raises(CropError) as info:
        crop_thumbnail(array, (90.0, 10.0, 95.0, 20.0), 16)
    assert info.value.code == "empty_crop"
    decoded = PILImage.open(io.BytesIO(jpeg_bytes(crop, 80)))
    assert decoded.format == "JPEG" and decoded.size == (16, 4)


def test_originals_must_be_stored_inside_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    buffer = io.BytesIO()
    PILImage.new("RGB", (12, 8), (10, 200, 30)).save(buffer, format="PNG")
    (data / "images" / "a.png").write_bytes(buffer.getvalue())
    array = load_original(data, "images/a.png", 1, max_pixels=10_000)
    assert array.shape == (8, 12, 3) and tuple(array[0, 0]) == (10, 200, 30)
    (tmp_path / "outside.png").write_bytes(buffer.getvalue())
    for path, code in (
        (None, "original_not_stored"),
        ("images/missing.png", "original_missing"),
        ("../outside.png", "original_missing"),
    ):
        with pytest.raises(CropError) as info:
            stored_original(data, path, 3)
        assert info.value.code == code and "image 3" in info.value.message
    (data / "images" / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(CropError) as info:
        load_original(data, "images/bad.png", 4, max_pixels=10_000)
    assert info.value.code == "not_an_image" and "image 4" in info.value.message
