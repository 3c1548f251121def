"""Recognising annotation files and matching them to their images (docs/labels.md rules)."""

from __future__ import annotations

import json

import pytest

from shared.annotations.catalog import build_catalog
from shared.annotations.model import AMBIGUOUS, INVALID, UNMATCHED, AnnotationError, LabelBox
from shared.annotations.yolo import parse_class_list


def catalog(files: dict[str, bytes | str]):  # type: ignore[no-untyped-def]
    data = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    return build_catalog(list(data), lambda member: data[member])


def voc_xml(filename: str, boxes: list[tuple[str, int, int, int, int]]) -> str:
    objects = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in boxes
    )
    return f"<annotation><filename>{filename}</filename>{objects}</annotation>"


def test_yolo_labels_folder_twin_and_class_list_from_data_yaml() -> None:
    found = catalog(
        {
            "ds/images/a.jpg": b"",
            "ds/images/b.jpg": b"",
            "ds/labels/a.txt": "1 0.5 0.5 0.2 0.4\n",
            "ds/labels/b.txt": "",  # an image without objects
            "ds/data.yaml": "path: .\nnames:\n  0: cat\n  1: 'dog'\n",
        }
    )
    a = found.labels["ds/images/a.jpg"]
    assert a.format == "yolo" and a.normalized and a.file == "ds/labels/a.txt"
    assert a.boxes == [LabelBox(0.4, 0.3, 0.6, 0.7, "dog")]
    assert found.labels["ds/images/b.jpg"].boxes == []
    assert found.files["ds/data.yaml"].code is None
    assert found.files["ds/labels/a.txt"].code is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("names: [cat, 'dog', \"bird\"]\n", ["cat", "dog", "bird"]),
        ("nc: 2\nnames:\n  - cat\n  - dog\n", ["cat", "dog"]),
        ("names:\n  0: cat # a comment\n  1: dog\ntrain: x\n", ["cat", "dog"]),
    ],
)
def test_data_yaml_names_forms(text: str, names: list[str]) -> None:
    assert parse_class_list("data.yaml", text.encode()) == names


def test_yolo_beside_the_image_without_class_list_uses_indices() -> None:
    found = catalog({"x/p.png": b"", "x/p.txt": "3 0.5 0.5 0.5 0.5"})
    assert found.labels["x/p.png"].boxes[0].label == "3"


def test_broken_yolo_files_fail_with_codes_and_readmes_are_left_alone() -> None:
    found = catalog(
        {
            "a.jpg": b"",
            "a.png": b"",
            "a.txt": "0 0.5 0.5 0.1 0.1",  # a.jpg or a.png?
            "b.jpg": b"",
            "b.txt": "0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n",  # class 7 of 2
            "c.txt": "0 0.5 0.5 0.1 0.1",  # no image c.*
            "d.jpg": b"",
            "labels/d.txt": "0 0.5 0.5 0.1\n",  # a short line: not labels at all
            "README.txt": "how to use this dataset",
            "classes.txt": "cat\ndog\n",
        }
    )
    assert found.files["a.txt"].code == AMBIGUOUS
    assert found.files["b.txt"].code == INVALID and "b.txt line 2" in found.files["b.txt"].message
    assert found.files["c.txt"].code == UNMATCHED
    assert "README.txt" not in found.files and "labels/d.txt" not in found.files
    assert set(found.labels) == set()


def test_coco_file_names_resolved_relative_then_by_suffix() -> None:
    coco = {
        "images": [
            {"id": 1, "file_name": "images/a.jpg"},
            {"id": 2, "file_name": "b.jpg"},
            {"id": 3, "file_name": "gone.jpg"},
        ],
        "annotations": [
            {"image_id": 1, "category_id": 5, "bbox": [10, 20, 30, 40]},
            {"image_id": 2, "category_id": 5, "bbox": [1, 2, 3, 4]},
        ],
        "categories": [{"id": 5, "name": "cat"}],
    }
    found = catalog(
        {"set/images/a.jpg": b"", "set/other/b.jpg": b"", "set/ann.json": json.dumps(coco)}
    )
    assert found.labels["set/images/a.jpg"].boxes == [LabelBox(10, 20, 40, 60, "cat")]
    assert not found.labels["set/images/a.jpg"].normalized
    assert found.labels["set/other/b.jpg"].boxes == [LabelBox(1, 2, 4, 6, "cat")]
    outcome = found.files["set/ann.json"]
    assert outcome.code is None and "1 of its 3 images are not in the source" in outcome.message


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ('{"images": [], "annotations": [', INVALID, "not valid JSON"),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": '
            '[{"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}], "categories": []}',
            INVALID,
            "annotations[0] names no category",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": '
            '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, "x", 1]}], '
            '"categories": [{"id": 1, "name": "c"}]}',
            INVALID,
            "'bbox' is not [x, y, w, h]",
        ),
        ('{"images": [{"id": 1, "file_name": "zz.jpg"}], "annotations": []}', UNMATCHED, "none"),
    ],
)
def test_broken_coco_files(text: str, code: str, words: str) -> None:
    found = catalog({"a.jpg": b"", "ann.json": text})
    assert found.files["ann.json"].code == code and words in found.files["ann.json"].message
    assert found.labels == {}


def test_coco_name_shared_by_two_members_is_ambiguous() -> None:
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}
    found = catalog({"x/a.jpg": b"", "y/a.jpg": b"", "c.json": json.dumps(coco)})
    assert found.files["c.json"].code == AMBIGUOUS


def test_json_that_is_not_coco_is_left_alone() -> None:
    found = catalog({"a.jpg": b"", "meta.json": '{"seed": 1}', "list.json": "[1, 2"})
    assert found.files == {} and found.labels == {}


def test_voc_annotations_folder_finds_jpegimages() -> None:
    found = catalog(
        {
            "VOC/JPEGImages/0001.jpg": b"",
            "VOC/Annotations/0001.xml": voc_xml("0001.jpg", [("dog", 1, 2, 30, 40)]),
        }
    )
    assert found.labels["VOC/JPEGImages/0001.jpg"].boxes == [LabelBox(1, 2, 30, 40, "dog")]


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("<annotation><filename>a.jpg</filename><object>", INVALID, "not well-formed"),
        (
            '<!DOCTYPE x [<!ENTITY a "aaaa">]><annotation><filename>a.jpg</filename></annotation>',
            INVALID,
            "DTDs",
        ),
        (voc_xml("a.jpg", [("dog", 1, 2, 0, 0)]).replace("<xmax>0", "<xmax>x"), INVALID, "numeric"),
        (voc_xml("nothere.jpg", []), UNMATCHED, "no image nothere.jpg"),
    ],
)
def test_broken_voc_files(text: str, code: str, words: str) -> None:
    found = catalog({"a.jpg": b"", "b.xml": text})
    assert found.files["b.xml"].code == code and words in found.files["b.xml"].message


def test_one_file_per_image_coco_wins_and_a_second_of_one_format_is_ambiguous() -> None:
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}],
        "categories": [{"id": 1, "name": "c"}],
    }
    found = catalog(
        {
            "a.jpg": b"",
            "a.txt": "0 0.5 0.5 0.1 0.1",
            "c.json": json.dumps(coco),
            "a.xml": voc_xml("a.jpg", [("v", 0, 0, 1, 1)]),
            "b.jpg": b"",
            "b.xml": voc_xml("b.jpg", [("v", 0, 0, 1, 1)]),
            "b2.xml": voc_xml("b.jpg", [("w", 0, 0, 1, 1)]),
        }
    )
    assert found.labels["a.jpg"].file == "c.json"
    for superseded in ("a.txt", "a.xml"):
        outcome = found.files[superseded]
        assert outcome.code is None and "labelled by c.json" in outcome.message
    assert found.files["b2.xml"].code == AMBIGUOUS
    assert found.labels["b.jpg"].file == "b.xml"


def test_a_read_error_fails_that_file() -> None:
    def read(member: str) -> bytes:
        raise AnnotationError("member_too_large", f"{member} is too large")

    found = build_catalog(["a.jpg", "a.txt"], read)
    assert found.files["a.txt"].code == "member_too_large"


def test_degenerate_box_problem() -> None:
    assert LabelBox(0, 0, 1, 1, "c").problem() is None
    assert "degenerate" in (LabelBox(5, 0, 5, 1, "c").problem() or "")
    assert "finite" in (LabelBox(float("nan"), 0, 1, 1, "c").problem() or "")


def test_a_broken_class_list_fails_with_the_labels_that_need_it() -> None:
    found = catalog(
        {"a.jpg": b"", "a.txt": "0 0.5 0.5 0.1 0.1", "data.yaml": "train: images\nnc: 2\n"}
    )
    assert found.files["data.yaml"].code == INVALID
    assert "no 'names' list" in found.files["data.yaml"].message
    assert found.files["a.txt"].code == INVALID
    assert found.files["a.txt"].message == "a.txt: its class list data.yaml cannot be used"
    assert found.labels == {}
