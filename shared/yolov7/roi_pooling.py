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

import torch
from torch import Tensor


def _axis_weights(lo: Tensor, hi: Tensor, size: int) -> Tensor:
    """lo, hi [K] in cells (lo ≤ hi, inside [0, size]) → sampling weights [K, size], rows sum 1."""
    k = lo.shape[0]
    c_lo = torch.floor(lo).clamp(0, size - 1)
    c_hi = torch.maximum((torch.ceil(hi) - 1).clamp(0, size - 1), c_lo)
    n = torch.ceil((hi - lo) * 2).clamp(1, 2 * size)
    s = int(n.max().item()) if k else 1
    j = torch.arange(s, dtype=lo.dtype, device=lo.device).view(1, -1)
    valid = (j < n.view(-1, 1)).to(lo.dtype)
    u = lo.view(-1, 1) + (j + 0.5) / n.view(-1, 1) * (hi - lo).view(-1, 1)
    t = torch.minimum(torch.maximum(u - 0.5, c_lo.view(-1, 1)), c_hi.view(-1, 1))
    i0 = torch.floor(t)
    frac = t - i0
    i1 = torch.minimum(i0 + 1, c_hi.view(-1, 1))
    per_sample = valid / n.view(-1, 1)
    weights = torch.zeros(k, size, dtype=lo.dtype, device=lo.device)
    weights.scatter_add_(1, i0.long(), (1 - frac) * per_sample)
    weights.scatter_add_(1, i1.long(), frac * per_sample)
    return weights


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


def clip_boxes(boxes: Tensor, content_box: tuple[float, float, float, float]) -> Tensor:
    """Sanitise [K, 4] boxes: NaN → content origin, x1 ≤ x2 / y1 ≤ y2, clipped to the content."""
    cx1, cy1, cx2, cy2 = content_box
    b = torch.nan_to_num(boxes.to(torch.float32), nan=0.0, posinf=1e9, neginf=-1e9)
    x1 = torch.minimum(b[:, 0], b[:, 2]).clamp(cx1, cx2)
    x2 = torch.maximum(b[:, 0], b[:, 2]).clamp(cx1, cx2)
    y1 = torch.minimum(b[:, 1], b[:, 3]).clamp(cy1, cy2)
    y2 = torch.maximum(b[:, 1], b[:, 3]).clamp(cy1, cy2)
    return torch.stack([x1, y1, x2, y2], 1)


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
    b = clip_boxes(boxes.to(feature.device), content_box) / float(stride)
    wx = _axis_weights(b[:, 0].double(), b[:, 2].double(), w).float()
    wy = _axis_weights(b[:, 1].double(), b[:, 3].double(), h).float()
    f = feature.float()
    rows = torch.einsum("kh,chw->kcw", wy, f)
    return torch.einsum("kcw,kw->kc", rows, wx)


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
