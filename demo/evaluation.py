"""Evaluation of a detector on held-out generated scenes: detection mAP and the ROI study.

Held-out scenes come from a seed the training set never used; each is JPEG-encoded at its
own quality and decoded again, exactly as a stored image would be.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from demo.export import LabelledImage
from demo.metrics import (
    DetectionScores,
    ImageDetections,
    ImageTruth,
    box_iou,
    detection_scores,
    retrieval_scores,
)
from demo.scenes import CLASS_NAMES, encode_jpeg, generate_scene
from demo.training.data import decode
from shared.yolov7.detector import Detector, ImageResult
from shared.yolov7.detector_config import DetectorConfig
from shared.yolov7.model import ModelOutput
from shared.yolov7.postprocessing import non_max_suppression, scale_coords
from shared.yolov7.preprocessing import Letterbox, letterbox, to_chw_float
from shared.yolov7.roi_pooling import central_boxes, level_for_boxes, roi_pool

HELD_OUT_SEED = 20_261_129
EVAL_CONF = 0.001  # mAP integrates over all scores, so keep nearly every candidate
EVAL_IOU = 0.6
# kind (7): the central half (per side) of each box; the shapes' box corners are background
CENTRAL_FRACTION = 0.5


def held_out_items(n: int, seed: int = HELD_OUT_SEED) -> list[LabelledImage]:
    """``n`` generated scenes of ``seed`` after a JPEG round trip."""
    items = []
    for index in range(n):
        scene = generate_scene(seed, index)
        image = decode(encode_jpeg(scene.image, scene.jpeg_quality))
        items.append(LabelledImage(f"{seed}/{index}", image, scene.boxes, scene.classes))
    return items


def run_detector(
    detector: Detector,
    items: list[LabelledImage],
    with_truth_boxes: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[ImageResult]:
    """Detector results per item (one image per call: the CPU default), optionally pooling
    the ground-truth boxes as caller boxes too (``query_vectors``)."""
    results = []
    for k, item in enumerate(items):
        boxes = [item.boxes] if with_truth_boxes else None
        results.extend(detector.embed([item.image], boxes))
        if progress is not None:
            progress(k + 1)
    return results


def score_detections(
    results: list[ImageResult], items: list[LabelledImage], num_classes: int = len(CLASS_NAMES)
) -> DetectionScores:
    preds = [ImageDetections(r.boxes, r.scores, r.classes) for r in results]
    truths = [ImageTruth(i.boxes, i.classes) for i in items]
    return detection_scores(preds, truths, num_classes)


@dataclass
class DetectionReport:
    scores: DetectionScores
    images: int
    objects: int

    @property
    def map50(self) -> float:
        return self.scores.map50

    @property
    def map50_95(self) -> float:
        return self.scores.map50_95


def evaluate_detection(
    detector: Detector,
    items: list[LabelledImage],
    progress: Callable[[int], None] | None = None,
) -> DetectionReport:
    """mAP@0.5 and mAP@0.5:0.95 of ``detector`` (its thresholds as configured) on ``items``."""
    results = run_detector(detector, items, progress=progress)
    scores = score_detections(results, items, len(detector.class_names))
    return DetectionReport(scores, len(items), int(sum(len(i.classes) for i in items)))


# --- the ROI pooling study ----------------------------------------------------------------

VECTOR_KINDS = (
    "global_average",
    "integer_slice",
    "roi_align",
    "multiscale_roi_align",
    "centre_cell",
    "concat_roi_align",
    "concat_roi_align_central",
)
KIND_TITLES = {
    "global_average": "(1) global average (seeds)",
    "integer_slice": "(2) integer slice (seeds)",
    "roi_align": "(3) RoIAlign, 1 layer",
    "multiscale_roi_align": "(4) multi-scale RoIAlign",
    "centre_cell": "(5) centre cell",
    "concat_roi_align": "(6) RoIAlign, 3 layers concat.",
    "concat_roi_align_central": "(7) as (6), central half of the box",
}


def _l2(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def pooled_vectors(
    features: dict[int, Tensor],
    boxes: Tensor,
    geo: Letterbox,
    single_layer: int,
    head_layers: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """Every kind's vectors for one image. features: layer → [C, H, W] of this image;
    boxes float [K, 4] x1y1x2y2 in network-input pixels. Returns kind → float32 [K, D]
    (integer_slice rows are NaN where the slice is empty, as in the seeds' code)."""
    h_in = geo.shape[0]
    fmap = features[single_layer].float()
    stride = h_in / fmap.shape[1]
    k = boxes.shape[0]
    out: dict[str, np.ndarray] = {}
    out["global_average"] = _l2(fmap.mean((1, 2))).expand(k, -1).numpy().copy()
    rows = []
    for x1, y1, x2, y2 in (boxes / stride).tolist():
        part = fmap[:, int(y1) : int(y2), int(x1) : int(x2)]
        rows.append(part.mean((1, 2)) if part.numel() else torch.full((fmap.shape[0],), math.nan))
    out["integer_slice"] = (
        _l2(torch.stack(rows)).numpy() if rows else np.zeros((0, fmap.shape[0]), np.float32)
    )
    out["roi_align"] = _l2(roi_pool(fmap, boxes, stride, geo.content_box)).numpy()
    centre = ((boxes[:, :2] + boxes[:, 2:]) / 2 / stride).floor().long()
    cx = centre[:, 0].clamp(0, fmap.shape[2] - 1)
    cy = centre[:, 1].clamp(0, fmap.shape[1] - 1)
    out["centre_cell"] = _l2(fmap[:, cy, cx].T).numpy()
    parts = []
    strides = []
    for layer in head_layers:
        f = features[layer].float()
        strides.append(h_in / f.shape[1])
        parts.append(_l2(roi_pool(f, boxes, strides[-1], geo.content_box)))
    out["concat_roi_align"] = _l2(torch.cat(parts, 1)).numpy()
    central = central_boxes(boxes, CENTRAL_FRACTION)
    out["concat_roi_align_central"] = _l2(
        torch.cat(
            [
                _l2(roi_pool(features[layer].float(), central, st, geo.content_box))
                for layer, st in zip(head_layers, strides, strict=True)
            ],
            1,
        )
    ).numpy()
    level = level_for_boxes(boxes, strides)
    masked = [p * (level == j).float().view(-1, 1) for j, p in enumerate(parts)]
    out["multiscale_roi_align"] = _l2(torch.cat(masked, 1)).numpy()
    return {name: v.astype(np.float32) for name, v in out.items()}


@dataclass
class StudyRow:
    kind: str
    boxes: str  # "GT" (ground-truth boxes) or "detected"
    dim: int
    precision_at_10: float
    mean_ap: float
    queries: int
    note: str = ""


@dataclass
class StudyReport:
    detection: DetectionReport
    rows: list[StudyRow]
    single_layer: int
    head_layers: tuple[int, ...]
    matched_fraction: float


def match_detections(
    det_boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """Greedy one-to-one matching by descending score, any class: int64 [n_det] index of the
    matched ground-truth box or −1."""
    iou = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    match = np.full(len(det_boxes), -1, np.int64)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not len(gt_boxes):
            break
        cand = np.where(taken, -1.0, iou[i])
        j = int(cand.argmax())
        if cand[j] >= threshold:
            taken[j] = True
            match[i] = j
    return match


def roi_study(
    weights: Path | None,
    items: list[LabelledImage],
    progress: Callable[[int], None] | None = None,
    single_layer: int | None = None,
    img_size: int | None = None,
) -> StudyReport:
    """Detection mAP and the retrieval table of every vector kind on ``items``.

    Detection mAP uses a detector with the evaluation thresholds; the retrieval study uses
    the service thresholds (conf 0.25, IoU 0.45) for its detected boxes, runs the same fused
    network once per image keeping the single pooling layer and the head inputs, and pools
    every kind from those maps with the engine's functions. ``single_layer`` is the layer of
    the one-layer kinds (1, 2, 3, 5); default: the family's default layer. ``img_size``: the
    letterbox size (default: the file's own)."""
    service_config = DetectorConfig(weights=weights, device="cpu", img_size=img_size)
    det_eval = Detector.load(
        replace(service_config, conf_threshold=EVAL_CONF, iou_threshold=EVAL_IOU)
    )
    detection = evaluate_detection(det_eval, items)
    service = Detector.load(service_config)
    model = service.model
    single = model.default_feature_layers()[0] if single_layer is None else single_layer
    head_layers = tuple(model.parsed.lead_inputs)
    layers = tuple(sorted({single, *head_layers}))
    gt_vectors: dict[str, list[np.ndarray]] = {k: [] for k in VECTOR_KINDS}
    det_vectors: dict[str, list[np.ndarray]] = {k: [] for k in VECTOR_KINDS}
    gt_labels: list[np.ndarray] = []
    det_labels: list[np.ndarray] = []
    matched = 0
    false_positive = -1
    with torch.inference_mode():
        for n_done, item in enumerate(items, 1):
            boxed, geo = letterbox(item.image, service.img_size, service.stride, auto=True)
            x = torch.from_numpy(to_chw_float([boxed]))
            out = model(x, feature_layers=layers)
            assert isinstance(out, ModelOutput)
            det = non_max_suppression(
                out.decoded, service.conf_threshold, service.iou_threshold, service.max_detections
            )[0]
            features = {i: out.features[i][0] for i in layers}
            gt_in = torch.from_numpy(geo.to_input(item.boxes.reshape(-1, 4)))
            for name, v in pooled_vectors(features, gt_in, geo, single, head_layers).items():
                gt_vectors[name].append(v)
            gt_labels.append(item.classes)
            det_orig = scale_coords(det.boxes, geo.shape, geo.original)
            match = match_detections(det_orig, det.scores, item.boxes)
            labels = np.where(match >= 0, item.classes[np.maximum(match, 0)], 0)
            for i in np.flatnonzero(match < 0):  # false positives: relevant to nobody
                labels[i] = false_positive
                false_positive -= 1
            matched += int((match >= 0).sum())
            det_labels.append(labels)
            for name, v in pooled_vectors(
                features, torch.from_numpy(det.boxes), geo, single, head_layers
            ).items():
                det_vectors[name].append(v)
            if progress is not None:
                progress(n_done)
    n_objects = int(sum(len(i.classes) for i in items))
    rows = []
    for source, vector_sets, label_sets in (
        ("GT", gt_vectors, gt_labels),
        ("detected", det_vectors, det_labels),
    ):
        all_labels = np.concatenate(label_sets) if label_sets else np.zeros(0, np.int64)
        for kind in VECTOR_KINDS:
            stacked = np.concatenate(vector_sets[kind], 0)
            scores = retrieval_scores(stacked, all_labels, k=10)
            note = ""
            if kind == "integer_slice":
                nan_rows = int(np.isnan(stacked).any(1).sum())
                note = f"{nan_rows}/{len(stacked)} empty (NaN)"
            if kind == "global_average":
                note = "1 per image"
            rows.append(
                StudyRow(
                    kind,
                    source,
                    int(stacked.shape[1]),
                    scores.precision_at_k,
                    scores.mean_ap,
                    scores.queries,
                    note,
                )
            )
    return StudyReport(
        detection, rows, single, head_layers, matched / n_objects if n_objects else float("nan")
    )
