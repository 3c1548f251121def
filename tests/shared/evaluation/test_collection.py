"""The demo detector against the labels of a demo dataset ingested by the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.evaluation.collection import EvaluationError, evaluate
from shared.yolov7.detector import DEMO_WEIGHTS, Detector
from tests.shared.ingestion.labelled import (
    demo_scenes,
    expected_labels,
    ingest,
    members,
    write_source,
)
from tests.shared.ingestion.scenarios import ingestion_settings

pytestmark = pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="demo detector absent")


def test_map_per_class_with_matches_and_curves(tmp_path: Path, sqlite_url: str) -> None:
    settings = ingestion_settings(tmp_path / "data", sqlite_url, DEMO_WEIGHTS, img_size=320)
    scenes = demo_scenes(tmp_path / "scenes", 6)
    source = write_source(tmp_path, "zip", members(scenes, "yolo"))
    db, _ = ingest(settings, Detector.load(settings.detector_config()), source)
    try:
        with db.read() as session:
            result = evaluate(session)
        json.dumps(result)  # the API and `roisearch eval --json` serve it as is
        assert result["images"] == 6
        truths = {c["class"]: c["ground_truth"] for c in result["classes"]}
        assert truths == dict(expected_labels(scenes["coco"]))
        # the demo detector knows these shapes: most are found at IoU 0.5
        assert result["map50"] > 0.5
        assert 0 < result["map50_95"] <= result["map50"]
        for c in result["classes"]:
            curve = c["pr_curve"]
            assert len(curve["recall"]) == len(curve["precision"]) == c["detections"]
            assert curve["recall"] == sorted(curve["recall"])
            matched = [m for m in c["matches"] if m["label_id"] is not None]
            assert len({m["label_id"] for m in matched}) == len(matched)  # each label once
            assert all(m["iou"] >= 0.5 for m in matched)
    finally:
        db.dispose()


def test_a_collection_without_labels_is_an_error(tmp_path: Path, sqlite_url: str) -> None:
    settings = ingestion_settings(tmp_path / "data", sqlite_url, DEMO_WEIGHTS, img_size=320)
    scenes = demo_scenes(tmp_path / "scenes", 2)
    images = {k: v for k, v in members(scenes, "coco").items() if k.endswith(".jpg")}
    db, _ = ingest(
        settings,
        Detector.load(settings.detector_config()),
        write_source(tmp_path, "folder", images),
    )
    try:
        with db.read() as session, pytest.raises(EvaluationError) as raised:
            evaluate(session)
        assert raised.value.code == "no_labelled_images"
    finally:
        db.dispose()
