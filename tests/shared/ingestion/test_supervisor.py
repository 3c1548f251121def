"""The ingestion supervisor in embedded mode: ``start`` + ``run`` (what ``roisearch ingest``
runs without Redis), sources that fail as a whole, interrupted runs resumed, and the CLI
commands on top."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from roisearch.cli import app
from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.ingestion.leases import owner_id
from shared.ingestion.pipeline import ChunkSummary, process_chunk
from shared.ingestion.planning import PlanSummary, create_ingestion
from shared.ingestion.progress import ingestion_progress
from shared.ingestion.supervisor import EMBEDDED, IngestionSupervisor
from shared.settings import Settings
from shared.yolov7.detector import Detector
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.archives import write_tar, write_zip
from tests.shared.ingestion.scenarios import (
    Models,
    build_mixed_archive,
    dead_owner,
    ingestion_settings,
    item_outcomes,
    live_owner,
    totals,
)


def ingestion_row(db: Database, ingestion_id: int) -> tuple[str, str | None, int]:
    with db.read() as session:
        row = session.get(Ingestion, ingestion_id)
        assert row is not None
        return row.status, row.error_code, row.total_items


def test_embedded_run_processes_every_chunk_in_order(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    archive = build_mixed_archive(tmp_path, "tar.gz", seed=4)
    plan = supervisor.start(archive.path)
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

    supervisor.run(plan, Models(ingest_settings, detector), on_chunk=on_chunk)
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
    tmp_path: Path, ingest_settings: Settings, db: Database, supervisor: IngestionSupervisor
) -> None:
    missing = supervisor.start(tmp_path / "nope.zip")
    assert ingestion_row(db, missing.ingestion_id) == ("failed", "source_not_found", 0)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    assert ingestion_row(db, supervisor.start(broken).ingestion_id)[:2] == (
        "failed",
        "bad_archive",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    plan = supervisor.start(empty)
    assert plan.pending_chunks == [] and ingestion_row(db, plan.ingestion_id) == ("done", None, 0)


def test_member_count_bomb_fails_before_planning_anything(
    tmp_path: Path, db_url: str, fixture_weights: Path, db: Database
) -> None:
    settings = ingestion_settings(
        tmp_path / "data", db_url, fixture_weights, max_archive_members=20
    )
    path = write_zip(tmp_path / "many.zip", [(f"{i}.jpg", b"x") for i in range(25)])
    plan = IngestionSupervisor(db, settings.ingestion_config()).start(path)
    assert plan.total_items == 0
    assert ingestion_row(db, plan.ingestion_id) == ("failed", "too_many_members", 0)


def test_tar_bomb_keeps_what_came_before_it(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    path = write_tar(
        tmp_path / "bomb.tar.gz",
        [("a.jpg", jpeg(64, 48, 1)), ("b.jpg", jpeg(64, 48, 2)), ("z.bmp", b"\0" * (40 << 20))],
        "w:gz",
    )
    plan = supervisor.start(path)
    assert plan.total_items == 2 and plan.error and "bomb" in plan.error
    supervisor.run(plan, Models(ingest_settings, detector))
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


# --- interrupted embedded runs ---------------------------------------------------------------


def photo_folder(directory: Path, images: int) -> Path:
    directory.mkdir()
    for i in range(images):
        (directory / f"{i:03d}.jpg").write_bytes(jpeg(48, 32, i))
    (directory / "notes.txt").write_text("not an image")
    return directory


def die_after_first_chunk(db: Database, settings: Settings, detector: Detector) -> int:
    """An embedded run of a new ingestion that stops after its first chunk, its process gone
    (killed, or ended by a full disk): items left pending, the ingestion running."""
    photos = photo_folder(settings.data_dir.parent / "photos", 20)
    with IngestionSupervisor(db, settings.ingestion_config()).start_embedded(photos) as plan:
        assert plan.pending_chunks == [0, 1, 2]
        process_chunk(db, settings.ingestion_config(), detector, plan.ingestion_id, 0)
    with db.begin() as session:  # the lease of a process that was SIGKILLed meanwhile
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == plan.ingestion_id)
            .values(lease_owner=dead_owner())
        )
    return plan.ingestion_id


def test_rerunning_an_interrupted_embedded_source_resumes_it(
    ingest_settings: Settings, db: Database, detector: Detector, supervisor: IngestionSupervisor
) -> None:
    first = die_after_first_chunk(db, ingest_settings, detector)
    assert ingestion_row(db, first) == (IngestionStatus.RUNNING, None, 21)
    before = totals(db)

    with supervisor.start_embedded(ingest_settings.data_dir.parent / "photos") as plan:
        assert plan.ingestion_id == first  # the same ingestion, not a second one
        assert plan.pending_chunks == [1, 2]
        supervisor.run(plan, Models(ingest_settings, detector))
    assert ingestion_row(db, first) == (IngestionStatus.DONE, None, 21)
    outcomes = item_outcomes(db, first)
    assert outcomes.pop("notes.txt") == ("skipped", "not_an_image")
    assert set(outcomes.values()) == {("done", None)}
    t = totals(db)
    assert t.images == 20 and before.images == 8
    assert t.objects == t.distinct_object_keys == t.object_count_sum
    with db.read() as session:
        assert session.scalars(select(Ingestion.id)).all() == [first]
        assert session.get_one(Ingestion, first).lease_owner is None  # released


def test_the_next_embedded_run_finishes_other_interrupted_ingestions(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    interrupted = die_after_first_chunk(db, ingest_settings, detector)
    # Killed while planning: planned again, then run.
    src = photo_folder(tmp_path / "other", 3)
    with db.begin() as session:
        half_planned = create_ingestion(session, src, options={"runner": EMBEDDED}).id
        session.flush()
        session.execute(
            update(Ingestion).where(Ingestion.id == half_planned).values(lease_owner=dead_owner())
        )
    models = Models(ingest_settings, detector)
    with live_owner() as owner:
        # An embedded run in progress elsewhere on this host, and a queued (RQ) ingestion:
        # neither is touched.
        with supervisor.start_embedded(photo_folder(tmp_path / "busy", 2)) as busy:
            pass
        queued = supervisor.start(tmp_path / "busy")
        with db.begin() as session:
            session.execute(
                update(Ingestion).where(Ingestion.id == busy.ingestion_id).values(lease_owner=owner)
            )
        seen: list[int] = []
        resumed = supervisor.finish_interrupted(
            models, on_plan=lambda p: seen.append(p.ingestion_id)
        )
        assert [p.ingestion_id for p in resumed] == seen == [interrupted, half_planned]
        assert ingestion_row(db, busy.ingestion_id)[0] == IngestionStatus.RUNNING
        assert ingestion_row(db, queued.ingestion_id)[0] == IngestionStatus.RUNNING
    assert ingestion_row(db, interrupted) == (IngestionStatus.DONE, None, 21)
    assert ingestion_row(db, half_planned) == (IngestionStatus.DONE, None, 4)
    # The run that was in progress has died meanwhile (its process was killed): its turn now.
    assert [p.ingestion_id for p in supervisor.finish_interrupted(models)] == [busy.ingestion_id]
    assert supervisor.finish_interrupted(models) == []
    assert ingestion_row(db, queued.ingestion_id)[0] == IngestionStatus.RUNNING  # the queue's


def test_an_interrupted_run_whose_source_is_gone_fails_with_a_reason(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    src = photo_folder(tmp_path / "gone", 3)
    with db.begin() as session:
        ingestion_id = create_ingestion(session, src, options={"runner": EMBEDDED}).id
        session.flush()
        session.execute(
            update(Ingestion).where(Ingestion.id == ingestion_id).values(lease_owner=dead_owner())
        )
    shutil.rmtree(src)
    supervisor.finish_interrupted(Models(ingest_settings, detector))
    assert ingestion_row(db, ingestion_id)[:2] == (IngestionStatus.FAILED, "planning_interrupted")


def test_cli_ingest_resumes_an_interrupted_run_and_lists_skipped_items(
    ingest_settings: Settings, db: Database, detector: Detector
) -> None:
    interrupted = die_after_first_chunk(db, ingest_settings, detector)
    env = {
        "ROISEARCH_DATA_DIR": str(ingest_settings.data_dir),
        "ROISEARCH_DATABASE_URL": ingest_settings.resolved_database_url,
        "ROISEARCH_WEIGHTS": str(ingest_settings.weights),
        "ROISEARCH_IMG_SIZE": str(ingest_settings.img_size),
        "ROISEARCH_CHUNK_SIZE": "8",
        "ROISEARCH_TORCH_THREADS": "1",
        "COLUMNS": "200",
    }
    photos = ingest_settings.data_dir.parent / "photos"
    result = CliRunner().invoke(app, ["ingest", str(photos)], env=env)
    assert result.exit_code == 0, result.output
    with db.read() as session:
        assert session.scalars(select(Ingestion.id)).all() == [interrupted]
    assert ingestion_row(db, interrupted) == (IngestionStatus.DONE, None, 21)
    assert totals(db).images == 20
    # The summary says which member was left out, and why.
    assert "skipped 1 not images: notes.txt (1)" in result.stdout.splitlines()


def test_a_run_that_failed_is_resumed_by_the_next_run_at_once(
    ingest_settings: Settings, db: Database, detector: Detector, supervisor: IngestionSupervisor
) -> None:
    # A full disk ends the run with an error: the process releases its lease on the way out,
    # and the re-run a moment later must resume the ingestion, not start a second one.
    photos = photo_folder(ingest_settings.data_dir.parent / "photos", 12)

    class DiskFullError(OSError):
        pass

    def disk_fills_after_first_chunk(_: PlanSummary, summary: ChunkSummary) -> None:
        raise DiskFullError(28, "No space left on device")

    models = Models(ingest_settings, detector)
    with (
        pytest.raises(DiskFullError),
        supervisor.start_embedded(photos) as plan,
    ):
        supervisor.run(plan, models, on_chunk=disk_fills_after_first_chunk)
    assert ingestion_row(db, plan.ingestion_id)[0] == IngestionStatus.RUNNING
    with supervisor.start_embedded(photos) as again:
        assert again.ingestion_id == plan.ingestion_id and again.pending_chunks == [1]
        supervisor.run(again, models)
    assert ingestion_row(db, plan.ingestion_id) == (IngestionStatus.DONE, None, 13)


def lease_owner(db: Database, ingestion_id: int) -> str | None:
    with db.read() as session:
        return session.get_one(Ingestion, ingestion_id).lease_owner


def test_an_embedded_run_holds_its_lease_from_planning_to_the_end_of_its_chunks(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    # Released between planning and the run, an ingestion would be free for any other
    # embedded run to take over (no driver) before this one starts its chunks.
    with db.begin() as session:  # killed while planning: planned again before its run
        half_planned = create_ingestion(
            session, photo_folder(tmp_path / "half", 3), options={"runner": EMBEDDED}
        ).id
        session.flush()
        session.execute(
            update(Ingestion).where(Ingestion.id == half_planned).values(lease_owner=dead_owner())
        )
    with supervisor.start_embedded(photo_folder(tmp_path / "new", 3)) as plan:
        assert lease_owner(db, plan.ingestion_id) == owner_id()
        assert [o.id for o in supervisor.interrupted_embedded()] == [half_planned]
    # Released at the end, unfinished: the next embedded run may take it over at once.
    assert lease_owner(db, plan.ingestion_id) is None
    assert [o.id for o in supervisor.interrupted_embedded()] == [
        half_planned,
        plan.ingestion_id,
    ]

    seen: list[tuple[int, str | None, list[int]]] = []

    def planned(other: PlanSummary) -> None:  # after the claim and the re-plan, before the run
        orphans = [o.id for o in supervisor.interrupted_embedded()]
        seen.append((other.ingestion_id, lease_owner(db, other.ingestion_id), orphans))

    supervisor.finish_interrupted(Models(ingest_settings, detector), on_plan=planned)
    assert seen == [
        (half_planned, owner_id(), [plan.ingestion_id]),
        (plan.ingestion_id, owner_id(), []),
    ]
    assert ingestion_row(db, half_planned) == (IngestionStatus.DONE, None, 4)
    assert ingestion_row(db, plan.ingestion_id) == (IngestionStatus.DONE, None, 4)
