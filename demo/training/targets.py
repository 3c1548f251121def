"""Which prediction slots learn which ground-truth box (anchor-ratio matching + neighbours).

The head predicts, per level l, per anchor a and per cell (i, j), a box whose centre is
``(j + 2σ(tx) − 0.5, i + 2σ(ty) − 0.5)`` cells and whose size is ``(2σ(tw))² · anchor``. So a
slot can reach centres from half a cell before its own cell to one and a half cells after
it, and sizes from 0 to 4× its anchor. We give a box to every slot that can express it
comfortably:

* **anchor by shape**: an anchor takes the box when neither side ratio (box/anchor or
  anchor/box) exceeds ``ratio_limit`` (4 = the head's size range). A box may therefore be
  learnt on several levels and by several anchors, which multiplies positives — important
  with few objects per image.
* **cells by position**: the cell that contains the centre, plus the horizontal neighbour on
  the side of the nearer cell edge and the vertical neighbour likewise (when they exist),
  i.e. three cells for a centre off the edges. Their offsets stay inside (−0.5, 1.5).

Targets arrive as one tensor for the batch: float ``[T, 6]`` rows ``image, class, cx, cy,
w, h`` in network-input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LevelTargets:
    """The positives of one level, M of them (M may be 0).

    image, anchor, cell_y, cell_x, classes: int64 [M]; offset float [M, 2] box centre minus
    the cell's top-left corner (cells, in (−0.5, 1.5)); size float [M, 2] box w, h in cells;
    anchor_size float [M, 2] the slot's anchor in cells; box_index int64 [M] the row of the
    target in the batch tensor.
    """

    image: Tensor
    anchor: Tensor
    cell_y: Tensor
    cell_x: Tensor
    classes: Tensor
    offset: Tensor
    size: Tensor
    anchor_size: Tensor
    box_index: Tensor

    def __len__(self) -> int:
        return int(self.image.shape[0])


def match_anchors(sizes: Tensor, anchors: Tensor, ratio_limit: float) -> Tensor:
    """sizes [T, 2], anchors [na, 2] (same unit) → bool [na, T]: anchor a may learn box t."""
    ratio = sizes.unsqueeze(0) / anchors.unsqueeze(1)
    worst = torch.maximum(ratio, 1.0 / ratio).amax(-1)
    return worst < ratio_limit


def neighbour_cells(centres: Tensor, width: int, height: int) -> tuple[Tensor, Tensor, Tensor]:
    """centres [K, 2] (cells) → (owner index [K'], cell_x [K'], cell_y [K']) for the home cell
    of every centre plus its nearer horizontal and vertical neighbour, where they exist."""
    home = centres.floor()
    frac = centres - home
    hx, hy = home[:, 0].long().clamp(0, width - 1), home[:, 1].long().clamp(0, height - 1)
    owners = [torch.arange(centres.shape[0], device=centres.device)]
    xs, ys = [hx], [hy]
    left = (frac[:, 0] < 0.5) & (hx > 0)
    right = (frac[:, 0] > 0.5) & (hx < width - 1)
    up = (frac[:, 1] < 0.5) & (hy > 0)
    down = (frac[:, 1] > 0.5) & (hy < height - 1)
    for mask, dx, dy in ((left, -1, 0), (right, 1, 0), (up, 0, -1), (down, 0, 1)):
        idx = mask.nonzero().flatten()
        owners.append(idx)
        xs.append(hx[idx] + dx)
        ys.append(hy[idx] + dy)
    return torch.cat(owners), torch.cat(xs), torch.cat(ys)


def assign_targets(
    targets: Tensor,
    anchors_pixels: Tensor,
    strides: tuple[float, ...] | list[float],
    grid_shapes: list[tuple[int, int]],
    ratio_limit: float = 4.0,
) -> list[LevelTargets]:
    """Positives per level (see the module docstring).

    targets float [T, 6] (image, class, cx, cy, w, h; input pixels); anchors_pixels [nl, na, 2];
    grid_shapes [(H_l, W_l)] of the raw head tensors.
    """
    device = targets.device
    result = []
    for level, stride in enumerate(strides):
        height, width = grid_shapes[level]
        anchors = anchors_pixels[level].to(device=device, dtype=torch.float32) / stride
        boxes = targets[:, 2:6].float() / stride
        match = match_anchors(boxes[:, 2:4], anchors, ratio_limit) if len(targets) else None
        if match is None or not bool(match.any()):
            result.append(_empty(device))
            continue
        anchor_idx, box_idx = match.nonzero(as_tuple=True)
        owner, cell_x, cell_y = neighbour_cells(boxes[box_idx, 0:2], width, height)
        rows = box_idx[owner]
        cells = torch.stack([cell_x, cell_y], 1).to(torch.float32)
        chosen_anchor = anchor_idx[owner]
        result.append(
            LevelTargets(
                image=targets[rows, 0].long(),
                anchor=chosen_anchor,
                cell_y=cell_y,
                cell_x=cell_x,
                classes=targets[rows, 1].long(),
                offset=boxes[rows, 0:2] - cells,
                size=boxes[rows, 2:4],
                anchor_size=anchors[chosen_anchor],
                box_index=rows,
            )
        )
    return result


def _empty(device: torch.device) -> LevelTargets:
    i = torch.zeros(0, dtype=torch.int64, device=device)
    f = torch.zeros(0, 2, dtype=torch.float32, device=device)
    return LevelTargets(i, i, i, i, i, f, f, f, i)
