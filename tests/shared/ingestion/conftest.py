"""Fixtures for ingestion tests: the fixture detector at a small input size (loaded once per
session) and settings/database on both backends (see ``scenarios`` for the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.db.database import Database
from shared.ingestion.supervisor import IngestionSupervisor
from shared.settings import Settings, load_settings
from shared.yolov7.detector import Detector
from tests.shared.ingestion.scenarios import IMG_SIZE, ingestion_settings


@pytest.fixture(scope="session")
def fixture_weights(yolov7_fixtures: Path) -> Path:
    return yolov7_fixtures / "yolov7-tiny-random.pt"


@pytest.fixture(scope="session")
def detector(fixture_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Detector:
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("unused"), weights=fixture_weights, img_size=IMG_SIZE
    )
    return Detector.load(settings.detector_config())


@pytest.fixture
def ingest_settings(tmp_path: Path, db_url: str, fixture_weights: Path) -> Settings:
    return ingestion_settings(tmp_path / "data", db_url, fixture_weights)


@pytest.fixture
def db(ingest_settings: Settings) -> Iterator[Database]:
    database = Database.from_url(ingest_settings.resolved_database_url)
    yield database
    database.dispose()


@pytest.fixture
def supervisor(db: Database, ingest_settings: Settings) -> IngestionSupervisor:
    """The supervisor of an embedded run (no queue: chunks run in this process)."""
    return IngestionSupervisor(db, ingest_settings.ingestion_config())
