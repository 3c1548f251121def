"""Decoded rows → detections (official ``non_max_suppression`` semantics) → original pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from shared.yolov7.nms import batched_nms

MAX_CANDIDATES = 30000


@dataclass
class Detections:
    """Detections of one image in network-input pixels.

    ``boxes`` float32 [n, 4] x1y1x2y2, ``scores`` float32 [n], ``classes`` int64 [n];
    descending score.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def as_rows(self) -> np.ndarray:
        """[n, 6] x1, y1, x2, y2, score, class (float32) — the official output layout."""
        return np.concatenate(
            [self.boxes, self.scores[:, None], self.classes[:, None].astype(np.float32)], 1
        )


def non_max_suppression(
    decoded: Tensor,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 300,
    agnostic: bool = False,
) -> list[Detections]:
    """decoded [B, N, 5 + nc] (cx, cy, w, h, obj, class probs) → per-image Detections.

    Candidates need obj > conf; score = class prob × obj (obj alone when nc = 1); best class
    per row, kept when its score > conf; at most 30000 highest; class-aware greedy NMS;
    at most ``max_detections``.
    """
    decoded = decoded.float()
    nc = decoded.shape[2] - 5
    results = []
    for x in decoded:
        x = x[x[:, 4] > conf_threshold]
        if x.shape[0] == 0:
            results.append(_empty())
            continue
        if nc > 1:
            x = x.clone()
            x[:, 5:] *= x[:, 4:5]
            conf, cls = x[:, 5:].max(1)
        else:
            conf, cls = x[:, 4], torch.zeros(x.shape[0], dtype=torch.int64)
        box = torch.empty_like(x[:, :4])
        box[:, 0] = x[:, 0] - x[:, 2] / 2
        box[:, 1] = x[:, 1] - x[:, 3] / 2
        box[:, 2] = x[:, 0] + x[:, 2] / 2
        box[:, 3] = x[:, 1] + x[:, 3] / 2
        mask = conf > conf_threshold
        box, conf, cls = box[mask], conf[mask], cls[mask]
        if box.shape[0] == 0:
            results.append(_empty())
            continue
        if box.shape[0] > MAX_CANDIDATES:
            top = conf.argsort(descending=True)[:MAX_CANDIDATES]
            box, conf, cls = box[top], conf[top], cls[top]
        b, s, c = box.numpy(), conf.numpy(), cls.numpy().astype(np.int64)
        keep = batched_nms(b, s, np.zeros_like(c) if agnostic else c, iou_threshold)
        keep = keep[:max_detections]
        results.append(Detections(b[keep].copy(), s[keep].copy(), c[keep].copy()))
    return results


def _empty() -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def scale_coords(
    boxes: np.ndarray, input_shape: tuple[int, int], original_shape: tuple[int, int]
) -> np.ndarray:
    """Network-input x1y1x2y2 → original-image pixels, clipped (official ``scale_coords``).

    Uses the recomputed gain ``min(h_in/h0, w_in/w0)`` and centred padding like upstream.
    Returns float32 [n, 4] (not rounded).
    """
    h_in, w_in = input_shape
    h0, w0 = original_shape
    gain = min(h_in / h0, w_in / w0)
    pad_x = (w_in - w0 * gain) / 2
    pad_y = (h_in - h0 * gain) / 2
    t = torch.from_numpy(np.array(boxes, dtype=np.float32, copy=True))
    t[:, [0, 2]] -= pad_x
    t[:, [1, 3]] -= pad_y
    t[:, :4] /= gain
    t[:, [0, 2]] = t[:, [0, 2]].clamp(0, w0)
    t[:, [1, 3]] = t[:, [1, 3]].clamp(0, h0)
    return t.numpy()
