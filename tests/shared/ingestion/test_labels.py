"""Labelled datasets through the real ingestion pipeline with the bundled demo detector:
COCO JSON, YOLO txt and Pascal VOC XML in a folder, a zip and a tar; broken annotation files
reported per file; label boxes pooled in the detections' forward pass (issue 20)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import DetectedObject, IngestionItem, LabelClass
from shared.ingestion.label_rows import label_code
from shared.ingestion.planning import plan_ingestion
from shared.ingestion.supervisor import IngestionSupervisor
from shared.yolov7.detector import DEMO_WEIGHTS, Detector
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.labelled import (
    demo_scenes,
    expected_labels,
    ingest,
    members,
    write_source,
)
from tests.shared.ingestion.scenarios import Models, ProbeDetector, ingestion_settings

SCENES = 4

pytestmark = pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="demo detector absent")


@pytest.fixture(scope="module")
def demo_detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    settings = ingestion_settings(
        tmp_path_factory.mktemp("unused"), "sqlite://", DEMO_WEIGHTS, img_size=320
    )
    return Detector.load(settings.detector_config())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return demo_scenes(tmp_path_factory.mktemp("scenes"), SCENES)


def objects(db: Database) -> list[tuple[Any, str | None]]:
    """(object columns, its label class name) of every object."""
    with db.read() as session:
        rows = list(
            session.execute(
                select(
                    DetectedObject.id,
                    DetectedObject.image_id,
                    DetectedObject.origin,
                    DetectedObject.class_id,
                    DetectedObject.ordinal,
                    DetectedObject.label_match_id,
                    DetectedObject.label_match_iou,
                    DetectedObject.vector,
                    DetectedObject.label_class_id,
                    LabelClass.name,
                ).outerjoin(LabelClass, LabelClass.id == DetectedObject.label_class_id)
            ).all()
        )
    return [(row, row.name) for row in rows]


def items(db: Database, ingestion_id: int) -> dict[str, tuple[str, str | None]]:
    with db.read() as session:
        rows = session.execute(
            select(IngestionItem.member, IngestionItem.status, IngestionItem.error_code).where(
                IngestionItem.ingestion_id == ingestion_id
            )
        ).all()
    return {m: (str(s), c) for m, s, c in rows}


@pytest.mark.parametrize("kind", ["folder", "zip", "tar"])
@pytest.mark.parametrize("fmt", ["yolo", "coco", "voc"])
def test_each_format_becomes_label_objects_matched_by_detections(
    fmt: str,
    kind: str,
    tmp_path: Path,
    sqlite_url: str,
    scenes: dict[str, Any],
    demo_detector: Detector,
) -> None:
    settings = ingestion_settings(tmp_path / "data", sqlite_url, DEMO_WEIGHTS, img_size=320)
    source = write_source(tmp_path, kind, members(scenes, fmt))
    probe = ProbeDetector(demo_detector)
    db, ingestion_id = ingest(settings, probe, source)
    try:
        outcome = items(db, ingestion_id)
        assert all(status == "done" for status, _ in outcome.values()), outcome
        rows = objects(db)
        labels = [(o, name) for o, name in rows if o.origin == "label"]
        detections = [o for o, _ in rows if o.origin == "detection"]
        # every labelled box, with the dataset's own class names, apart from the detector's
        assert Counter(name for _, name in labels) == expected_labels(scenes["coco"])
        assert all(o.class_id < 0 and o.ordinal < 0 for o, _ in labels)
        assert all(o.class_id == label_code(o.label_class_id) for o, _ in labels)
        # one forward pass per image: labelled boxes ride with the detections
        assert probe.images == SCENES
        by_id = {o.id: o for o, _ in labels}
        matched = [d for d in detections if d.label_match_id is not None]
        assert len(matched) >= len(labels) // 2, "the demo detector finds most labelled shapes"
        for d in matched:
            label = by_id[d.label_match_id]
            assert label.image_id == d.image_id and d.label_match_iou >= 0.5
            # the same shape pooled twice in one pass: nearly the same vector
            cosine = np.frombuffer(d.vector, "<f4") @ np.frombuffer(label.vector, "<f4")
            assert cosine > 0.8
    finally:
        db.dispose()


def test_broken_annotation_files_are_reported_per_file_and_boxes_per_item(
    db_url: str, tmp_path: Path, scenes: dict[str, Any], demo_detector: Detector
) -> None:
    settings = ingestion_settings(tmp_path / "data", db_url, DEMO_WEIGHTS, img_size=320)
    files = members(scenes, "yolo")
    files |= {
        "ds/labels/lonely.txt": b"0 0.5 0.5 0.2 0.2\n",  # no image lonely.*
        "odd/bad.jpg": jpeg(120, 90, 1),
        "odd/bad.txt": b"0 0.5 0.5 0.2 0.2\n99 0.5 0.5 0.2 0.2\n",  # class 99 of 9
        "odd/out.jpg": jpeg(120, 90, 2),
        "odd/out.txt": b"0 0.95 0.5 0.3 0.3\n",  # reaches x = 1.1 of the width
        "odd/flat.jpg": jpeg(120, 90, 3),
        "odd/flat.txt": b"0 0.5 0.5 0.0 0.3\n",  # zero width
        "odd/classes.txt": b"a\nb\n",
        "broken.json": b'{"images": [], "annotations": [',
        "voc/x.xml": b"<annotation><filename>x.jpg</filename><object>",
        "notes.txt": b"collected in 2024",
    }
    source = write_source(tmp_path, "zip", files)
    db, ingestion_id = ingest(settings, demo_detector, source)
    try:
        outcome = items(db, ingestion_id)
        assert outcome["ds/labels/lonely.txt"] == ("failed", "annotation_unmatched")
        assert outcome["odd/bad.txt"] == ("failed", "annotation_invalid")
        assert outcome["broken.json"] == ("failed", "annotation_invalid")
        assert outcome["voc/x.xml"] == ("failed", "annotation_invalid")
        assert outcome["odd/out.jpg"] == ("failed", "label_box_invalid")
        assert outcome["odd/flat.jpg"] == ("failed", "label_box_invalid")
        # the image of a broken label file is still ingested, without labels
        assert outcome["odd/bad.jpg"] == ("done", None)
        assert outcome["odd/out.txt"] == outcome["odd/flat.txt"] == ("done", None)
        assert outcome["notes.txt"] == ("skipped", "not_an_image")
        assert outcome["ds/labels/000000.txt"] == ("done", None)
        with db.read() as session:
            message = session.scalar(
                select(IngestionItem.error_message).where(IngestionItem.member == "odd/out.jpg")
            )
        assert message is not None and "lies outside the 120x90 image" in message
        labels = Counter(name for o, name in objects(db) if o.origin == "label")
        assert labels == expected_labels(scenes["coco"])
    finally:
        db.dispose()


@pytest.mark.parametrize("boxes", ["labels", "detections"])
def test_boxes_option_keeps_one_kind(
    boxes: str, tmp_path: Path, sqlite_url: str, scenes: dict[str, Any], demo_detector: Detector
) -> None:
    settings = ingestion_settings(tmp_path / "data", sqlite_url, DEMO_WEIGHTS, img_size=320)
    source = write_source(tmp_path, "folder", members(scenes, "coco"))
    db, _ = ingest(settings, demo_detector, source, boxes=boxes)
    try:
        origins = Counter(o.origin for o, _ in objects(db))
        if boxes == "labels":
            assert origins == {"label": sum(expected_labels(scenes["coco"]).values())}
        else:
            assert set(origins) == {"detection"} and origins["detection"] > 0
    finally:
        db.dispose()


def test_planning_again_keeps_labels_and_settled_files(
    tmp_path: Path, sqlite_url: str, scenes: dict[str, Any], demo_detector: Detector
) -> None:
    """A re-plan (a planner killed midway is planned again) reads the annotation files again
    and leaves what is settled as it is: no label lost, none doubled."""
    settings = ingestion_settings(tmp_path / "data", sqlite_url, DEMO_WEIGHTS, img_size=320)
    source = write_source(tmp_path, "tar", members(scenes, "yolo"))
    db = Database.from_url(settings.resolved_database_url)
    try:
        supervisor = IngestionSupervisor(db, settings.ingestion_config())
        plan = supervisor.start(source)
        before = items(db, plan.ingestion_id)
        again = plan_ingestion(db, settings.ingestion_config(), plan.ingestion_id)
        assert items(db, plan.ingestion_id) == before
        supervisor.run(again, Models(settings, demo_detector))
        labels = Counter(name for o, name in objects(db) if o.origin == "label")
        assert labels == expected_labels(scenes["coco"])
    finally:
        db.dispose()
