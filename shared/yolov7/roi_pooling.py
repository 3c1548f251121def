"""RoIAlign-style pooling of feature maps over boxes (pure functions, torch).

Coordinate frames: boxes arrive in **network-input (letterboxed) pixels** x1y1x2y2; a layer
with stride s covers the input, so the box lies at ``(x1/s, y1/s, x2/s, y2/s)`` in feature
cells (cell k spans [k, k+1), its centre at k + 0.5).

Per box and axis we take n = ceil(2 · extent in cells) evenly spaced sample points (at least
one) inside the box, clipped first to the unpadded content region so letterbox padding is
never sampled. Each sample is bilinearly interpolated between cell centres, with the
interpolation coordinate clamped to the cells the box overlaps — so a box's vector depends
only on the cells it overlaps, and boxes smaller than a cell, at borders, or degenerate
(zero or negative size) still give finite values from at least one cell. Averaging bilinear
samples over a rectangular grid is separable, so the pooled vector is
``Σ_h Σ_w Wy[h] Wx[w] F[:, h, w]`` with per-axis weight rows: one einsum per image, no
Python loop over boxes, exact for any number of boxes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _axis_weights(lo: np.ndarray, hi: np.ndarray, size: int) -> np.ndarray:
    """lo, hi float64 [K] in cells (lo ≤ hi, inside [0, size]) → weights float64 [K, size],
    rows sum 1. numpy, not torch: these arrays are tiny, and a few dozen small torch calls
    per box batch cost more than the pooling itself on CPU."""
    k = lo.shape[0]
    c_lo = np.clip(np.floor(lo), 0, size - 1)
    c_hi = np.maximum(np.clip(np.ceil(hi) - 1, 0, size - 1), c_lo)
    n = np.clip(np.ceil((hi - lo) * 2), 1, 2 * size)
    s = int(n.max()) if k else 1
    j = np.arange(s, dtype=np.float64)[None, :]
    per_sample = (j < n[:, None]) / n[:, None]
    u = lo[:, None] + (j + 0.5) / n[:, None] * (hi - lo)[:, None]
    t = np.minimum(np.maximum(u - 0.5, c_lo[:, None]), c_hi[:, None])
    i0 = np.floor(t)
    frac = t - i0
    i1 = np.minimum(i0 + 1, c_hi[:, None])
    row = np.arange(k)[:, None] * size
    flat = np.bincount(
        np.concatenate([(row + i0).ravel(), (row + i1).ravel()]).astype(np.intp),
        weights=np.concatenate([((1 - frac) * per_sample).ravel(), (frac * per_sample).ravel()]),
        minlength=k * size,
    )
    return flat.reshape(k, size)


def central_boxes(boxes: Tensor, fraction: float) -> Tensor:
    """[K, 4] x1y1x2y2 → the same boxes scaled by ``fraction`` (0 < f ≤ 1) about their centres.

    Pooling the central part of a box keeps the corners out of the vector: for anything that
    is not a rectangle filling its box, the corners are mostly background (measured on the
    demo detector: docs/demo-detector.md). The result stays inside the original box, so the
    vector still depends only on cells the box overlaps. Same frame and dtype as ``boxes``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return boxes
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * fraction
    return torch.cat([centre - half, centre + half], 1)


def clip_boxes(boxes: np.ndarray, content_box: tuple[float, float, float, float]) -> np.ndarray:
    """Sanitise [K, 4] boxes: NaN → content origin, x1 ≤ x2 / y1 ≤ y2, clipped to the content.

    float32 in and out (the precision the boxes have).
    """
    cx1, cy1, cx2, cy2 = (np.float32(v) for v in content_box)
    b = np.nan_to_num(boxes.astype(np.float32), nan=0.0, posinf=1e9, neginf=-1e9)
    x1 = np.clip(np.minimum(b[:, 0], b[:, 2]), cx1, cx2)
    x2 = np.clip(np.maximum(b[:, 0], b[:, 2]), cx1, cx2)
    y1 = np.clip(np.minimum(b[:, 1], b[:, 3]), cy1, cy2)
    y2 = np.clip(np.maximum(b[:, 1], b[:, 3]), cy1, cy2)
    return np.stack([x1, y1, x2, y2], 1)


def roi_pool(
    feature: Tensor, boxes: Tensor, stride: float, content_box: tuple[float, float, float, float]
) -> Tensor:
    """Pool one image's feature map over boxes.

    feature [C, H, W] (any float dtype); boxes [K, 4] x1y1x2y2 in network-input pixels;
    stride = input pixels per cell; content_box = unpadded region in input pixels.
    Returns float32 [K, C] (not normalised).
    """
    if feature.dim() != 3:
        raise ValueError(f"feature map must be [C, H, W], got {tuple(feature.shape)}")
    c, h, w = feature.shape
    if boxes.shape[0] == 0:
        return torch.zeros(0, c, dtype=torch.float32, device=feature.device)
    clipped = clip_boxes(boxes.detach().cpu().numpy(), content_box)
    b = (clipped / np.float32(stride)).astype(np.float64)
    wx = torch.from_numpy(_axis_weights(b[:, 0], b[:, 2], w)).to(feature.device, torch.float32)
    wy = torch.from_numpy(_axis_weights(b[:, 1], b[:, 3], h)).to(feature.device, torch.float32)
    # Separable weights → one [K, H·W] weight matrix → one matrix product with the map.
    weights = (wy[:, :, None] * wx[:, None, :]).reshape(-1, h * w)
    return weights @ feature.float().reshape(c, h * w).T


def image_pool(
    feature: Tensor, stride: float, content_box: tuple[float, float, float, float]
) -> Tensor:
    """Whole-image vector [C]: the pooling of the unpadded content box (padding excluded)."""
    box = torch.tensor([content_box], dtype=torch.float32)
    return roi_pool(feature, box, stride, content_box)[0]


def level_for_boxes(boxes: Tensor, strides: list[float]) -> Tensor:
    """Multi-scale assignment: the level whose stride best matches the box size.

    A box of side ``sqrt(w·h)`` goes to the level with stride closest (in log2) to side / 8,
    i.e. about 8 cells across — enough cells to describe it, no more. Returns int64 [K].
    """
    side = (boxes[:, 2] - boxes[:, 0]).clamp(min=1) * (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
    target = torch.log2(side.sqrt() / 8.0)
    levels = torch.log2(torch.tensor(strides, dtype=torch.float32))
    return (target.view(-1, 1) - levels.view(1, -1)).abs().argmin(1)
