"""Query regions: boxes parsed from text, detections picked from an image."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.search.boxes import MAX_QUERY_BOXES, check_boxes, parse_boxes, pick_detections
from shared.search.models import Box, Pick


def test_boxes_parse_from_quads_semicolons_and_json() -> None:
    boxes = parse_boxes(
        ["1,2,3,4", "5,6,7,8;9,10,11,12", "[[0,0,2,2],[1,1,3,3]]", "[4,4,6,6]", " "]
    )
    assert [(b.x1, b.y1, b.x2, b.y2) for b in boxes] == [
        (1, 2, 3, 4),
        (5, 6, 7, 8),
        (9, 10, 11, 12),
        (0, 0, 2, 2),
        (1, 1, 3, 3),
        (4, 4, 6, 6),
    ]


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1,2,3,nan", "[1,2]", "[[1,2,3,4"])
def test_a_bad_box_is_named(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_boxes([text])
    assert info.value.code == "invalid_box" and info.value.details == {"box": text}


def test_too_many_boxes() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_boxes(["0,0,1,1"] * (MAX_QUERY_BOXES + 1))
    assert info.value.code == "too_many_boxes"


def test_boxes_must_lie_inside_the_image() -> None:
    check_boxes([Box(x1=0, y1=0, x2=60, y2=40)], 60, 40)
    with pytest.raises(InvalidInput) as info:
        check_boxes([Box(x1=0, y1=0, x2=10, y2=10), Box(x1=5, y1=5, x2=5, y2=9)], 60, 40)
    assert info.value.code == "box_outside_image" and info.value.details["box_index"] == 1


def test_pick_central_largest_best() -> None:
    boxes = np.asarray(
        [[0, 0, 10, 10], [40, 40, 60, 60], [45, 45, 55, 55], [0, 0, 90, 30]], np.float32
    )
    scores = np.asarray([0.9, 0.2, 0.3, 0.1], np.float32)
    assert pick_detections(boxes, scores, 100, 100, Pick.all) == [0, 1, 2, 3]
    assert pick_detections(boxes, scores, 100, 100, Pick.largest) == [3]
    assert pick_detections(boxes, scores, 100, 100, Pick.best) == [0]
    # Boxes 1 and 2 are both centred: the larger one wins the tie.
    assert pick_detections(boxes, scores, 100, 100, Pick.central) == [1]
    assert pick_detections(boxes[:0], scores[:0], 100, 100, Pick.central) == []
