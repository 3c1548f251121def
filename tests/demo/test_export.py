"""Writing datasets: COCO and YOLO files agree with each other and with the scenes; zip and
folder hold the same members; near-duplicates are planted and recorded."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.export import (
    DUPLICATE_PERIOD,
    dataset_scene,
    duplicate_source,
    read_coco_dataset,
    write_dataset,
)
from demo.scenes import CLASS_NAMES, generate_scene

N = DUPLICATE_PERIOD + 2  # includes the first planted near-duplicate


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "set"
    write_dataset(out, N, seed=3)
    return out


def test_layout_and_counts(written: Path) -> None:
    assert len(list((written / "images").glob("*.jpg"))) == N
    assert len(list((written / "labels").glob("*.txt"))) == N
    assert (written / "classes.txt").read_text().split() == list(CLASS_NAMES)
    meta = json.loads((written / "dataset.json").read_text())
    assert meta["seed"] == 3 and meta["images"] == N


def test_coco_and_yolo_agree(written: Path) -> None:
    coco = json.loads((written / "annotations.json").read_text())
    assert [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])] == list(
        CLASS_NAMES
    )
    anns: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    for entry in coco["images"]:
        image = Image.open(written / entry["file_name"])
        assert image.format == "JPEG"
        assert image.size == (entry["width"], entry["height"])
        stem = Path(entry["file_name"]).stem
        lines = (written / "labels" / f"{stem}.txt").read_text().splitlines()
        mine = anns.get(entry["id"], [])
        assert len(lines) == len(mine)
        w, h = entry["width"], entry["height"]
        for line, a in zip(lines, mine, strict=True):
            cls, cx, cy, bw, bh = line.split()
            assert int(cls) == a["category_id"] - 1
            x, y, aw, ah = a["bbox"]
            assert float(cx) * w == pytest.approx(x + aw / 2, abs=0.01)
            assert float(cy) * h == pytest.approx(y + ah / 2, abs=0.01)
            assert float(bw) * w == pytest.approx(aw, abs=0.01)
            assert float(bh) * h == pytest.approx(ah, abs=0.01)
            assert x >= 0 and y >= 0 and x + aw <= w + 1e-6 and y + ah <= h + 1e-6
            assert 0 < a["area"] <= aw * ah + 1e-6


def test_ground_truth_is_the_scenes(written: Path) -> None:
    items = read_coco_dataset(written)
    for index in (0, 5, 17):  # 5 and 17 have a pasted object (odd indices)
        scene = dataset_scene(3, index).scene
        assert np.allclose(items[index].boxes, scene.boxes)
        assert np.array_equal(items[index].classes, scene.classes)
        # JPEG of the scene at its own quality: close to the drawn pixels
        assert np.abs(items[index].image.astype(int) - scene.image).mean() < 12


def test_near_duplicates_are_planted_and_recorded(written: Path) -> None:
    pairs = json.loads((written / "near_duplicates.json").read_text())
    dup_index = DUPLICATE_PERIOD - 1
    src = duplicate_source(3, dup_index)
    assert src is not None and 0 <= src < dup_index
    assert pairs == [
        p | {"original": f"images/{src:06d}.jpg", "duplicate": f"images/{dup_index:06d}.jpg"}
        for p in pairs
    ]
    assert len(pairs) == 1
    items = read_coco_dataset(written)
    original, duplicate = items[src], items[dup_index]
    remaining = list(original.classes)
    for c in duplicate.classes:  # the crop may lose objects, never add any
        remaining.remove(c)
    # the duplicate looks like its source and unlike an unrelated image
    size = duplicate.image.shape[1::-1]

    def distance(a: np.ndarray) -> float:
        small = np.asarray(Image.fromarray(a).resize(size), np.float32)
        return float(np.abs(small - duplicate.image).mean())

    unrelated = items[(src + 1) % dup_index]
    assert distance(original.image) < 0.5 * distance(unrelated.image)
    # its boxes are the source's boxes under the recorded transform
    t = pairs[0]
    left, top = t["crop_ltrb"][0], t["crop_ltrb"][1]
    expected = original.boxes * t["scale"] - np.array([left, top, left, top])
    h, w = duplicate.image.shape[:2]
    expected = np.clip(expected, 0, [w, h, w, h])
    kept = [i for i, b in enumerate(expected) if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
    assert np.allclose(duplicate.boxes, expected[kept], atol=1e-3)


def test_scene_index_is_independent_of_count() -> None:
    a = dataset_scene(3, 12).scene  # an even index: a plain scene
    b = generate_scene(3, 12)
    assert np.array_equal(a.image, b.image)


def test_zip_holds_the_folder(written: Path, tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    write_dataset(archive, N, seed=3, as_zip=True)
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        folder = {p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file()}
        assert names == folder
        for name in ("images/000007.jpg", "labels/000007.txt", "annotations.json"):
            assert zf.read(name) == (written / name).read_bytes()
        assert Image.open(io.BytesIO(zf.read("images/000000.jpg"))).format == "JPEG"


def test_same_seed_writes_identical_files(written: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_dataset(again, 6, seed=3)
    for name in ("images/000004.jpg", "labels/000004.txt"):
        assert (again / name).read_bytes() == (written / name).read_bytes()
