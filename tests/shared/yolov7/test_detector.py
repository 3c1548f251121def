"""Detector.embed end to end on the fixture checkpoint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from shared.yolov7 import detector as detector_module
from shared.yolov7.detector import Detector, EmbeddingSpaceSpec, PreparedImage
from shared.yolov7.detector_config import DetectorConfig
from shared.yolov7.errors import CheckpointError, ConfigError
from tests.shared.yolov7.reference_data import Reference

torch.set_num_threads(1)


def _read_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector(yolov7_fixtures: Path) -> Detector:
    # cpu_batch_size=8: really batch same-shape images on CPU too (the default runs them 1 by 1)
    return Detector.load(
        DetectorConfig(
            weights=yolov7_fixtures / "yolov7-tiny-random.pt", device="cpu", cpu_batch_size=8
        )
    )


@pytest.fixture(scope="module")
def images(yolov7_fixtures: Path) -> list[np.ndarray]:
    a = _read_rgb(str(yolov7_fixtures / "sample.png"))
    b = _read_rgb(str(yolov7_fixtures / "sample2.png"))
    return [a, b, a[:, ::-1].copy(), b[::-1].copy()]


def test_detections_match_reference(
    detector: Detector, images: list[np.ndarray], yolov7_fixtures: Path
) -> None:
    ref = Reference(yolov7_fixtures)
    results = detector.embed(images[:2])
    for result, name in zip(results, ["sample", "sample2"], strict=True):
        det = ref.npz[f"{name}_det"]
        assert result.boxes.shape == (det.shape[0], 4) and result.boxes.dtype == np.float32
        assert (result.classes == det[:, 5].astype(np.int64)).all()
        assert np.abs(np.round(result.boxes) - det[:, :4]).max() <= 1.0
        assert np.abs(result.scores - det[:, 4]).max() <= 1e-4
        assert result.vectors.shape == (det.shape[0], 128) and result.vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
        assert result.image_vector.shape == (128,)
        assert (result.width, result.height) == (500, 375 if name == "sample" else 335)


def test_batched_equals_one_at_a_time(detector: Detector, images: list[np.ndarray]) -> None:
    assert detector.batch_size == 8 and images[0].shape == images[2].shape  # a real batch of 2
    together = detector.embed(images)
    for image, batched in zip(images, together, strict=True):
        (alone,) = detector.embed([image])
        assert (alone.classes == batched.classes).all()
        assert np.allclose(alone.boxes, batched.boxes, atol=0.05)
        assert np.allclose(alone.vectors, batched.vectors, atol=1e-4)
        assert np.allclose(alone.image_vector, batched.image_vector, atol=1e-4)


def test_caller_boxes_and_whole_image(detector: Detector, images: list[np.ndarray]) -> None:
    image = images[1]
    h, w = image.shape[:2]
    boxes = np.array([[0, 0, w, h], [10, 10, 12, 12], [w - 1, h - 1, w, h]], np.float32)
    (result,) = detector.embed([image], boxes=[boxes], detect=False)
    assert result.boxes.shape == (0, 4) and result.vectors.shape == (0, 128)
    assert result.query_vectors.shape == (3, 128) and np.isfinite(result.query_vectors).all()
    assert np.allclose(result.query_vectors[0], result.image_vector, atol=1e-6)
    # a detection re-submitted as a caller box gets the same vector
    (full,) = detector.embed([image])
    (again,) = detector.embed([image], boxes=[full.boxes[:3]])
    assert np.allclose(again.query_vectors, full.vectors[:3], atol=2e-3)


def test_visible_drops_boxes_that_lie_in_the_padding(
    detector: Detector, images: list[np.ndarray]
) -> None:
    (result,) = detector.embed(images[:1])
    widths = result.boxes[:, 2] - result.boxes[:, 0]
    heights = result.boxes[:, 3] - result.boxes[:, 1]
    flat = (widths <= 0) | (heights <= 0)
    assert flat.any()  # the random fixture weights do put boxes in the padding (as upstream)
    shown = result.visible()
    assert len(shown.boxes) == int((~flat).sum())
    assert (shown.boxes[:, 2] > shown.boxes[:, 0]).all()
    assert (shown.boxes[:, 3] > shown.boxes[:, 1]).all()
    assert np.array_equal(shown.vectors, result.vectors[~flat])
    assert np.array_equal(shown.classes, result.classes[~flat])
    assert shown.visible() is shown


def test_cpu_runs_in_fp32(detector: Detector, images: list[np.ndarray]) -> None:
    assert not detector.half
    assert all(p.dtype == torch.float32 for p in detector.model.parameters())
    (result,) = detector.embed(images[:1])
    assert result.vectors.dtype == np.float32 and result.image_vector.dtype == np.float32


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: fp16 inference runs only on CUDA"
)
def test_cuda_fp16_agrees_with_cpu_fp32(
    detector: Detector, images: list[np.ndarray], yolov7_fixtures: Path
) -> None:
    gpu = Detector.load(
        DetectorConfig(weights=yolov7_fixtures / "yolov7-tiny-random.pt", device="cuda")
    )
    assert gpu.half and next(gpu.model.parameters()).dtype == torch.float16
    (cpu_result,) = detector.embed(images[:1])
    (gpu_result,) = gpu.embed(images[:1])
    assert gpu_result.vectors.dtype == np.float32  # results leave the GPU as float32
    # fp16 moves scores near the thresholds, so compare the confident detections: each has a
    # same-class twin on the GPU at nearly the same place with nearly the same vector.
    for box, cls, vec in zip(
        cpu_result.boxes[cpu_result.scores > 0.5],
        cpu_result.classes[cpu_result.scores > 0.5],
        cpu_result.vectors[cpu_result.scores > 0.5],
        strict=True,
    ):
        same = gpu_result.classes == cls
        assert same.any()
        offsets = np.abs(gpu_result.boxes[same] - box).max(1)
        twin = int(np.argmin(offsets))
        assert offsets[twin] < 2.0
        assert float(gpu_result.vectors[same][twin] @ vec) > 0.99
    assert float(gpu_result.image_vector @ cpu_result.image_vector) > 0.99


def test_roi_fraction_pools_the_central_part_and_names_its_space(
    detector: Detector, images: list[np.ndarray], yolov7_fixtures: Path
) -> None:
    central = Detector.load(
        DetectorConfig(weights=yolov7_fixtures / "yolov7-tiny-random.pt", roi_fraction=0.5)
    )
    assert central.space.pooling == "roi_align:central0.5"
    assert central.space.key != detector.space.key and central.dim == detector.dim
    image = images[1]
    box = np.array([[40, 30, 240, 190]], np.float32)
    inner = np.array([[90, 70, 190, 150]], np.float32)  # each side halved about the centre
    (a,) = central.embed([image], boxes=[box], detect=False)
    (b,) = detector.embed([image], boxes=[inner], detect=False)
    assert np.allclose(a.query_vectors, b.query_vectors, atol=1e-5)
    assert np.allclose(a.image_vector, b.image_vector, atol=1e-6)  # the image vector is whole
    (detected,) = central.embed([image])
    (whole,) = detector.embed([image])
    assert np.array_equal(detected.boxes, whole.boxes)  # boxes stay whole
    with pytest.raises(ConfigError, match="roi_fraction"):
        Detector.load(
            DetectorConfig(weights=yolov7_fixtures / "yolov7-tiny-random.pt", roi_fraction=1.5)
        )


def test_space_spec(detector: Detector) -> None:
    space = detector.space
    assert isinstance(space, EmbeddingSpaceSpec)
    assert space.layers == (71,) and space.dim == 128 and space.input_size == 640
    assert space.class_names[0] == "person" and len(space.key) == 64
    assert space.as_dict()["layers"] == [71]


def test_multi_layer_concatenation(yolov7_fixtures: Path, images: list[np.ndarray]) -> None:
    multi = Detector.load(
        DetectorConfig(
            weights=yolov7_fixtures / "yolov7-tiny-random.pt",
            feature_layers=(74, 75, 76),
            pooling="multiscale",
        )
    )
    (result,) = multi.embed(images[:1])
    assert multi.space.dim == 128 + 256 + 512
    assert result.vectors.shape[1] == 896
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)


def test_bad_input_is_named(detector: Detector) -> None:
    with pytest.raises(ValueError, match="image 1"):
        detector.embed([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)])


def test_prepared_images_give_the_same_results(
    detector: Detector, images: list[np.ndarray]
) -> None:
    # prepare() is embed()'s own first step, run ahead (in a pipeline's decode threads).
    prepared = [detector.prepare(image) for image in images]
    assert prepared[0].pixels.shape == (*prepared[0].geometry.shape, 3)
    assert prepared[0].pixels.dtype == np.uint8
    mixed: list[np.ndarray | PreparedImage] = [prepared[0], images[1], prepared[2], images[3]]
    for direct, ahead in zip(detector.embed(images), detector.embed(mixed), strict=True):
        assert (direct.boxes == ahead.boxes).all() and (direct.classes == ahead.classes).all()
        assert (direct.vectors == ahead.vectors).all()
        assert (direct.image_vector == ahead.image_vector).all()
    with pytest.raises(ValueError, match="image 0"):
        detector.prepare(np.zeros((8, 8), np.uint8))


def test_an_image_prepared_for_another_input_size_is_refused(
    detector: Detector, images: list[np.ndarray], yolov7_fixtures: Path
) -> None:
    small = Detector.load(
        DetectorConfig(
            weights=yolov7_fixtures / "yolov7-tiny-random.pt", device="cpu", img_size=320
        )
    )
    with pytest.raises(ValueError, match="image 1: prepared for input size 320"):
        detector.embed([images[0], small.prepare(images[0])])


def test_a_thin_strip_is_embedded(detector: Detector) -> None:
    (result,) = detector.embed([np.full((1, 5000, 3), 90, np.uint8)])
    assert (result.width, result.height) == (5000, 1)
    assert result.image_vector.shape == (128,) and np.isfinite(result.image_vector).all()


def test_missing_demo_detector_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(detector_module, "DEMO_WEIGHTS", tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="demo detector"):
        Detector.load(DetectorConfig(weights=None))


def test_safetensors_conversion_is_the_same_space(
    detector: Detector, yolov7_fixtures: Path, tmp_path: Path, images: list[np.ndarray]
) -> None:
    from shared.yolov7.safe_format import convert

    dst = convert(yolov7_fixtures / "yolov7-tiny-random.pt", tmp_path / "tiny.safetensors")
    safe = Detector.load(DetectorConfig(weights=dst, device="cpu"))
    assert safe.space == detector.space and safe.space.key == detector.space.key
    (a,) = detector.embed(images[:1])
    (b,) = safe.embed(images[:1])
    assert (a.classes == b.classes).all() and np.allclose(a.vectors, b.vectors, atol=1e-5)
