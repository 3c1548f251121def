"""Progress lists the failed and the skipped items, each with its code and message, paged."""

from __future__ import annotations

from pathlib import Path

from shared.db.database import Database
from shared.ingestion.pipeline import process_chunk
from shared.ingestion.progress import FailedItem, ingestion_progress
from shared.ingestion.supervisor import IngestionSupervisor
from shared.settings import Settings
from shared.yolov7.detector import Detector
from tests.shared.imaging.corpus import jpeg


def test_skipped_items_are_listed_with_their_reasons(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg(40, 30, 1))
    whole = jpeg(64, 48, 2)
    (src / "b-cut.jpg").write_bytes(whole[: len(whole) // 2])
    (src / "c-empty.jpg").write_bytes(b"")
    (src / "d-labels.json").write_text('{"a.jpg": "cat"}')
    (src / "e-notes.txt").write_text("holiday photos")
    plan = supervisor.start(src)
    for chunk in plan.pending_chunks:
        process_chunk(db, ingest_settings.ingestion_config(), detector, plan.ingestion_id, chunk)

    with db.read() as session:
        progress = ingestion_progress(session, plan.ingestion_id)
        second_page = ingestion_progress(
            session, plan.ingestion_id, skipped_offset=1, skipped_limit=1, failed_limit=0
        )
    assert progress is not None and second_page is not None
    assert [(f.member, f.error_code) for f in progress.failed] == [("b-cut.jpg", "truncated")]
    assert [(s.member, s.error_code) for s in progress.skipped] == [
        ("c-empty.jpg", "empty_file"),
        ("d-labels.json", "not_an_image"),
        ("e-notes.txt", "not_an_image"),
    ]
    # Each reason names its member, as the failed items' do.
    assert all(s.error_message and s.member in s.error_message for s in progress.skipped)
    assert progress.counts["skipped"] == 3 and progress.counts["done"] == 1
    assert second_page.failed == []
    assert second_page.skipped == [
        FailedItem("d-labels.json", "not_an_image", progress.skipped[1].error_message)
    ]
