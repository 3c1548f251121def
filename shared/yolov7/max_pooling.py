"""Max-pooling as elementwise maxima of shifted views: the same values as ``nn.MaxPool2d``.

PyTorch's CPU max-pool is a scalar loop over every window element that also records the
argmax, even under ``inference_mode`` (a profile of an ingestion run put it at 19 % of the demo
detector's CPU time). A k×k max is separable (the max over rows of the max over columns) and
each 1-D max over k is k − 1 vectorised ``torch.maximum`` calls on shifted views. Padding is
−inf, as in ``MaxPool2d``; NaN propagates like there. Exact: tested equal to ``MaxPool2d``.
``python -m bench.max_pooling`` times the forward and the pools alone both ways.

Tensors are NCHW (any float dtype, any device); spatial sizes need not be even.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def max_pool_same(x: Tensor, k: int) -> Tensor:
    """k×k max-pool, stride 1, padding k // 2 (odd k): [N, C, H, W] → [N, C, H, W]."""
    if k % 2 == 0 or k == 1:  # even windows change the size (unused by the family)
        return F.max_pool2d(x, k, 1, k // 2)
    p = k // 2
    padded = F.pad(x, (p, p, p, p), value=float("-inf"))
    h, w = x.shape[-2:]
    rows = padded[..., 0:h, :]
    for i in range(1, k):
        rows = torch.maximum(rows, padded[..., i : i + h, :])
    out = rows[..., 0:w]
    for i in range(1, k):
        out = torch.maximum(out, rows[..., i : i + w])
    return out


def max_pool_strided(x: Tensor, k: int) -> Tensor:
    """k×k max-pool with stride k, no padding (trailing rows/columns that do not fill a
    window are dropped, as ``MaxPool2d`` does): [N, C, H, W] → [N, C, H // k, W // k]."""
    h, w = x.shape[-2] // k * k, x.shape[-1] // k * k
    out: Tensor | None = None
    for dy in range(k):
        for dx in range(k):
            view = x[..., dy:h:k, dx:w:k]
            out = view if out is None else torch.maximum(out, view)
    assert out is not None
    return out


class MaxPool(nn.Module):
    """Module form (no parameters, no state-dict keys): ``stride`` 1 is
    :func:`max_pool_same`, ``stride`` = ``k`` is :func:`max_pool_strided`."""

    def __init__(self, k: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, k):
            raise ValueError(f"max-pool stride must be 1 or the window ({k}), got {stride}")
        self.k = k
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return max_pool_same(x, self.k)
        return max_pool_strided(x, self.k)
