"""The bundled demo detector, loaded the way the service loads it (``Detector.load(None)``),
on fresh generated scenes it never saw: it detects the shapes with the right classes, reaches
mAP@0.5 ≥ 0.8, and its default ROI vectors retrieve same-class objects (precision@10 ≥ 0.8).
"""

from __future__ import annotations

import numpy as np
import pytest

from demo.evaluation import EVAL_CONF, EVAL_IOU, match_detections, score_detections
from demo.export import LabelledImage
from demo.metrics import retrieval_scores
from demo.scenes import CLASS_NAMES, encode_jpeg, generate_scene
from demo.training.data import decode
from shared.yolov7.detector import DEMO_WEIGHTS, Detector, ImageResult
from shared.yolov7.detector_config import DetectorConfig
from shared.yolov7.safe_format import read_architecture

pytestmark = pytest.mark.skipif(
    not DEMO_WEIGHTS.is_file(),
    reason=f"{DEMO_WEIGHTS} is absent: build it with "
    "`roisearch train-demo --out shared/assets/demo-detector.safetensors`",
)

SEED = 777_001  # neither the training seed nor the model card's evaluation seed
N = 30
MAX_BYTES = 15 * 1024 * 1024


@pytest.fixture(scope="module")
def items() -> list[LabelledImage]:
    out = []
    for i in range(N):
        scene = generate_scene(SEED, i)
        image = decode(encode_jpeg(scene.image, scene.jpeg_quality))
        out.append(LabelledImage(str(i), image, scene.boxes, scene.classes))
    return out


@pytest.fixture(scope="module")
def service_results(items: list[LabelledImage]) -> list[ImageResult]:
    detector = Detector.load(DetectorConfig(device="cpu"))
    return [detector.embed([item.image])[0] for item in items]


def test_asset_is_small_and_self_describing() -> None:
    assert DEMO_WEIGHTS.stat().st_size <= MAX_BYTES
    detector = Detector.load(DetectorConfig(device="cpu"))
    assert detector.class_names == list(CLASS_NAMES)
    doc = read_architecture(DEMO_WEIGHTS)
    assert detector.img_size == doc["img_size"]  # the native training size, recorded
    assert doc["extra"]["trained_by"] == "demo.training.trainer"


def test_detects_the_shapes_with_their_classes(
    items: list[LabelledImage], service_results: list[ImageResult]
) -> None:
    found = right = total = 0
    for item, result in zip(items, service_results, strict=True):
        match = match_detections(result.boxes, result.scores, item.boxes)
        total += len(item.classes)
        found += int((match >= 0).sum())
        right += int((result.classes[match >= 0] == item.classes[match[match >= 0]]).sum())
    assert found >= 0.8 * total, (found, total)
    # the shipped file: 189 of 200 objects found, 179 of them with the right class (94.7 %);
    # its weakest pair is arrow/heart (docs/demo-detector.md)
    assert right >= 0.9 * found, (right, found)


def test_map50_on_fresh_scenes(items: list[LabelledImage]) -> None:
    detector = Detector.load(
        DetectorConfig(device="cpu", conf_threshold=EVAL_CONF, iou_threshold=EVAL_IOU)
    )
    results = [detector.embed([item.image])[0] for item in items]
    scores = score_detections(results, items)
    assert scores.map50 >= 0.8, scores.class_ap50()


def test_default_roi_vectors_retrieve_the_same_class(
    items: list[LabelledImage], service_results: list[ImageResult]
) -> None:
    vectors, labels = [], []
    for item, result in zip(items, service_results, strict=True):
        match = match_detections(result.boxes, result.scores, item.boxes)
        vectors.append(result.vectors[match >= 0])
        labels.append(item.classes[match[match >= 0]])
    scores = retrieval_scores(np.concatenate(vectors), np.concatenate(labels), k=10)
    assert scores.queries >= 100
    assert scores.precision_at_k >= 0.8, scores
