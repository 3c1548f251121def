from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.ingestion.config import IngestionConfig
from shared.reports.config import ReportConfig
from shared.settings import (
    ApiSettings,
    IndexSettings,
    IngestionSettings,
    LimitsSettings,
    ModelSettings,
    ReportSettings,
    Settings,
    SettingsError,
    StorageSettings,
    load_settings,
)
from shared.yolov7.detector_config import DetectorConfig


def test_defaults_are_embedded_sqlite(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.embedded
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'roisearch.db').resolve()}"
    assert s.feature_layers is None


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROISEARCH_BATCH_SIZE", "zero")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "ROISEARCH_BATCH_SIZE" in str(info.value)
    assert "zero" in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ROISEARCH_DEVICE", "tpu"),
        ("ROISEARCH_DATABASE_URL", "mysql://x"),
        ("ROISEARCH_DATABASE_URL", "postgresql://u@h/db"),
        ("ROISEARCH_REDIS_URL", "localhost:6379"),
        ("ROISEARCH_WEIGHTS", "/nonexistent/yolov7.pt"),
        ("ROISEARCH_IOU_THRESHOLD", "1.5"),
        ("ROISEARCH_FEATURE_LAYERS", "99,x"),
    ],
)
def test_each_bad_value_is_reported(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_lists_parse_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROISEARCH_FEATURE_LAYERS", "74, 75,76")
    monkeypatch.setenv("ROISEARCH_CORS_ORIGINS", "http://a.example,http://b.example")
    s = load_settings()
    assert s.feature_layers == [74, 75, 76]
    assert s.cors_origins == ["http://a.example", "http://b.example"]


def test_the_engine_config_carries_every_model_setting(
    monkeypatch: pytest.MonkeyPatch, yolov7_fixtures: Path
) -> None:
    weights = yolov7_fixtures / "yolov7-tiny-random.pt"
    for name, value in {
        "WEIGHTS": str(weights),
        "DEVICE": "CPU",
        "IMG_SIZE": "320",
        "FEATURE_LAYERS": "74,75",
        "POOLING": "multiscale",
        "ROI_FRACTION": "0.5",
        "CONF_THRESHOLD": "0.3",
        "IOU_THRESHOLD": "0.6",
        "MAX_DETECTIONS": "50",
        "BATCH_SIZE": "4",
        "TORCH_THREADS": "3",
        "MODEL_STREAMS": "2",
    }.items():
        monkeypatch.setenv(f"ROISEARCH_{name}", value)
    assert load_settings().detector_config() == DetectorConfig(
        weights=weights,
        device="cpu",
        img_size=320,
        feature_layers=(74, 75),
        pooling="multiscale",
        roi_fraction=0.5,
        conf_threshold=0.3,
        iou_threshold=0.6,
        max_detections=50,
        batch_size=4,
        torch_threads=3,
        model_streams=2,
    )


def test_the_engine_defaults_are_the_settings_defaults(tmp_path: Path) -> None:
    # the engine is used without settings too (tests, benches, the demo tooling): both must
    # mean the same detector when nothing is configured
    assert load_settings(data_dir=tmp_path).detector_config() == DetectorConfig()


# Every variable, its section and a valid value that is not the default: the grouping of the
# fields into sections must keep each ROISEARCH_* name (a field renamed or dropped fails here).
VARIABLES: dict[str, tuple[type[BaseModel], str, object]] = {
    "DATA_DIR": (StorageSettings, "/tmp/roisearch-env-data", Path("/tmp/roisearch-env-data")),
    "DATABASE_URL": (StorageSettings, "sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    "REDIS_URL": (StorageSettings, "redis://h:6379/2", "redis://h:6379/2"),
    "QUEUE_NAME": (StorageSettings, "q2", "q2"),
    "STORE_ORIGINALS": (StorageSettings, "false", False),
    "DEVICE": (ModelSettings, "cuda:1", "cuda:1"),
    "IMG_SIZE": (ModelSettings, "320", 320),
    "BATCH_SIZE": (ModelSettings, "3", 3),
    "CONF_THRESHOLD": (ModelSettings, "0.4", 0.4),
    "IOU_THRESHOLD": (ModelSettings, "0.5", 0.5),
    "MAX_DETECTIONS": (ModelSettings, "7", 7),
    "FEATURE_LAYERS": (ModelSettings, "1,2", [1, 2]),
    "POOLING": (ModelSettings, "multiscale", "multiscale"),
    "ROI_FRACTION": (ModelSettings, "0.25", 0.25),
    "TORCH_THREADS": (ModelSettings, "5", 5),
    "MODEL_STREAMS": (ModelSettings, "3", 3),
    "DECODE_THREADS": (ModelSettings, "4", 4),
    "INDEX_FACTORY": (IndexSettings, "Flat", "Flat"),
    "INDEX_POLL_INTERVAL_S": (IndexSettings, "2.5", 2.5),
    "INDEX_SNAPSHOT_INTERVAL_S": (IndexSettings, "60", 60.0),
    "INDEX_MEMORY_BUDGET_MB": (IndexSettings, "512", 512),
    "IMPORT_ROOTS": (IngestionSettings, "/a,/b", [Path("/a"), Path("/b")]),
    "CHUNK_SIZE": (IngestionSettings, "9", 9),
    "WORKER_TTL_S": (IngestionSettings, "99", 99),
    "JOB_TIMEOUT_S": (IngestionSettings, "77", 77),
    "MAX_IMAGE_PIXELS": (LimitsSettings, "1000", 1000),
    "MAX_MEMBER_BYTES": (LimitsSettings, "1001", 1001),
    "MAX_ARCHIVE_TOTAL_BYTES": (LimitsSettings, "1002", 1002),
    "MAX_ARCHIVE_MEMBERS": (LimitsSettings, "1003", 1003),
    "MAX_COMPRESSION_RATIO": (LimitsSettings, "9.5", 9.5),
    "MAX_UPLOAD_BYTES": (LimitsSettings, "40000000", 40_000_000),
    "MAX_QUERY_IMAGE_BYTES": (LimitsSettings, "1999", 1999),
    "MAX_K": (LimitsSettings, "11", 11),
    "MAX_PAGE_SIZE": (LimitsSettings, "12", 12),
    "MAX_CONCURRENT_SEARCHES": (LimitsSettings, "13", 13),
    "CORS_ORIGINS": (ApiSettings, "http://a.example", ["http://a.example"]),
    "HOST": (ApiSettings, "0.0.0.0", "0.0.0.0"),
    "PORT": (ApiSettings, "8123", 8123),
    "ALLOWED_HOSTS": (ApiSettings, "a.example,localhost", ["a.example", "localhost"]),
    "BODY_STALL_TIMEOUT_S": (ApiSettings, "7.5", 7.5),
    "MAX_OPEN_BODIES_PER_CLIENT": (ApiSettings, "5", 5),
    "REPORT_THREADS": (ReportSettings, "6", 6),
    "LOG_LEVEL": (Settings, "DEBUG", "DEBUG"),
}


def test_every_setting_is_listed_in_a_section() -> None:
    # WEIGHTS (a file that must exist) and API_KEY (a secret) are checked below.
    listed = {name.lower() for name in VARIABLES} | {"weights", "api_key"}
    assert listed == set(Settings.model_fields)


@pytest.mark.parametrize("variable", sorted(VARIABLES))
def test_each_variable_keeps_its_name_and_section(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    section, raw, expected = VARIABLES[variable]
    monkeypatch.setenv(f"ROISEARCH_{variable}", raw)
    field = variable.lower()
    assert getattr(load_settings(), field) == expected
    assert field in section.model_fields  # declared in its section, not only on Settings


def test_weights_and_api_key_keep_their_names(
    monkeypatch: pytest.MonkeyPatch, yolov7_fixtures: Path
) -> None:
    weights = yolov7_fixtures / "yolov7-tiny-random.pt"
    monkeypatch.setenv("ROISEARCH_WEIGHTS", str(weights))
    monkeypatch.setenv("ROISEARCH_API_KEY", "s3cret")
    settings = load_settings()
    assert settings.weights == weights and "weights" in ModelSettings.model_fields
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "s3cret"
    assert "api_key" in ApiSettings.model_fields


def test_the_ingestion_config_carries_every_ingestion_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "DATA_DIR": str(tmp_path),
        "CHUNK_SIZE": "9",
        "DECODE_THREADS": "3",
        "STORE_ORIGINALS": "false",
        "REDIS_URL": "redis://h:6379/0",
        "MAX_IMAGE_PIXELS": "1000",
        "MAX_MEMBER_BYTES": "1001",
        "MAX_ARCHIVE_TOTAL_BYTES": "1002",
        "MAX_ARCHIVE_MEMBERS": "1003",
        "MAX_COMPRESSION_RATIO": "9.5",
    }.items():
        monkeypatch.setenv(f"ROISEARCH_{name}", value)
    assert load_settings().ingestion_config() == IngestionConfig(
        data_dir=tmp_path,
        chunk_size=9,
        decode_threads=3,
        store_originals=False,
        embedded=False,
        max_image_pixels=1000,
        max_member_bytes=1001,
        max_archive_total_bytes=1002,
        max_archive_members=1003,
        max_compression_ratio=9.5,
    )
    assert load_settings(redis_url=None).ingestion_config().embedded


def test_the_report_config_carries_every_report_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROISEARCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROISEARCH_MAX_IMAGE_PIXELS", "1000")
    monkeypatch.setenv("ROISEARCH_REPORT_THREADS", "3")
    assert load_settings().report_config() == ReportConfig(
        reports_dir=tmp_path / "reports", data_dir=tmp_path, max_image_pixels=1000, report_threads=3
    )
