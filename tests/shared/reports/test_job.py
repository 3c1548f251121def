"""The report job end to end on a synthetic collection, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared.db.database import Database
from shared.db.models import Report, ReportStatus
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.params import ClusterParams
from shared.settings import Settings
from tests.factories import Collection, seed_clustered


@pytest.fixture
def collection(settings: Settings, database: Database) -> Collection:
    return seed_clustered(settings, database)


def run(database: Database, settings: Settings, **params: Any) -> Report:
    report_id = create_cluster_report(database, ClusterParams(**params))
    run_cluster_report(database, settings.report_config(), report_id)
    with database.read() as session:
        report = session.get(Report, report_id)
        assert report is not None
        session.expunge(report)  # keep the loaded values after the read transaction ends
        return report


def assignments(settings: Settings, report_id: int) -> dict[int, int]:
    path = settings.reports_dir / str(report_id) / "assignments.csv"
    with path.open(newline="") as handle:
        return {int(r["object_id"]): int(r["cluster"]) for r in csv.DictReader(handle)}


def test_auto_k_report_follows_the_classes(
    settings: Settings, database: Database, collection: Collection
) -> None:
    report = run(database, settings)
    assert report.status == ReportStatus.DONE, report.error_message
    assert report.progress == 1.0 and report.finished_at is not None
    result = report.result
    assert result is not None
    overall = result["overall"]
    n = len(collection.object_ids)
    assert overall["objects"] == n and overall["noise"] == 0
    # Four well-separated classes: the silhouette picks k=4, clusters far purer than chance.
    assert result["k"]["groups"][0]["criterion"] == "silhouette"
    assert result["k"]["total"] == 4
    assert overall["purity"] > 0.95 > overall["purity_baseline"] + 0.5
    assigned = assignments(settings, report.id)
    assert len(assigned) == n
    for cluster in result["clusters"]:
        members = {o for o, c in assigned.items() if c == cluster["id"]}
        assert cluster["size"] == len(members)
        exemplars = [e["object_id"] for e in cluster["exemplars"]]
        assert exemplars and set(exemplars) <= members  # exemplars belong to their cluster
        assert min(e["similarity"] for e in cluster["exemplars"]) >= max(
            o["similarity"] for o in cluster["outliers"]
        )
        assert sum(c["count"] for c in cluster["classes"]) == cluster["size"]
        assert {i["ingestion_id"] for i in cluster["ingestions"]} <= set(collection.ingestion_ids)
    # The planted near-duplicates, and nothing else, form the near-duplicate groups.
    duplicates = result["duplicates"]
    found = {frozenset(g["object_ids"]) for g in duplicates["groups"]}
    assert found == {frozenset(p) for p in collection.duplicate_pairs}
    # The map shows every object (fewer than map_points) with its cluster.
    points = result["map"]["points"]
    assert len(points) == n
    assert all(assigned[p[3]] == p[2] for p in points)


def test_near_duplicates_are_the_same_pixels_not_the_same_vectors(
    settings: Settings, database: Database
) -> None:
    """Look-alikes (a vector as close as a copy's, other pixels) are candidates but not
    near-duplicates; pixel copies are. Image copies (75 % size) form image-level groups."""
    collection = seed_clustered(settings, database, lookalikes=3, image_copies=2)
    report = run(database, settings, max_duplicate_groups=100)
    assert report.status == ReportStatus.DONE, report.error_message
    assert report.result is not None
    duplicates = report.result["duplicates"]
    found = {frozenset(g["object_ids"]) for g in duplicates["groups"]}
    assert found == {frozenset(p) for p in collection.duplicate_pairs}
    assert duplicates["candidate_pairs"] >= len(collection.duplicate_pairs) + 3
    assert all(g["min_match"] >= duplicates["match_threshold"] for g in duplicates["groups"])
    # with the vectors alone (the old behaviour) the look-alikes are grouped too
    vectors_only = run(
        database,
        settings,
        duplicate_similarity=0.97,
        duplicate_match=None,
        max_duplicate_groups=100,
    )
    assert vectors_only.result is not None
    loose = {frozenset(g["object_ids"]) for g in vectors_only.result["duplicates"]["groups"]}
    assert {frozenset(p) for p in collection.lookalike_pairs} <= loose
    images = report.result["image_duplicates"]
    assert images["images"] == len(collection.image_ids)
    assert {frozenset(g["image_ids"]) for g in images["groups"]} == {
        frozenset(p) for p in collection.image_copies
    }
    html = (settings.reports_dir / str(report.id) / "report.html").read_text()
    assert "Near-duplicate images" in html and html.count('alt="image ') == 4
    # null duplicate_similarity switches both off
    off = run(database, settings, duplicate_similarity=None)
    assert off.result is not None
    assert off.result["duplicates"] is None and off.result["image_duplicates"] is None


def test_assignment_files_agree(
    settings: Settings, database: Database, collection: Collection
) -> None:
    report = run(database, settings, k=3, duplicate_similarity=None)
    assert report.status == ReportStatus.DONE
    assert report.result is not None and report.result["duplicates"] is None
    folder = settings.reports_dir / str(report.id)
    table = pq.read_table(folder / "assignments.parquet").to_pydict()
    from_csv = assignments(settings, report.id)
    assert dict(zip(table["object_id"], table["cluster"], strict=True)) == from_csv
    assert table["object_id"] == sorted(collection.object_ids)
    assert set(table["cluster"]) == {0, 1, 2}
    assert table["class_name"] == [
        ["cat", "dog", "car", "boat"][collection.class_of[o]] for o in table["object_id"]
    ]
    assert not any(p.name.startswith(".work") for p in folder.iterdir())


def test_per_class_clusters_hold_one_class(
    settings: Settings, database: Database, collection: Collection
) -> None:
    report = run(database, settings, per_class=True, k=2, classes=["cat", "dog"])
    assert report.status == ReportStatus.DONE
    result = report.result
    assert result is not None
    groups = result["k"]["groups"]
    assert [g["class_name"] for g in groups] == ["cat", "dog"]
    assert result["k"]["total"] == 4
    for cluster in result["clusters"]:
        assert len(cluster["classes"]) == 1
        assert cluster["classes"][0]["class_name"] == cluster["group_class"]
    expected = sum(1 for c in collection.class_of.values() if c in (0, 1))
    assert result["overall"]["objects"] == expected


def test_density_method(settings: Settings, database: Database, collection: Collection) -> None:
    report = run(database, settings, method="density", density_similarity=0.5)
    assert report.status == ReportStatus.DONE, report.error_message
    result = report.result
    assert result is not None
    assert result["method"] == "density"
    assert result["k"]["groups"][0]["criterion"] == "density"
    assert result["overall"]["clusters"] >= 2
    assert result["overall"]["purity"] > result["overall"]["purity_baseline"]


def test_html_is_self_contained_with_map_and_crops(
    settings: Settings, database: Database, collection: Collection
) -> None:
    report = run(database, settings, k=4)
    html = (settings.reports_dir / str(report.id) / "report.html").read_text()
    assert "<svg" in html and html.count("<circle") >= len(collection.object_ids)
    assert html.count('src="data:image/jpeg;base64,') >= 4 * 4
    assert not re.search(r"(?:src|href)=\"(?!data:)", html)  # nothing is fetched
    assert "http://" not in html and "https://" not in html and "url(" not in html
    assert "Cluster 0" in html and "near-duplicate" in html.lower()


def test_bad_parameters_fail_with_codes(
    settings: Settings, database: Database, collection: Collection
) -> None:
    too_many = run(database, settings, k=len(collection.object_ids) + 1)
    assert too_many.status == ReportStatus.FAILED
    assert too_many.error_code == "k_too_large"
    assert str(len(collection.object_ids)) in (too_many.error_message or "")
    unknown = run(database, settings, classes=["zebra"])
    assert unknown.status == ReportStatus.FAILED and unknown.error_code == "unknown_class"
    empty = run(database, settings, min_score=0.99)
    assert empty.status == ReportStatus.FAILED and empty.error_code == "empty_selection"
    assert "min_score 0.99" in (empty.error_message or "")


def test_rerun_is_idempotent(
    settings: Settings, database: Database, collection: Collection, tmp_path: Path
) -> None:
    report = run(database, settings, k=4)
    html = settings.reports_dir / str(report.id) / "report.html"
    before = html.stat().st_mtime_ns
    assert run_cluster_report(database, settings.report_config(), report.id) == ReportStatus.DONE
    assert html.stat().st_mtime_ns == before  # a done report is left alone
    # A run that died half-way (status running) is computed again from scratch.
    with database.begin() as session:
        row = session.get(Report, report.id)
        assert row is not None
        row.status, row.result, row.progress = ReportStatus.RUNNING, None, 0.4
    assert run_cluster_report(database, settings.report_config(), report.id) == ReportStatus.DONE
    with database.read() as session:
        again = session.get(Report, report.id)
        assert again is not None and again.result is not None and report.result is not None
        assert again.result["overall"] == report.result["overall"]
        assert again.result["clusters"] == report.result["clusters"]


def test_report_threads_are_restored(
    settings: Settings, database: Database, collection: Collection
) -> None:
    import faiss

    before = faiss.omp_get_max_threads()
    run(database, settings, k=2, duplicate_similarity=None)
    assert faiss.omp_get_max_threads() == before


def test_missing_report_is_a_no_op(settings: Settings, database: Database) -> None:
    assert run_cluster_report(database, settings.report_config(), 12345) == ReportStatus.DONE


def test_same_seed_same_clusters(
    settings: Settings, database: Database, collection: Collection
) -> None:
    first = run(database, settings, seed=5, sample_size=100, k_max=6)
    second = run(database, settings, seed=5, sample_size=100, k_max=6)
    assert first.result is not None and second.result is not None
    assert first.result["overall"]["training_objects"] == 100
    assert assignments(settings, first.id) == assignments(settings, second.id)
    sizes = [c["size"] for c in first.result["clusters"]]
    assert sizes == [c["size"] for c in second.result["clusters"]]
    assert np.sum(sizes) == len(collection.object_ids)
