"""Letterbox, NMS and rescaling against the official pipeline's outputs on sample*.png."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from shared.yolov7.checkpoint import LoadedCheckpoint, load_pt
from shared.yolov7.model import ModelOutput
from shared.yolov7.postprocessing import non_max_suppression, scale_coords
from shared.yolov7.preprocessing import letterbox, letterbox_geometry, to_chw_float
from tests.shared.yolov7.reference_data import Reference

torch.set_num_threads(1)


def _read_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def reference(yolov7_fixtures: Path) -> Reference:
    return Reference(yolov7_fixtures)


@pytest.fixture(scope="module")
def checkpoint(yolov7_fixtures: Path) -> LoadedCheckpoint:
    return load_pt(yolov7_fixtures / "yolov7-tiny-random.pt")


def _rgb(path: Path) -> np.ndarray:
    return _read_rgb(str(path))


@pytest.mark.parametrize(
    ("name", "shape", "pad"),
    [("sample", (480, 640), (0, 0, 0, 0)), ("sample2", (448, 640), (0, 9, 0, 10))],
)
def test_letterbox_matches_reference_exactly(
    yolov7_fixtures: Path, reference: Reference, name: str, shape: tuple, pad: tuple
) -> None:
    image = _rgb(yolov7_fixtures / f"{name}.png")
    boxed, geo = letterbox(image, 640, 32)
    assert geo.shape == shape and geo.pad == pad
    ref = reference.npz[f"{name}_letterbox_u8"][0].transpose(1, 2, 0)
    assert boxed.shape == ref.shape
    # OpenCV INTER_LINEAR, same call as upstream: documented tolerance is 0 grey levels.
    assert int(np.abs(boxed.astype(np.int16) - ref.astype(np.int16)).max()) == 0


def test_letterbox_geometry_rules() -> None:
    assert letterbox_geometry(375, 500).shape == (480, 640)
    assert letterbox_geometry(335, 500).shape == (448, 640)
    p6 = letterbox_geometry(375, 500, stride=64)
    assert p6.shape == (512, 640) and p6.pad == (0, 16, 0, 16)
    fixed = letterbox_geometry(375, 500, auto=False)
    assert fixed.shape == (640, 640) and fixed.pad[1] + fixed.pad[3] == 160


@pytest.mark.parametrize(("height", "width"), [(1, 10_000), (10_000, 1), (2, 3000)])
def test_a_thin_strip_keeps_at_least_one_pixel(height: int, width: int) -> None:
    # The official arithmetic rounds a 1 x 10000 strip to 0 rows at 640 (and OpenCV refuses
    # to resize to nothing): the content keeps one pixel, padded to the stride as usual.
    boxed, geo = letterbox(np.full((height, width, 3), 200, np.uint8), 640, 32)
    assert min(geo.resized) == 1 and max(geo.resized) == 640
    assert boxed.shape == (*geo.shape, 3) and min(geo.shape) == 32
    x1, y1, x2, y2 = geo.content_box
    assert (boxed[int(y1) : int(y2), int(x1) : int(x2)] == 200).all()


@pytest.mark.parametrize("name", ["sample", "sample2"])
def test_nms_and_original_boxes_match_reference(
    checkpoint: LoadedCheckpoint, reference: Reference, yolov7_fixtures: Path, name: str
) -> None:
    u8 = reference.npz[f"{name}_letterbox_u8"]
    x = torch.from_numpy(to_chw_float([u8[0].transpose(1, 2, 0)]))
    with torch.inference_mode():
        out = checkpoint.model(x)
    assert isinstance(out, ModelOutput)
    det = non_max_suppression(out.decoded, 0.25, 0.45, 300)[0]
    ref = reference.npz[f"{name}_nms"]
    rows = det.as_rows()
    assert rows.shape == ref.shape
    assert (rows[:, 5] == ref[:, 5]).all()
    assert np.abs(rows[:, :4] - ref[:, :4]).max() <= 0.05
    assert np.abs(rows[:, 4] - ref[:, 4]).max() <= 1e-4
    h0, w0 = _rgb(yolov7_fixtures / f"{name}.png").shape[:2]
    original = scale_coords(det.boxes, u8.shape[2:], (h0, w0))
    ref_det = reference.npz[f"{name}_det"]
    assert np.abs(np.round(original) - ref_det[:, :4]).max() <= 1.0
    assert (original[:, [0, 2]] >= 0).all() and (original[:, [0, 2]] <= w0).all()
    assert (original[:, [1, 3]] >= 0).all() and (original[:, [1, 3]] <= h0).all()
