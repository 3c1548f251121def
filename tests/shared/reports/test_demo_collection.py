"""A clustering report of the demo data, detected and embedded by the bundled demo detector:
the clusters follow the shape classes far better than chance, exemplars belong to their
cluster, and the planted near-duplicate images are found as near-duplicate groups."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from demo.export import write_dataset
from shared.db import migrations
from shared.db.database import Database
from shared.db.models import DetectedObject, Image, IngestionItem, Report, ReportStatus
from shared.ingestion.supervisor import IngestionSupervisor
from shared.model_provider import ModelProvider
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.params import ClusterParams
from shared.settings import load_settings
from shared.yolov7.detector import DEMO_WEIGHTS

pytestmark = pytest.mark.skipif(
    not DEMO_WEIGHTS.is_file(), reason=f"{DEMO_WEIGHTS} is absent (build it with train-demo)"
)

SCENES = 81  # every 40th scene is a planted near-duplicate of an earlier one: 2 pairs


@pytest.fixture(scope="module")
def demo_collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Path, list]:
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("demo-report")
    summary = write_dataset(root / "scenes", SCENES, seed=11)
    url = f"sqlite:///{root / 'roisearch.db'}"
    migrations.upgrade(url)
    settings = load_settings(data_dir=root / "data", database_url=url, chunk_size=16)
    db = Database.from_url(url)
    plan = IngestionSupervisor(db, settings.ingestion_config()).start(root / "scenes" / "images")
    IngestionSupervisor(db, settings.ingestion_config()).run(
        plan, ModelProvider(settings.detector_config())
    )
    pairs = json.loads((root / "scenes" / "near_duplicates.json").read_text())
    assert len(pairs) == 2 == len(summary.near_duplicates)
    return db, root, pairs


def test_clusters_follow_the_shape_classes(demo_collection: tuple[Database, Path, list]) -> None:
    db, root, _ = demo_collection
    settings = load_settings(data_dir=root / "data", database_url=str(db.engine.url))
    report_id = create_cluster_report(db, ClusterParams())
    assert run_cluster_report(db, settings.report_config(), report_id) == ReportStatus.DONE
    with db.read() as session:
        report = session.get(Report, report_id)
        assert report is not None and report.result is not None
        result = report.result
        objects = dict(session.execute(select(DetectedObject.id, DetectedObject.class_id)).all())
    overall = result["overall"]
    assert overall["objects"] == len(objects) > 300
    # 9 classes, none above ~15 % of the objects: chance purity is low
    assert overall["purity_baseline"] < 0.2
    assert overall["purity"] > overall["purity_baseline"] + 0.4, overall
    assigned = {}
    with (settings.reports_dir / str(report_id) / "assignments.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            assigned[int(row["object_id"])] = int(row["cluster"])
    assert assigned.keys() == objects.keys()
    for cluster in result["clusters"]:
        members = {o for o, c in assigned.items() if c == cluster["id"]}
        exemplars = [e["object_id"] for e in cluster["exemplars"]]
        assert exemplars and set(exemplars) <= members  # exemplars belong to their cluster
        assert min(e["similarity"] for e in cluster["exemplars"]) >= max(
            o["similarity"] for o in cluster["outliers"]
        )


def test_near_duplicate_groups_find_the_planted_pairs(
    demo_collection: tuple[Database, Path, list],
) -> None:
    db, root, pairs = demo_collection
    settings = load_settings(data_dir=root / "data", database_url=str(db.engine.url))
    report_id = create_cluster_report(
        db, ClusterParams(duplicate_similarity=0.97, max_duplicate_groups=1000)
    )
    assert run_cluster_report(db, settings.report_config(), report_id) == ReportStatus.DONE
    with db.read() as session:
        report = session.get(Report, report_id)
        assert report is not None and report.result is not None
        groups = report.result["duplicates"]["groups"]
        image_of_member = {
            Path(member).name: image_id
            for member, image_id in session.execute(
                select(IngestionItem.member, IngestionItem.image_id)
            ).all()
        }
        assert session.scalar(select(Image.id).limit(1)) is not None
    grouped_images = [set(g["image_ids"]) for g in groups]
    # groups are small (pairs, mostly), not class-wide blobs that would join anything
    sizes = sorted(len(g["object_ids"]) for g in groups)
    assert sizes and sizes[len(sizes) // 2] <= 3, sizes
    for pair in pairs:
        copy = image_of_member[Path(pair["duplicate"]).name]
        source = image_of_member[Path(pair["original"]).name]
        # some group joins an object of the copy with one of its source
        assert any({copy, source} <= images for images in grouped_images), (pair, groups)


def test_planted_near_duplicate_objects_are_found_and_little_else(
    demo_collection: tuple[Database, Path, list],
) -> None:
    """With the default settings, the pasted objects (exact, JPEG, resized, shifted) and the
    objects of image copies are found as groups; look-alikes (same class, other pixels)
    are not (the bench's scoring, on this smaller collection)."""
    from bench.near_duplicates import Truth, score_images, score_objects

    db, root, _ = demo_collection
    settings = load_settings(data_dir=root / "data", database_url=str(db.engine.url))
    report_id = create_cluster_report(db, ClusterParams(max_duplicate_groups=1000))
    assert run_cluster_report(db, settings.report_config(), report_id) == ReportStatus.DONE
    with db.read() as session:
        report = session.get(Report, report_id)
        assert report is not None and report.result is not None
        result = report.result
    truth = Truth(db, root / "scenes")
    objects = score_objects(truth, result["duplicates"]["groups"])
    assert objects["planted_pairs"] >= 30 and objects["detectable_pairs"] >= 25, objects
    assert objects["recall"] >= 0.8 and objects["precision"] >= 0.9, objects
    assert objects["false_groups"] <= 2, objects
    images = score_images(truth, result["image_duplicates"])
    assert images["found_pairs"] == images["planted_pairs"] == 2, images
    assert images["false_groups"] == 0, images
