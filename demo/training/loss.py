"""The detection loss of the demo trainer: CIoU boxes, IoU-graded objectness, class BCE.

For the raw head tensors ``[B, na, H, W, nc + 5]`` (pre-sigmoid) of every level:

* **box**: 1 − CIoU between each positive slot's decoded box and its target (CIoU = IoU
  minus the normalised centre distance minus an aspect-consistency term), averaged over the
  positives of the level;
* **objectness**: binary cross-entropy over every slot; positives aim at their (detached,
  non-negative) IoU with the target rather than at 1, so the score a slot learns is how well
  it localises, which is what the NMS ranking wants. Levels are weighted (fine levels have
  many more empty slots, so their mean is diluted);
* **class**: binary cross-entropy of each positive's class logits against the one-hot class
  (independent sigmoids, as the engine's NMS expects).

The sum is scaled by the batch size so the gradient size does not depend on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from demo.training.targets import assign_targets


@dataclass(frozen=True)
class LossWeights:
    box: float = 0.05
    objectness: float = 0.5
    classes: float = 0.2
    level_balance: tuple[float, ...] = (4.0, 1.0, 0.4)
    ratio_limit: float = 4.0


def ciou(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU of paired boxes given as centre x, centre y, w, h: [M, 4] × [M, 4] → [M]."""
    p1, p2 = pred[:, :2] - pred[:, 2:] / 2, pred[:, :2] + pred[:, 2:] / 2
    t1, t2 = target[:, :2] - target[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2
    overlap = (torch.minimum(p2, t2) - torch.maximum(p1, t1)).clamp(min=0).prod(1)
    union = pred[:, 2:].prod(1) + target[:, 2:].prod(1) - overlap + eps
    iou = overlap / union
    enclosing = torch.maximum(p2, t2) - torch.minimum(p1, t1)
    diagonal = enclosing.pow(2).sum(1) + eps
    centre = (pred[:, :2] - target[:, :2]).pow(2).sum(1)
    pw, ph = pred[:, 2], pred[:, 3] + eps
    tw, th = target[:, 2], target[:, 3] + eps
    v = (4 / math.pi**2) * (torch.atan(tw / th) - torch.atan(pw / ph)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - centre / diagonal - alpha * v


@dataclass
class LossParts:
    """Detached components (already weighted) for logging."""

    box: float
    objectness: float
    classes: float
    positives: int


def detection_loss(
    raws: list[Tensor],
    targets: Tensor,
    anchors_pixels: Tensor,
    strides: tuple[float, ...],
    weights: LossWeights | None = None,
) -> tuple[Tensor, LossParts]:
    """raws: nl × [B, na, H, W, nc + 5]; targets float [T, 6] (image, class, cx, cy, w, h in
    input pixels). Returns (scalar loss, parts)."""
    w = weights or LossWeights()
    device = raws[0].device
    batch = raws[0].shape[0]
    grids = [(int(r.shape[2]), int(r.shape[3])) for r in raws]
    assigned = assign_targets(targets.to(device), anchors_pixels, strides, grids, w.ratio_limit)
    box_loss = torch.zeros((), device=device)
    obj_loss = torch.zeros((), device=device)
    cls_loss = torch.zeros((), device=device)
    positives = 0
    for level, (raw, pos) in enumerate(zip(raws, assigned, strict=True)):
        raw = raw.float()
        obj_target = torch.zeros(raw.shape[:4], device=device)
        if len(pos):
            positives += len(pos)
            slot = raw[pos.image, pos.anchor, pos.cell_y, pos.cell_x]
            xy = slot[:, 0:2].sigmoid() * 2 - 0.5
            wh = (slot[:, 2:4].sigmoid() * 2).pow(2) * pos.anchor_size
            quality = ciou(torch.cat([xy, wh], 1), torch.cat([pos.offset, pos.size], 1))
            box_loss = box_loss + (1 - quality).mean()
            obj_target[pos.image, pos.anchor, pos.cell_y, pos.cell_x] = (
                quality.detach().clamp(min=0).to(obj_target.dtype)
            )
            onehot = F.one_hot(pos.classes, raw.shape[-1] - 5).to(slot.dtype)
            cls_loss = cls_loss + F.binary_cross_entropy_with_logits(slot[:, 5:], onehot)
        balance = w.level_balance[level] if level < len(w.level_balance) else 1.0
        obj_loss = obj_loss + balance * F.binary_cross_entropy_with_logits(raw[..., 4], obj_target)
    box_loss = box_loss * w.box
    obj_loss = obj_loss * w.objectness
    cls_loss = cls_loss * w.classes
    total = (box_loss + obj_loss + cls_loss) * batch
    parts = LossParts(
        float(box_loss.detach()), float(obj_loss.detach()), float(cls_loss.detach()), positives
    )
    return total, parts
