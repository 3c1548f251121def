"""Training batches from a dataset written by :mod:`demo.export` (COCO file + JPEGs).

The JPEG bytes are held in memory and decoded per sample (a 400 px JPEG decodes in about a
millisecond, far below a training step). Each sample is resized to the square training
input with a random extra scale (×0.7–1.2), placed at a random position on a grey canvas
(cropping when larger) and flipped at random on both axes — the classes are
rotation-invariant shapes, so flips are label-preserving. Without augmentation a sample is
the plain centred letterbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from shared.yolov7.preprocessing import PAD_VALUE

MIN_BOX_PX = 3.0
MIN_KEPT = 0.4  # fraction of a box that must stay inside the canvas to remain a target
MIN_SCALE_JITTER, MAX_SCALE_JITTER = 0.7, 1.2  # random extra scale around the letterbox


@dataclass
class Record:
    """One stored image: JPEG bytes, size, boxes float32 [N, 4] x1y1x2y2 px, classes int64."""

    jpeg: bytes
    width: int
    height: int
    boxes: np.ndarray
    classes: np.ndarray


def load_records(root: Path) -> list[Record]:
    """All images of the dataset folder ``root`` (through its annotations.json)."""
    root = Path(root)
    coco = json.loads((root / "annotations.json").read_text())
    per_image: dict[int, list[tuple[list[float], int]]] = {}
    for ann in coco["annotations"]:
        per_image.setdefault(ann["image_id"], []).append((ann["bbox"], ann["category_id"] - 1))
    records = []
    for entry in coco["images"]:
        anns = per_image.get(entry["id"], [])
        boxes = np.array([[x, y, x + w, y + h] for (x, y, w, h), _ in anns], np.float32)
        records.append(
            Record(
                jpeg=(root / entry["file_name"]).read_bytes(),
                width=int(entry["width"]),
                height=int(entry["height"]),
                boxes=boxes.reshape(-1, 4),
                classes=np.array([c for _, c in anns], np.int64),
            )
        )
    return records


def decode(jpeg: bytes) -> np.ndarray:
    """JPEG bytes → RGB uint8 [H, W, 3]."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("undecodable JPEG in the training set")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def make_sample(
    record: Record, size: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """→ (RGB uint8 [size, size, 3], labels float32 [n, 5] class, cx, cy, w, h in pixels).

    ``rng`` None: centred letterbox, no augmentation."""
    image = decode(record.jpeg)
    h0, w0 = image.shape[:2]
    r = size / max(h0, w0)
    if rng is not None:
        r *= float(rng.uniform(MIN_SCALE_JITTER, MAX_SCALE_JITTER))
    w1, h1 = max(1, round(w0 * r)), max(1, round(h0 * r))
    resized = cv2.resize(image, (w1, h1), interpolation=cv2.INTER_LINEAR)
    if rng is None:
        ox, oy = (size - w1) // 2, (size - h1) // 2
    else:
        ox = int(rng.integers(min(0, size - w1), max(0, size - w1) + 1))
        oy = int(rng.integers(min(0, size - h1), max(0, size - h1) + 1))
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    sx0, sy0 = max(0, -ox), max(0, -oy)
    dx0, dy0 = max(0, ox), max(0, oy)
    cw, ch = min(w1 - sx0, size - dx0), min(h1 - sy0, size - dy0)
    canvas[dy0 : dy0 + ch, dx0 : dx0 + cw] = resized[sy0 : sy0 + ch, sx0 : sx0 + cw]
    boxes = record.boxes * np.float32(r) + np.array([ox, oy, ox, oy], np.float32)
    clipped = boxes.clip(0, size)
    whole = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cw_, ch_ = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (cw_ >= MIN_BOX_PX) & (ch_ >= MIN_BOX_PX) & (cw_ * ch_ >= MIN_KEPT * whole)
    clipped, classes = clipped[keep], record.classes[keep]
    if rng is not None and rng.random() < 0.5:
        canvas = canvas[:, ::-1]
        clipped[:, [0, 2]] = size - clipped[:, [2, 0]]
    if rng is not None and rng.random() < 0.5:
        canvas = canvas[::-1]
        clipped[:, [1, 3]] = size - clipped[:, [3, 1]]
    labels = np.zeros((len(clipped), 5), np.float32)
    labels[:, 0] = classes
    labels[:, 1] = (clipped[:, 0] + clipped[:, 2]) / 2
    labels[:, 2] = (clipped[:, 1] + clipped[:, 3]) / 2
    labels[:, 3] = clipped[:, 2] - clipped[:, 0]
    labels[:, 4] = clipped[:, 3] - clipped[:, 1]
    return np.ascontiguousarray(canvas), labels


def collate(samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Tensor, Tensor]:
    """→ (float32 [B, 3, S, S] in 0..1, targets float32 [T, 6] image, class, cx, cy, w, h)."""
    images = np.stack([s[0] for s in samples]).transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    rows = [
        np.concatenate([np.full((len(lab), 1), i, np.float32), lab], 1)
        for i, (_, lab) in enumerate(samples)
    ]
    targets = torch.from_numpy(np.concatenate(rows, 0) if rows else np.zeros((0, 6), np.float32))
    return x, targets


def epoch_batches(
    records: list[Record],
    size: int,
    batch_size: int,
    seed: int,
    epoch: int,
    augment: bool = True,
    part: tuple[int, int] = (0, 1),
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch: a shuffled pass over ``records`` in batches (last partial batch dropped),
    a deterministic function of (seed, epoch).

    ``part = (rank, world)`` yields only that worker's share of every batch (samples
    rank, rank + world, …): the union over workers is exactly the single-process batch,
    because each sample's augmentation draws from its own stream (seed, epoch, position).
    """
    rank, world = part
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 7]))
    order = rng.permutation(len(records))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        samples = []
        for position in range(start + rank, start + batch_size, world):
            sample_rng = np.random.default_rng(
                np.random.SeedSequence([int(seed), int(epoch), 7, position])
            )
            record = records[order[position]]
            samples.append(make_sample(record, size, sample_rng if augment else None))
        yield collate(samples)
