from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import SettingsError, load_settings


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
