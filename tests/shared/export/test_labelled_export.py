"""Exporting labelled vectors with their label: the "train a classifier on my boxes" path
(issue 20), on a demo dataset ingested with its COCO labels by the real pipeline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared.db.database import Database
from shared.db.models import ObjectOrigin
from shared.export.files import export_directory
from shared.export.rows import ExportSpec
from shared.export.splits import SplitSpec
from shared.reports.params import ClusterParams
from shared.reports.pipeline import plan_report
from shared.reports.selection import resolve_selection
from shared.selection import Selection, SelectionError
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


@pytest.fixture
def labelled(tmp_path: Path, sqlite_url: str) -> tuple[Database, dict[str, Any]]:
    settings = ingestion_settings(tmp_path / "data", sqlite_url, DEMO_WEIGHTS, img_size=320)
    scenes = demo_scenes(tmp_path / "scenes", 6)
    source = write_source(tmp_path, "folder", members(scenes, "coco"))
    db, _ = ingest(settings, Detector.load(settings.detector_config()), source)
    return db, scenes


def test_labelled_boxes_export_with_their_label_split_by_image(
    labelled: tuple[Database, dict[str, Any]], tmp_path: Path
) -> None:
    db, scenes = labelled
    try:
        with db.read() as session:
            selection = resolve_selection(session, Selection(origin="label"))
        spec = ExportSpec(selection, split=SplitSpec.parse("0.5,0.5", seed=1))
        manifest = export_directory(db, spec, tmp_path / "out", formats=("parquet", "npy"))
        tables = [pq.read_table(p) for p in sorted((tmp_path / "out").rglob("*.parquet"))]
        rows = [r for t in tables for r in t.to_pylist()]
        assert Counter(r["label"] for r in rows) == expected_labels(scenes["coco"])
        assert {r["origin"] for r in rows} == {"label"}
        assert all(r["class_name"] == r["label"] and r["class_id"] < 0 for r in rows)
        # image-level split: no image's boxes in two parts
        parts: dict[int, set[str]] = {}
        for r in rows:
            parts.setdefault(r["image_id"], set()).add(r["split"])
        assert all(len(p) == 1 for p in parts.values())
        vectors = np.array([r["vector"] for r in rows], np.float32)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
        assert manifest["selection"]["origin"] == "label"

        with db.read() as session:
            one = resolve_selection(session, Selection(label_classes=("circle",)))
            detections = resolve_selection(session, Selection(origin="detection"))
        assert one.class_ids is not None and len(one.class_ids) == 1 and one.class_ids[0] < 0
        assert detections.class_ids is not None and min(detections.class_ids) >= 0
    finally:
        db.dispose()


def test_unknown_label_class_is_an_error(labelled: tuple[Database, dict[str, Any]]) -> None:
    db, _ = labelled
    try:
        with db.read() as session, pytest.raises(SelectionError) as raised:
            resolve_selection(session, Selection(label_classes=("unicorn",)))
        assert raised.value.code == "unknown_label_class"
        assert "unicorn" in raised.value.message and "circle" in raised.value.message
    finally:
        db.dispose()


def test_a_report_plan_over_labelled_boxes_counts_label_classes(
    labelled: tuple[Database, dict[str, Any]],
) -> None:
    db, scenes = labelled
    try:
        with db.read() as session:
            plan = plan_report(session, ClusterParams(origin=ObjectOrigin.LABEL, k=2))
        named = {plan.selection.class_name(c): n for c, n in plan.counts.items()}
        assert named == dict(expected_labels(scenes["coco"]))
        assert plan.selection.describe()["origin"] == "label"
    finally:
        db.dispose()
