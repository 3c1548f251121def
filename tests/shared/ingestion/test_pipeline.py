"""process_chunk end to end on SQLite and PostgreSQL with the fixture model: every item is
accounted for, objects are stored once, retries and duplicates write nothing twice, and one
broken image never takes its chunk or batch down."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, select, text, update

from shared.db.database import Database
from shared.db.models import (
    DetectedObject,
    Image,
    Ingestion,
    IngestionItem,
    IngestionStatus,
    ItemStatus,
)
from shared.ingestion.pipeline import MAX_ATTEMPTS, finish_if_complete, process_chunk
from shared.ingestion.planning import create_ingestion, pending_chunks, plan_ingestion
from shared.ingestion.progress import ingestion_progress
from shared.ingestion.supervisor import IngestionSupervisor
from shared.settings import Settings
from shared.yolov7.detector import Detector, PreparedImage
from tests.shared.imaging.corpus import jpeg, png
from tests.shared.ingestion.archives import tree_snapshot, write_zip
from tests.shared.ingestion.scenarios import (
    ProbeDetector,
    build_mixed_archive,
    item_outcomes,
    totals,
)


def run_all(
    db: Database, settings: Settings, detector: Detector, ingestion_id: int, streams: int = 1
) -> None:
    with db.read() as session:
        chunks = pending_chunks(session, ingestion_id)
    for chunk in chunks:
        process_chunk(
            db, settings.ingestion_config(), detector, ingestion_id, chunk, streams=streams
        )


def snapshot_outside(tmp_path: Path, settings: Settings) -> set[str]:
    # The SQLite file of the db_url fixture lives beside the data directory: not ours.
    return {
        p
        for p in tree_snapshot(tmp_path, exclude=settings.data_dir)
        if not p.startswith("roisearch.db")
    }


@pytest.mark.parametrize(("kind", "streams"), [("zip", 1), ("tar.gz", 1), ("zip", 2)])
def test_mixed_archive_every_item_accounted_for(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    kind: str,
    streams: int,
    supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    archive = build_mixed_archive(src, kind)
    before = snapshot_outside(tmp_path, ingest_settings)

    plan = supervisor.start(archive.path)
    assert plan.total_items == len(archive.expected)
    assert len(plan.pending_chunks) > 3  # several chunks of 8
    run_all(db, ingest_settings, detector, plan.ingestion_id, streams)

    outcomes = item_outcomes(db, plan.ingestion_id)
    assert outcomes == archive.expected
    with db.read() as session:
        progress = ingestion_progress(session, plan.ingestion_id, failed_limit=1000)
        assert progress is not None
        messages = {f.member: f.error_message for f in progress.failed}
        images = {
            row.id: row
            for row in session.execute(
                select(Image.id, Image.width, Image.height, Image.source, Image.storage_path)
            )
        }
        objects = session.execute(
            select(
                DetectedObject.image_id,
                DetectedObject.x1,
                DetectedObject.y1,
                DetectedObject.x2,
                DetectedObject.y2,
                DetectedObject.vector,
            )
        ).all()
    assert progress.status == IngestionStatus.DONE
    assert progress.counts[ItemStatus.PENDING] == 0
    settled = (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.SKIPPED)
    assert sum(progress.counts[s] for s in settled) == progress.total
    assert progress.counts[ItemStatus.FAILED] == len(messages)
    # Every failure has a message that names its member (for the failed-items list).
    assert all(messages[m] and m.rsplit("/", 1)[-1] in str(messages[m]) for m in messages), messages

    t = totals(db)
    assert t.images == archive.distinct_images == t.embeddings
    assert t.objects == t.object_count_sum == t.distinct_object_keys == progress.objects > 0
    for obj in objects:
        image = images[obj.image_id]
        assert 0 <= obj.x1 < obj.x2 <= image.width and 0 <= obj.y1 < obj.y2 <= image.height
        assert len(obj.vector) == detector.dim * 4
    rotated = next(i for i in images.values() if i.source.endswith("exif-rotated.jpg"))
    assert (rotated.width, rotated.height) == (20, 40)  # oriented size
    for image in images.values():
        assert image.storage_path and (ingest_settings.data_dir / image.storage_path).is_file()
    # Nothing was written anywhere but the data directory.
    assert snapshot_outside(tmp_path, ingest_settings) == before


def test_reingesting_the_same_source_links_known_images(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    archive = build_mixed_archive(tmp_path, "zip", seed=1)
    first = supervisor.start(archive.path)
    run_all(db, ingest_settings, detector, first.ingestion_id)
    after_first = totals(db)

    probe = ProbeDetector(detector)
    second = supervisor.start(archive.path)
    run_all(db, ingest_settings, probe.as_detector(), second.ingestion_id)
    assert probe.images == 0  # nothing recomputed: every image is known by its content hash
    assert totals(db) == after_first
    assert item_outcomes(db, second.ingestion_id) == archive.expected
    with db.read() as session:
        linked = dict(
            session.execute(
                select(IngestionItem.member, IngestionItem.image_id).where(
                    IngestionItem.ingestion_id == second.ingestion_id,
                    IngestionItem.status == ItemStatus.DONE,
                )
            ).all()
        )
        originals = dict(
            session.execute(
                select(IngestionItem.member, IngestionItem.image_id).where(
                    IngestionItem.ingestion_id == first.ingestion_id,
                    IngestionItem.status == ItemStatus.DONE,
                )
            ).all()
        )
    assert linked == originals
    assert linked["photos/0.jpg"] == linked["photos/copy-of-0.jpg"]


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # zipfile: that is the point
def test_repeated_names_and_repeated_broken_bytes_are_each_accounted_for(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    # The bad-input battery's archive: two different images under one name, and identical
    # broken bytes under several names (decoded once, each item must still name itself).
    whole = jpeg(64, 48, 3)
    truncated = whole[: len(whole) // 2]
    entries = [
        ("dup.jpg", jpeg(40, 30, 21)),
        ("dup.jpg", jpeg(40, 30, 22)),
        ("ok.jpg", jpeg(40, 30, 23)),
        *((f"same-bytes-{i}.jpg", b"not an image at all") for i in range(3)),
        *((f"cut-{i}.jpg", truncated) for i in range(2)),
    ]
    path = write_zip(tmp_path / "duplicates.zip", entries)
    plan = supervisor.start(path)
    assert plan.total_items == len(entries) and plan.pending_chunks == [0]  # one chunk of 8
    run_all(db, ingest_settings, detector, plan.ingestion_id)

    assert item_outcomes(db, plan.ingestion_id) == {
        "dup.jpg": ("done", None),
        "dup.jpg (#2)": ("done", None),
        "ok.jpg": ("done", None),
        **{f"same-bytes-{i}.jpg": ("skipped", "not_an_image") for i in range(3)},
        **{f"cut-{i}.jpg": ("failed", "truncated") for i in range(2)},
    }
    with db.read() as session:
        rows = session.execute(
            select(IngestionItem.member, IngestionItem.error_message, IngestionItem.image_id).where(
                IngestionItem.ingestion_id == plan.ingestion_id
            )
        ).all()
    messages = {r.member: str(r.error_message) for r in rows}
    for i in range(3):
        assert messages[f"same-bytes-{i}.jpg"].startswith(f"same-bytes-{i}.jpg is not an image")
    for i in range(2):
        assert messages[f"cut-{i}.jpg"].startswith(f"cut-{i}.jpg ")
    assert "cut-0" not in messages["cut-1.jpg"]
    # The two images named dup.jpg are two images, each with its own bytes.
    images = {r.member: r.image_id for r in rows if r.image_id is not None}
    assert len({images["dup.jpg"], images["dup.jpg (#2)"], images["ok.jpg"]}) == 3
    assert totals(db).images == 3


def test_a_chunk_killed_midway_is_retried_without_duplicates(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    archive = build_mixed_archive(tmp_path, "zip", seed=2)
    plan = supervisor.start(archive.path)
    chunk = plan.pending_chunks[0]

    class Killed(BaseException):
        """Stands for SIGKILL: nothing after it runs, no handler catches it."""

    class DiesAfterTwo(ProbeDetector):
        def embed(self, images: Any, *args: Any, **kwargs: Any) -> Any:
            if self.calls == 2:
                raise Killed
            return super().embed(images, *args, **kwargs)

    with pytest.raises(Killed):
        dies = DiesAfterTwo(detector).as_detector()
        process_chunk(db, ingest_settings.ingestion_config(), dies, plan.ingestion_id, chunk)
    assert totals(db).objects == 0  # the chunk's transaction never committed
    first = process_chunk(
        db, ingest_settings.ingestion_config(), detector, plan.ingestion_id, chunk
    )
    assert first.done + first.failed == 8 and not first.skipped
    once = totals(db)
    # A retry of a chunk that did commit (a worker killed before RQ heard of the success).
    again = process_chunk(
        db, ingest_settings.ingestion_config(), detector, plan.ingestion_id, chunk
    )
    assert again.skipped and totals(db) == once
    with db.read() as session:
        attempts = session.scalars(
            select(IngestionItem.attempts).where(
                IngestionItem.ingestion_id == plan.ingestion_id, IngestionItem.chunk == chunk
            )
        ).all()
    assert set(attempts) == {2}


def test_the_same_chunk_run_twice_concurrently_stores_objects_once(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    # The reconciler may enqueue a chunk a worker is still processing: both must finish
    # without duplicating anything and without failing.
    archive = build_mixed_archive(tmp_path, "zip", seed=3)
    plan = supervisor.start(archive.path)
    lock = threading.Lock()

    class Serialised(ProbeDetector):
        def embed(self, images: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return super().embed(images, *args, **kwargs)

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            run_all(db, ingest_settings, Serialised(detector).as_detector(), plan.ingestion_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert item_outcomes(db, plan.ingestion_id) == archive.expected
    t = totals(db)
    assert t.images == archive.distinct_images
    assert t.objects == t.object_count_sum == t.distinct_object_keys


@pytest.mark.parametrize("streams", [1, 2])
def test_one_image_the_model_rejects_fails_alone(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    streams: int,
    supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(7):
        (src / f"{i}.jpg").write_bytes(jpeg(64, 48, i))
    (src / "poison.jpg").write_bytes(jpeg(37, 23, 99))  # a size nothing else has
    probe = ProbeDetector(detector, batch_size=4, poison=lambda size: size == (23, 37))
    plan = supervisor.start(src)
    assert plan.pending_chunks == [0]
    summary = process_chunk(
        db,
        ingest_settings.ingestion_config(),
        probe.as_detector(),
        plan.ingestion_id,
        0,
        streams=streams,
    )
    assert (summary.done, summary.failed) == (7, 1)
    outcomes = item_outcomes(db, plan.ingestion_id)
    assert outcomes["poison.jpg"] == ("failed", "model_error")
    assert all(outcomes[f"{i}.jpg"] == ("done", None) for i in range(7))
    assert 4 in probe.batch_sizes  # the images really went to the model in batches
    assert totals(db).images == 7


@pytest.mark.parametrize("streams", [1, 2])
def test_images_are_letterboxed_in_the_decode_threads(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    streams: int,
    supervisor: IngestionSupervisor,
) -> None:
    # The resize is not free next to a CPU model and stalls a GPU's feeder: it runs ahead,
    # with the decoding, never on the model's path.
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"{i}.jpg").write_bytes(jpeg(64 + 16 * i, 48, i))
    probe = ProbeDetector(detector)
    plan = supervisor.start(src)
    summary = process_chunk(
        db,
        ingest_settings.ingestion_config(),
        probe.as_detector(),
        plan.ingestion_id,
        0,
        streams=streams,
    )
    assert summary.done == 6 and probe.images == 6
    assert len(probe.prepared_in) == 6
    assert all(name.startswith("decode") for name in probe.prepared_in), probe.prepared_in


def test_an_image_that_cannot_be_letterboxed_fails_alone(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    monkeypatch: pytest.MonkeyPatch,
    supervisor: IngestionSupervisor,
) -> None:
    # Raised in a decode thread, the error would end the pool's map and the whole chunk.
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(jpeg(64, 48, i))
    (src / "odd.jpg").write_bytes(jpeg(37, 23, 9))
    probe = ProbeDetector(detector)

    def prepare(image: np.ndarray, **kwargs: Any) -> PreparedImage:
        if image.shape[:2] == (23, 37):
            raise RuntimeError("cannot resize")
        return detector.prepare(image, **kwargs)

    monkeypatch.setattr(probe, "prepare", prepare)
    plan = supervisor.start(src)
    summary = process_chunk(
        db, ingest_settings.ingestion_config(), probe.as_detector(), plan.ingestion_id, 0
    )
    assert (summary.done, summary.failed) == (3, 1)
    assert item_outcomes(db, plan.ingestion_id)["odd.jpg"] == ("failed", "model_error")


def test_a_thin_strip_is_ingested(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    # 1 x 3000 pixels: letterboxed to one row of content, not refused (nor a chunk failure).
    (tmp_path / "strip.png").write_bytes(png(3000, 1, 3))
    plan = supervisor.start(tmp_path / "strip.png")
    summary = process_chunk(db, ingest_settings.ingestion_config(), detector, plan.ingestion_id, 0)
    assert (summary.done, summary.failed) == (1, 0)
    assert item_outcomes(db, plan.ingestion_id) == {"strip.png": ("done", None)}
    with db.read() as session:
        assert session.execute(select(Image.width, Image.height)).one() == (3000, 1)


def test_a_chunk_that_keeps_crashing_is_given_up_with_a_reason(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(jpeg(40, 30, i))
    plan = supervisor.start(src)
    with db.begin() as session:
        session.execute(
            update(IngestionItem)
            .where(IngestionItem.ingestion_id == plan.ingestion_id)
            .values(attempts=MAX_ATTEMPTS)
        )
    probe = ProbeDetector(detector)
    summary = process_chunk(
        db, ingest_settings.ingestion_config(), probe.as_detector(), plan.ingestion_id, 0
    )
    assert summary.failed == 3 and probe.calls == 0
    assert set(item_outcomes(db, plan.ingestion_id).values()) == {("failed", "processing_failed")}
    with db.read() as session:
        ingestion = session.get(Ingestion, plan.ingestion_id)
        assert ingestion is not None and ingestion.status == IngestionStatus.DONE


def test_cancelled_ingestion_is_not_processed(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    (tmp_path / "a.jpg").write_bytes(jpeg(40, 30, 1))
    plan = supervisor.start(tmp_path / "a.jpg")
    with db.begin() as session:
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == plan.ingestion_id)
            .values(status=IngestionStatus.CANCELLED)
        )
    probe = ProbeDetector(detector)
    assert process_chunk(
        db, ingest_settings.ingestion_config(), probe.as_detector(), plan.ingestion_id, 0
    ).skipped
    assert probe.calls == 0
    assert item_outcomes(db, plan.ingestion_id) == {"a.jpg": ("pending", None)}


def test_draft_decoded_boxes_are_in_original_pixels(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    # A JPEG twice the model size is decoded at reduced DCT scale: boxes must still be
    # stored in the original image's pixels.
    (tmp_path / "big.jpg").write_bytes(jpeg(1200, 800, 5))
    plan = supervisor.start(tmp_path / "big.jpg")
    run_all(db, ingest_settings, detector, plan.ingestion_id)
    with db.read() as session:
        boxes = np.array(
            session.execute(
                select(DetectedObject.x1, DetectedObject.y1, DetectedObject.x2, DetectedObject.y2)
            ).all()
        )
        image = session.execute(select(Image.width, Image.height)).one()
    assert (image.width, image.height) == (1200, 800)
    assert len(boxes) > 0
    assert boxes[:, 2].max() <= 1200 and boxes[:, 3].max() <= 800
    assert boxes[:, 2].max() > 300  # not squeezed into the 300x200 draft frame


def test_streams_store_the_same_objects_as_one_stream(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    detector: Detector,
    supervisor: IngestionSupervisor,
) -> None:
    """Two batches in flight at once (the CPU compute plan) change nothing that is stored."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"{i:02d}.jpg").write_bytes(jpeg(96 + 8 * (i % 3), 64, i))
    stored: dict[int, dict[str, tuple[float, ...]]] = {}
    for streams in (1, 2):
        plan = supervisor.start(src)
        run_all(db, ingest_settings, detector, plan.ingestion_id, streams)
        assert all(v == ("done", None) for v in item_outcomes(db, plan.ingestion_id).values())
        with db.read() as session:
            columns = (DetectedObject.ordinal, DetectedObject.x1, DetectedObject.vector)
            rows = session.execute(
                select(Image.sha256, *columns).join(
                    DetectedObject, DetectedObject.image_id == Image.id
                )
            ).all()
        stored[streams] = {
            f"{r.sha256}:{r.ordinal}": (r.x1, *np.frombuffer(r.vector, "<f4").tolist())
            for r in rows
        }
        # the second pass must recompute, not link: forget what the first one stored
        with db.begin() as session:
            session.execute(delete(Image))
    assert stored[1] and stored[1].keys() == stored[2].keys()
    for key, values in stored[1].items():
        assert np.allclose(values, stored[2][key], atol=1e-6), key


def test_the_last_two_chunks_committing_together_finish_the_ingestion(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: two workers finish the last two chunks at the same moment. Each transaction
    must not decide "something is still pending" from the other's uncommitted items, or the
    ingestion stays running with every item done (found by the full proof battery)."""
    db = Database.from_url(pg_url)
    try:
        with db.begin() as session:
            ingestion = create_ingestion(session, tmp_path / "race", kind="folder")
            ingestion.status = IngestionStatus.RUNNING
            items = [
                IngestionItem(ingestion_id=ingestion.id, member=f"{i}.jpg", seq=i, chunk=i)
                for i in range(2)
            ]
            session.add_all(items)
            session.flush()
            ingestion_id, item_ids = ingestion.id, [item.id for item in items]
        first_checked = threading.Event()
        errors: list[BaseException] = []

        def lock_waiters() -> int:
            with db.read() as session:
                return int(
                    session.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        )
                    )
                    or 0
                )

        def last_chunk(i: int) -> None:
            try:
                if i == 1:
                    first_checked.wait(10)
                with db.begin() as session:
                    session.execute(
                        update(IngestionItem)
                        .where(IngestionItem.id == item_ids[i])
                        .values(status=ItemStatus.DONE)
                    )
                    finish_if_complete(session, ingestion_id)
                    if i == 0:
                        # Hold this transaction open until the other one is inside its own
                        # check (waiting for the ingestion row), then commit.
                        first_checked.set()
                        deadline = time.monotonic() + 5
                        while not lock_waiters() and time.monotonic() < deadline:
                            time.sleep(0.01)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=last_chunk, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        with db.read() as session:
            assert session.get_one(Ingestion, ingestion_id).status == IngestionStatus.DONE
    finally:
        db.dispose()


def test_a_chunk_is_read_through_the_chunk_index_not_by_status(tmp_path: Path) -> None:
    """Issue 19.2: claiming a chunk filtered on status in SQL, and SQLite then chose the
    (ingestion, status) index: every pending item of the ingestion scanned per chunk, so a
    100k-member source cost 14x the CPU of a 20k one. The claim must use the chunk index."""
    from sqlalchemy import event

    from shared.db import migrations
    from shared.ingestion.pipeline import _claim
    from shared.settings import load_settings

    url = f"sqlite:///{tmp_path / 'roisearch.db'}"
    migrations.upgrade(url)
    settings = load_settings(data_dir=tmp_path / "data", database_url=url, chunk_size=8)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i}.jpg").write_bytes(b"")
    db = Database.from_url(url)
    with db.begin() as session:
        ingestion_id = create_ingestion(session, folder).id
    plan = plan_ingestion(db, settings.ingestion_config(), ingestion_id)
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM ingestion_items" in statement and "chunk" in statement.split("WHERE")[-1]:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    assert _claim(db, plan.ingestion_id, 2) is not None
    event.remove(db.engine, "before_cursor_execute", record)
    assert statements
    with db.engine.connect() as connection:
        for statement, parameters in statements:
            plan_rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            details = " ".join(str(row[-1]) for row in plan_rows)
            assert "ix_ingestion_items_chunk" in details, details
    db.dispose()
