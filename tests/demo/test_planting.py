"""Planted near-duplicate objects: the generator pastes what its manifest says, where it says,
and only when asked."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from demo.export import read_coco_dataset, write_dataset
from demo.planting import DUPLICATE_PERIOD, PASTE_KINDS, dataset_scene
from demo.scenes import generate_scene
from shared.imaging.matching import confirm_score, crop_signature, prepare

N = DUPLICATE_PERIOD + 2  # 20 odd scenes (one is the image copy), one image copy


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("planted") / "set"
    write_dataset(out, N, seed=5)
    return out


def _index(name: str) -> int:
    return int(Path(name).stem)


def test_every_kind_is_planted_in_odd_scenes(written: Path) -> None:
    pairs = json.loads((written / "near_duplicate_objects.json").read_text())
    pasted = [p for p in pairs if p["kind"] != "image"]
    kinds = Counter(p["kind"] for p in pasted)
    assert set(kinds) == set(PASTE_KINDS), kinds
    assert len(pasted) >= 15  # most of the 20 odd scenes find room for their paste
    for pair in pasted:
        target, source = _index(pair["duplicate"]["image"]), _index(pair["original"]["image"])
        assert target % 2 == 1 and source % 2 == 0 and source < target
    meta = json.loads((written / "dataset.json").read_text())
    assert meta["planted_objects"] is True and meta["paste_kinds"] == list(PASTE_KINDS)


def test_pasted_objects_are_labelled_and_look_like_their_source(written: Path) -> None:
    pairs = json.loads((written / "near_duplicate_objects.json").read_text())
    items = read_coco_dataset(written)
    for pair in pairs:
        original, duplicate = pair["original"], pair["duplicate"]
        copy = items[_index(duplicate["image"])]
        source = items[_index(original["image"])]
        # the duplicate is a labelled object of its image, of the source's class
        assert np.allclose(copy.boxes[duplicate["object"]], duplicate["box"], atol=1e-2)
        assert copy.classes[duplicate["object"]] == source.classes[original["object"]]
        score = confirm_score(
            prepare(crop_signature(source.image, tuple(original["box"]))),
            prepare(crop_signature(copy.image, tuple(duplicate["box"]))),
        )
        assert score >= 0.8, (pair, score)
        w0 = original["box"][2] - original["box"][0]
        w1 = duplicate["box"][2] - duplicate["box"][0]
        if pair["kind"] == "resized":
            assert w1 / w0 == pytest.approx(pair["scale"], rel=0.05)
            assert 0.5 <= pair["scale"] <= 2.0 and abs(np.log(pair["scale"])) >= np.log(1.2)
        elif pair["kind"] == "shifted":
            assert 0.88 <= w1 / w0 <= 0.97  # cut on one side by the shift
        elif pair["kind"] in ("exact", "jpeg"):
            assert w1 == pytest.approx(w0, abs=1e-3)
        if pair["kind"] == "jpeg":
            assert 12 <= pair["quality"] <= 30


def test_an_unrelated_object_does_not_look_like_a_source(written: Path) -> None:
    """The check above can fail: a pasted object against another object of its class."""
    pairs = [
        p
        for p in json.loads((written / "near_duplicate_objects.json").read_text())
        if p["kind"] == "exact"
    ]
    items = read_coco_dataset(written)
    a, b = pairs[0], pairs[1]
    source = items[_index(a["original"]["image"])].image
    other = items[_index(b["duplicate"]["image"])].image
    score = confirm_score(
        prepare(crop_signature(source, a["original"]["box"])),
        prepare(crop_signature(other, b["duplicate"]["box"])),
    )
    assert score < 0.8


def test_image_copies_record_their_objects(written: Path) -> None:
    pairs = json.loads((written / "near_duplicate_objects.json").read_text())
    copies = [p for p in pairs if p["kind"] == "image"]
    assert copies and {_index(p["duplicate"]["image"]) for p in copies} == {DUPLICATE_PERIOD - 1}
    copy = read_coco_dataset(written)[DUPLICATE_PERIOD - 1]
    assert len(copies) == len(copy.boxes)


def test_planting_can_be_switched_off(tmp_path: Path) -> None:
    summary = write_dataset(tmp_path / "plain", 8, seed=5, plant_objects=False)
    assert summary.object_pairs == []
    assert json.loads((tmp_path / "plain" / "near_duplicate_objects.json").read_text()) == []
    index = next(i for i in range(1, N, 2) if dataset_scene(5, i).object_pairs)
    planted = dataset_scene(5, index, plant_objects=False).scene
    assert np.array_equal(planted.image, generate_scene(5, index).image)
    pasted = dataset_scene(5, index).scene
    assert len(pasted.objects) == len(planted.objects) + 1
    assert not np.array_equal(pasted.image, planted.image)


def test_planting_is_deterministic() -> None:
    a, b = dataset_scene(5, 7), dataset_scene(5, 7)
    assert a.object_pairs == b.object_pairs
    assert np.array_equal(a.scene.image, b.scene.image)
