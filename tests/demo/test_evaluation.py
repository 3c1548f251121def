"""The ROI study's vector kinds: the engine's own pooling where they claim to be it, the
seeds' baselines as the seeds computed them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demo.evaluation import held_out_items, match_detections, pooled_vectors
from shared.yolov7.architectures import yolov7_tiny_config
from shared.yolov7.detector import Detector
from shared.yolov7.detector_config import DetectorConfig, Pooling
from shared.yolov7.model import ModelOutput, YoloModel, build_model
from shared.yolov7.preprocessing import letterbox, letterbox_geometry, to_chw_float


@pytest.fixture(scope="module")
def model() -> YoloModel:
    torch.manual_seed(0)
    return build_model(yolov7_tiny_config(10, width_multiple=0.25), 10)


def _study_vectors(
    model: YoloModel, image: np.ndarray, boxes: np.ndarray, size: int
) -> dict[str, np.ndarray]:
    single = model.default_feature_layers()[0]
    heads = tuple(model.parsed.lead_inputs)
    boxed, geo = letterbox(image, size, model.max_stride)
    with torch.inference_mode():
        out = model.eval()(torch.from_numpy(to_chw_float([boxed])), feature_layers=(single, *heads))
    assert isinstance(out, ModelOutput)
    feats = {i: f[0] for i, f in out.features.items()}
    return pooled_vectors(feats, torch.from_numpy(geo.to_input(boxes)), geo, single, heads)


@pytest.mark.parametrize("pooling", ["roi_align", "multiscale"])
def test_engine_kinds_equal_the_detector(model: YoloModel, pooling: Pooling) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (150, 230, 3), dtype=np.uint8)
    boxes = np.array([[10, 12, 60, 70], [100, 20, 220, 140], [5, 5, 12, 9]], np.float32)
    ours = _study_vectors(model, image, boxes, 160)
    config = DetectorConfig(device="cpu", img_size=160, fuse=False, pooling=pooling)
    detector = Detector(model, config, weights_sha256="t")
    engine = detector.embed([image], [boxes], detect=False)[0].query_vectors
    kind = "roi_align" if pooling == "roi_align" else "multiscale_roi_align"
    assert np.allclose(ours[kind], engine, atol=1e-5)


def test_seed_baselines() -> None:
    # one 4-channel map, stride 8 on a 64x64 input: channel c at cell (y, x) = c*100 + y*8 + x
    c, h, w = 4, 8, 8
    idx = torch.arange(h * w, dtype=torch.float32).view(1, h, w)
    fmap = idx + 100 * torch.arange(c, dtype=torch.float32).view(c, 1, 1)
    geo = letterbox_geometry(64, 64, 64, 32)
    boxes = torch.tensor([[8.0, 8.0, 24.0, 16.0], [33.0, 33.0, 36.0, 36.0], [0, 0, 64, 64]])
    kinds = pooled_vectors({71: fmap, 1: fmap, 2: fmap}, boxes, geo, 71, (1, 2))
    # global average: one vector for every box
    assert np.allclose(kinds["global_average"][0], kinds["global_average"][1])
    # integer slice: rows 1:2, cols 1:3 -> mean of cells (1,1),(1,2); sub-cell box -> empty -> NaN
    expected = fmap[:, 1:2, 1:3].mean((1, 2))
    assert np.allclose(kinds["integer_slice"][0], (expected / expected.norm()).numpy())
    assert np.isnan(kinds["integer_slice"][1]).all()
    # centre cell: centre (34.5, 34.5) px -> cell (4, 4)
    cell = fmap[:, 4, 4]
    assert np.allclose(kinds["centre_cell"][1], (cell / cell.norm()).numpy())
    for v in kinds.values():
        assert v.shape[0] == 3 and v.dtype == np.float32


def test_match_detections_is_one_to_one() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    det = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [21, 21, 30, 30], [50, 50, 60, 60]], float)
    match = match_detections(det, np.array([0.5, 0.9, 0.8, 0.7]), gt)
    assert match.tolist() == [-1, 0, 1, -1]


def test_held_out_items_are_jpeg_round_trips() -> None:
    items = held_out_items(3, seed=99)
    assert len(items) == 3
    for item in items:
        assert item.image.dtype == np.uint8 and item.boxes.shape == (len(item.classes), 4)
    assert not math.isnan(float(items[0].image.mean()))
