"""Embedded mode: start_ingestion + run_plan (what ``roisearch ingest`` runs without Redis),
sources that fail as a whole, and the CLI commands on top."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from roisearch.cli import app
from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.ingestion.pipeline import ChunkSummary
from shared.ingestion.planning import PlanSummary
from shared.ingestion.progress import ingestion_progress
from shared.ingestion.runner import run_plan, start_ingestion
from shared.settings import Settings
from shared.yolov7.detector import Detector
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.archives import write_tar, write_zip
from tests.shared.ingestion.scenarios import (
    Models,
    build_mixed_archive,
    ingestion_settings,
    item_outcomes,
    totals,
)


def ingestion_row(db: Database, ingestion_id: int) -> tuple[str, str | None, int]:
    with db.read() as session:
        row = session.get(Ingestion, ingestion_id)
        assert row is not None
        return row.status, row.error_code, row.total_items


def test_embedded_run_processes_every_chunk_in_order(
    tmp_path: Path, ingest_settings: Settings, db: Database, detector: Detector
) -> None:
    archive = build_mixed_archive(tmp_path, "tar.gz", seed=4)
    plan = start_ingestion(db, ingest_settings, archive.path)
    refused_at_planning = sum(
        1
        for code in (c for _, c in archive.expected.values())
        if code in {"unsafe_member_name", "nested_archive", "not_regular_file"}
    )
    # nested_archive is also found by content (disguised.jpg), which happens at decode time.
    assert plan.refused == refused_at_planning - 1
    seen: list[int] = []

    def on_chunk(p: PlanSummary, summary: ChunkSummary) -> None:
        assert p is plan
        seen.append(summary.chunk)

    run_plan(db, ingest_settings, Models(ingest_settings, detector), plan, on_chunk=on_chunk)
    assert seen == plan.pending_chunks
    assert item_outcomes(db, plan.ingestion_id) == archive.expected
    status, code, total = ingestion_row(db, plan.ingestion_id)
    assert (status, code, total) == (IngestionStatus.DONE, None, len(archive.expected))
    with db.read() as session:
        progress = ingestion_progress(session, plan.ingestion_id)
    assert progress is not None and progress.eta_s == 0.0
    assert progress.images_per_s is not None and progress.images_per_s > 0
    assert progress.objects == totals(db).objects


def test_sources_that_cannot_be_read_fail_the_ingestion(
    tmp_path: Path, ingest_settings: Settings, db: Database
) -> None:
    missing = start_ingestion(db, ingest_settings, tmp_path / "nope.zip")
    assert ingestion_row(db, missing.ingestion_id) == ("failed", "source_not_found", 0)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    assert ingestion_row(db, start_ingestion(db, ingest_settings, broken).ingestion_id)[:2] == (
        "failed",
        "bad_archive",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    plan = start_ingestion(db, ingest_settings, empty)
    assert plan.pending_chunks == [] and ingestion_row(db, plan.ingestion_id) == ("done", None, 0)


def test_member_count_bomb_fails_before_planning_anything(
    tmp_path: Path, db_url: str, fixture_weights: Path, db: Database
) -> None:
    settings = ingestion_settings(
        tmp_path / "data", db_url, fixture_weights, max_archive_members=20
    )
    path = write_zip(tmp_path / "many.zip", [(f"{i}.jpg", b"x") for i in range(25)])
    plan = start_ingestion(db, settings, path)
    assert plan.total_items == 0
    assert ingestion_row(db, plan.ingestion_id) == ("failed", "too_many_members", 0)


def test_tar_bomb_keeps_what_came_before_it(
    tmp_path: Path, ingest_settings: Settings, db: Database, detector: Detector
) -> None:
    path = write_tar(
        tmp_path / "bomb.tar.gz",
        [("a.jpg", jpeg(64, 48, 1)), ("b.jpg", jpeg(64, 48, 2)), ("z.bmp", b"\0" * (40 << 20))],
        "w:gz",
    )
    plan = start_ingestion(db, ingest_settings, path)
    assert plan.total_items == 2 and plan.error and "bomb" in plan.error
    run_plan(db, ingest_settings, Models(ingest_settings, detector), plan)
    assert item_outcomes(db, plan.ingestion_id) == {
        "a.jpg": ("done", None),
        "b.jpg": ("done", None),
    }
    # The ingestion completes, and still says why the rest of the archive was not read.
    assert ingestion_row(db, plan.ingestion_id)[:2] == ("done", "compression_ratio")


def test_cli_ingest_embedded_and_list(
    tmp_path: Path, ingest_settings: Settings, db: Database
) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(jpeg(80, 60, i))
    (src / "notes.txt").write_text("hello")
    env = {
        "ROISEARCH_DATA_DIR": str(ingest_settings.data_dir),
        "ROISEARCH_DATABASE_URL": ingest_settings.resolved_database_url,
        "ROISEARCH_WEIGHTS": str(ingest_settings.weights),
        "ROISEARCH_IMG_SIZE": str(ingest_settings.img_size),
        "ROISEARCH_TORCH_THREADS": "1",
        "COLUMNS": "200",
    }
    assert "ROISEARCH_REDIS_URL" not in os.environ
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(src)], env=env)
    assert result.exit_code == 0, result.output
    assert "done" in result.output and "objects" in result.output  # the summary table
    with db.read() as session:
        ingestion_id = session.scalars(select(Ingestion.id)).one()
    assert item_outcomes(db, ingestion_id)["notes.txt"] == ("skipped", "not_an_image")
    assert totals(db).images == 3

    listing = runner.invoke(app, ["ingestions", "list"], env=env)
    assert listing.exit_code == 0, listing.output
    assert "photos" in listing.output and "done" in listing.output

    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope")], env=env)
    assert missing.exit_code == 2
