"""Labelled boxes in pixels (checked against the image) and IoU matching of detections."""

from __future__ import annotations

import numpy as np

from shared.annotations.matching import best_matches, iou_matrix, pixel_boxes
from shared.annotations.model import ImageLabels, LabelBox


def labels(*boxes: tuple[float, float, float, float], normalized: bool = False) -> ImageLabels:
    return ImageLabels("a.txt", "yolo", normalized, [LabelBox(*b, label="c") for b in boxes])


def test_normalised_boxes_scale_to_the_image_and_overshoot_is_clipped() -> None:
    out = pixel_boxes(labels((0.1, 0.2, 0.5, 1.0), normalized=True), 200, 100)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [[20, 20, 100, 100]])
    clipped = pixel_boxes(labels((-0.5, 0, 200.8, 50)), 200, 100)
    assert isinstance(clipped, np.ndarray)
    np.testing.assert_allclose(clipped, [[0, 0, 200, 50]])


def test_a_box_outside_the_image_is_named() -> None:
    message = pixel_boxes(labels((0, 0, 10, 10), (150, 10, 260, 20)), 200, 100)
    assert (
        message
        == "labelled box 2 of a.txt (150.0, 10.0, 260.0, 20.0) lies outside the 200x100 image"
    )


def test_iou_and_best_match_at_one_half() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    b = np.array([[0, 0, 10, 20], [0, 0, 10, 9]], float)
    np.testing.assert_allclose(iou_matrix(a, b)[0], [0.5, 0.9])
    assert best_matches(a, b) == [(1, 0.9), (1, 0.9), None]
    assert best_matches(a, np.zeros((0, 4))) == [None, None, None]
