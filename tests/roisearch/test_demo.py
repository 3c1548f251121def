"""`roisearch demo`: the main job end to end on the embedded default (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import func, select
from typer.testing import CliRunner

from roisearch.cli import app
from shared.db.database import Database
from shared.db.models import DetectedObject, IngestionItem, ObjectOrigin, Report

torch.set_num_threads(1)


@pytest.fixture
def demo_env(tmp_path: Path, yolov7_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory, the fixture weights (the shipped detector may not exist yet)."""
    data = tmp_path / "data"
    monkeypatch.delenv("ROISEARCH_REDIS_URL", raising=False)
    monkeypatch.delenv("ROISEARCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("ROISEARCH_DATA_DIR", str(data))
    monkeypatch.setenv("ROISEARCH_WEIGHTS", str(yolov7_fixtures / "yolov7-tiny-random.pt"))
    monkeypatch.setenv("ROISEARCH_IMG_SIZE", "256")
    return data


def test_demo_runs_the_main_job_end_to_end(demo_env: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--n", "6", "--seed", "3"])
    assert result.exit_code == 0, result.output

    archive = demo_env / "demo" / "demo-scenes-seed3-n6.zip"
    assert archive.is_file()
    db = Database.from_url(f"sqlite:///{demo_env / 'roisearch.db'}")
    try:
        with db.read() as session:
            statuses = dict(
                session.execute(
                    select(IngestionItem.status, func.count()).group_by(IngestionItem.status)
                ).all()
            )
            objects = session.scalar(select(func.count()).select_from(DetectedObject))
            labelled = session.scalar(
                select(func.count())
                .select_from(DetectedObject)
                .where(DetectedObject.origin == ObjectOrigin.LABEL)
            )
            images_done = session.scalar(
                select(func.count()).where(
                    IngestionItem.status == "done", IngestionItem.image_id.is_not(None)
                )
            )
            report_id, report_status = session.execute(select(Report.id, Report.status)).one()
    finally:
        db.dispose()
    # Six images done, and the archive's own labels read (issue 20): 6 YOLO files, the COCO
    # JSON and classes.txt done; the three other JSON files are "not an image", not failures.
    assert images_done == 6 and labelled and labelled > 0
    assert statuses == {"done": 14, "skipped": 3}
    assert objects and objects > 0
    assert report_status == "done"
    page = demo_env / "reports" / str(report_id) / "report.html"
    assert page.is_file() and "<svg" in page.read_text()
    said = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "of the nearest neighbours are also a" in said and "clusters over" in said

    # Running it again reuses the archive and processes nothing new.
    again = CliRunner().invoke(app, ["demo", "--n", "6", "--seed", "3"])
    assert again.exit_code == 0, again.output
    assert "reusing" in again.output
    db = Database.from_url(f"sqlite:///{demo_env / 'roisearch.db'}")
    try:
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(DetectedObject)) == objects
    finally:
        db.dispose()
