"""Letterboxing exactly as the official ``detect.py`` (format spec, section 4).

Images are RGB uint8 ``[H, W, 3]`` in original pixels. Resizing uses OpenCV's
``resize(INTER_LINEAR)`` (half-pixel centres, no antialiasing) — the official pipeline's
own call, so our letterboxed pixels equal the references exactly (BGR vs RGB order does
not matter: the resize is per channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one letterboxed image (all in pixels).

    ``shape`` (h, w) of the network input; ``original`` (h0, w0); ``resized`` (h, w) of the
    content; ``pad`` = (left, top, right, bottom) integer padding; ``ratio`` the scale r.
    """

    shape: tuple[int, int]
    original: tuple[int, int]
    resized: tuple[int, int]
    pad: tuple[int, int, int, int]
    ratio: float

    @property
    def content_box(self) -> tuple[float, float, float, float]:
        """Unpadded image region in network-input pixels, x1, y1, x2, y2."""
        left, top, _, _ = self.pad
        return (
            float(left),
            float(top),
            float(left + self.resized[1]),
            float(top + self.resized[0]),
        )

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Original-image x1y1x2y2 → network-input pixels (content scale + padding offset)."""
        h0, w0 = self.original
        h, w = self.resized
        sx, sy = w / w0, h / h0
        out = boxes.astype(np.float32).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * sx + self.pad[0]
        out[:, [1, 3]] = out[:, [1, 3]] * sy + self.pad[1]
        return out


def letterbox_geometry(
    height: int,
    width: int,
    new_shape: int = 640,
    stride: int = 32,
    auto: bool = True,
    scaleup: bool = True,
) -> Letterbox:
    """The official arithmetic: r, rounded size, stride-reduced padding split with ±0.1 rounding."""
    r = min(new_shape / height, new_shape / width)
    if not scaleup:
        r = min(r, 1.0)
    # At least one pixel: a 1 x 10000 strip would otherwise round to an empty image (the
    # official arithmetic would fail on it); every other size is unchanged.
    new_w, new_h = max(1, round(width * r)), max(1, round(height * r))
    dw, dh = new_shape - new_w, new_shape - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    dw2, dh2 = dw / 2, dh / 2
    top, bottom = round(dh2 - 0.1), round(dh2 + 0.1)
    left, right = round(dw2 - 0.1), round(dw2 + 0.1)
    return Letterbox(
        shape=(new_h + top + bottom, new_w + left + right),
        original=(height, width),
        resized=(new_h, new_w),
        pad=(left, top, right, bottom),
        ratio=r,
    )


def letterbox(
    image: np.ndarray, new_shape: int = 640, stride: int = 32, auto: bool = True
) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 [H, W, 3] → (letterboxed RGB uint8 [h, w, 3], geometry)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 array, got {image.dtype} {image.shape}")
    h0, w0 = image.shape[:2]
    geo = letterbox_geometry(h0, w0, new_shape, stride, auto)
    h, w = geo.resized
    resized = image
    if (h, w) != (h0, w0):
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    left, top, right, bottom = geo.pad
    if left or top or right or bottom:
        resized = cv2.copyMakeBorder(
            resized,
            top,
            bottom,
            left,
            right,
            cv2.BORDER_CONSTANT,
            value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
        )
    return np.ascontiguousarray(resized), geo


def to_chw_float(batch: list[np.ndarray]) -> np.ndarray:
    """Same-shape letterboxed RGB uint8 images → float32 [B, 3, h, w] in [0, 1]."""
    stacked = np.stack(batch).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(stacked).astype(np.float32) / np.float32(255.0)


def group_by_shape(geometries: list[Letterbox], max_batch: int) -> list[list[int]]:
    """Indices of images grouped by letterboxed shape, each group split into ≤ max_batch.

    Every image keeps its own minimal stride-aligned rectangle (no extra padding is
    computed); images with the same aspect class share a batch. Order inside a group follows
    the input order.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for i, geo in enumerate(geometries):
        groups.setdefault(geo.shape, []).append(i)
    batches: list[list[int]] = []
    for members in groups.values():
        for start in range(0, len(members), max_batch):
            batches.append(members[start : start + max_batch])
    return batches
