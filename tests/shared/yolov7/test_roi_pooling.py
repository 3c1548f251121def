"""ROI pooling as a pure function on synthetic feature maps."""

from __future__ import annotations

import math

import pytest
import torch

from shared.yolov7.roi_pooling import central_boxes, image_pool, level_for_boxes, roi_pool

torch.set_num_threads(1)
STRIDE = 32.0
# 640x448 input whose content is rows 9..438 (letterbox 500x335): map 14x20 at stride 32.
CONTENT = (0.0, 9.0, 640.0, 438.0)


def _fmap(seed: int = 0) -> torch.Tensor:
    return torch.randn(16, 14, 20, generator=torch.Generator().manual_seed(seed))


def test_whole_content_box_equals_image_vector() -> None:
    f = _fmap()
    box = torch.tensor([list(CONTENT)])
    assert torch.allclose(roi_pool(f, box, STRIDE, CONTENT)[0], image_pool(f, STRIDE, CONTENT))


def test_box_depends_only_on_cells_it_overlaps() -> None:
    f = _fmap()
    box = torch.tensor([[70.0, 100.0, 150.0, 170.0]])  # cells x 2..4, y 3..5
    before = roi_pool(f, box, STRIDE, CONTENT)
    g = f.clone()
    mask = torch.ones_like(g, dtype=torch.bool)
    mask[:, 3:6, 2:5] = False
    g[mask] = 1000.0
    assert torch.allclose(roi_pool(g, box, STRIDE, CONTENT), before)
    g[:, 4, 3] += 1.0  # a cell inside the box does matter
    assert not torch.allclose(roi_pool(g, box, STRIDE, CONTENT), before)


def test_padding_is_never_pooled() -> None:
    f = _fmap()
    box = torch.tensor([[0.0, 0.0, 640.0, 448.0]])  # includes the grey rows
    clipped = torch.tensor([list(CONTENT)])
    assert torch.allclose(roi_pool(f, box, STRIDE, CONTENT), roi_pool(f, clipped, STRIDE, CONTENT))


def test_tiny_border_and_degenerate_boxes_are_finite() -> None:
    f = _fmap()
    boxes = torch.tensor(
        [
            [100.0, 100.0, 101.0, 101.0],  # far below one cell
            [0.0, 9.0, 3.0, 12.0],  # top-left corner of the content
            [637.0, 435.0, 640.0, 438.0],  # bottom-right corner
            [50.0, 50.0, 50.0, 50.0],  # zero size
            [200.0, 200.0, 100.0, 100.0],  # inverted
            [-500.0, -500.0, -400.0, -400.0],  # entirely outside
            [float("nan"), 0.0, 10.0, 10.0],
            [700.0, 500.0, 900.0, 900.0],  # beyond the input
        ]
    )
    out = roi_pool(f, boxes, STRIDE, CONTENT)
    assert out.shape == (8, 16) and torch.isfinite(out).all()
    # a sub-cell box inside one cell returns exactly that cell
    assert torch.allclose(out[0], f[:, 3, 3])
    assert torch.allclose(out[3], f[:, 1, 1])
    inverted = roi_pool(f, torch.tensor([[100.0, 100.0, 200.0, 200.0]]), STRIDE, CONTENT)
    assert torch.allclose(out[4], inverted[0])
    assert roi_pool(f, torch.zeros(0, 4), STRIDE, CONTENT).shape == (0, 16)


def test_batch_of_boxes_equals_one_at_a_time() -> None:
    f = _fmap()
    boxes = torch.tensor([[10.0, 20.0, 300.0, 200.0], [5.0, 5.0, 7.0, 7.0], [0, 0, 640, 448]])
    together = roi_pool(f, boxes, STRIDE, CONTENT)
    for k in range(3):
        assert torch.allclose(together[k], roi_pool(f, boxes[k : k + 1], STRIDE, CONTENT)[0])


def test_pooling_is_a_weighted_mean() -> None:
    f = torch.full((4, 14, 20), 3.0)
    out = roi_pool(f, torch.tensor([[33.0, 40.0, 400.0, 300.0]]), STRIDE, CONTENT)
    assert torch.allclose(out, torch.full((1, 4), 3.0))


def test_multiscale_level_assignment() -> None:
    boxes = torch.tensor([[0, 0, 40, 40], [0, 0, 130, 130], [0, 0, 500, 400]], dtype=torch.float32)
    assert level_for_boxes(boxes, [8.0, 16.0, 32.0]).tolist() == [0, 1, 2]


def test_central_boxes_shrink_about_the_centre_inside_the_box() -> None:
    boxes = torch.tensor([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 1.0, 3.0]])
    assert central_boxes(boxes, 1.0) is boxes
    half = central_boxes(boxes, 0.5)
    assert torch.allclose(half[0], torch.tensor([20.0, 25.0, 40.0, 35.0]))
    assert torch.allclose(half[1], torch.tensor([0.25, 0.75, 0.75, 2.25]))
    assert torch.allclose((half[:, :2] + half[:, 2:]) / 2, (boxes[:, :2] + boxes[:, 2:]) / 2)
    assert (half[:, :2] >= boxes[:, :2]).all() and (half[:, 2:] <= boxes[:, 2:]).all()
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            central_boxes(boxes, bad)


def test_central_pooling_ignores_the_corners() -> None:
    feature = torch.zeros(2, 8, 8)
    feature[0, 2:6, 2:6] = 1.0  # the object, in the middle of its box
    feature[1] = 1.0
    feature[1, 2:6, 2:6] = 0.0  # background fills the box corners
    box = torch.tensor([[0.0, 0.0, 64.0, 64.0]])  # stride 8: the whole 8×8 map
    whole = roi_pool(feature, box, 8.0, (0.0, 0.0, 64.0, 64.0))[0]
    centre = roi_pool(feature, central_boxes(box, 0.5), 8.0, (0.0, 0.0, 64.0, 64.0))[0]
    assert whole[1] > 0.5 and centre[1] < 0.1 < 0.9 < centre[0]


def _reference_roi_align(
    f: torch.Tensor, box: tuple[float, float, float, float], stride: float
) -> torch.Tensor:
    """One box, the module docstring's definition with explicit loops (slow, obvious):
    n = ceil(2·extent) samples per axis inside the content-clipped box, each bilinearly
    interpolated between cell centres, clamped to the cells the box overlaps; the mean."""
    _, h, w = f.shape
    cx1, cy1, cx2, cy2 = CONTENT
    x1, y1, x2, y2 = box
    x1, x2 = (min(max(v, cx1), cx2) / stride for v in (x1, x2))
    y1, y2 = (min(max(v, cy1), cy2) / stride for v in (y1, y2))

    def axis(lo: float, hi: float, size: int) -> list[tuple[int, int, float]]:
        c_lo = min(max(math.floor(lo), 0), size - 1)
        c_hi = max(min(max(math.ceil(hi) - 1, 0), size - 1), c_lo)
        n = int(min(max(math.ceil((hi - lo) * 2), 1), 2 * size))
        out = []
        for j in range(n):
            t = min(max(lo + (j + 0.5) / n * (hi - lo) - 0.5, c_lo), c_hi)
            i0 = math.floor(t)
            out.append((i0, min(i0 + 1, c_hi), t - i0))
        return out

    total = torch.zeros(f.shape[0], dtype=torch.float64)
    ys, xs = axis(y1, y2, h), axis(x1, x2, w)
    for r0, r1, fy in ys:
        for c0, c1, fx in xs:
            g = f.double()
            total += (
                (1 - fy) * (1 - fx) * g[:, r0, c0]
                + (1 - fy) * fx * g[:, r0, c1]
                + fy * (1 - fx) * g[:, r1, c0]
                + fy * fx * g[:, r1, c1]
            )
    return (total / (len(ys) * len(xs))).float()


def test_matches_an_explicit_sampling_reference() -> None:
    f = _fmap(3)
    boxes = [
        (10.0, 20.0, 300.0, 200.0),  # many cells
        (100.3, 120.7, 131.1, 140.2),  # about one cell, fractional
        (5.0, 5.0, 7.0, 7.0),  # inside the top padding: clipped to the content edge
        (600.0, 400.0, 700.0, 500.0),  # crosses the bottom-right border
        (0.0, 0.0, 640.0, 448.0),  # everything
    ]
    got = roi_pool(f, torch.tensor(boxes), STRIDE, CONTENT)
    for k, box in enumerate(boxes):
        assert torch.allclose(got[k], _reference_roi_align(f, box, STRIDE), atol=1e-5), box
