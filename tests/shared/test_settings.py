from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import SettingsError, load_settings
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
