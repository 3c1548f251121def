"""The engine's frozen config: validation, and the weights file's recorded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.yolov7.detector_config import DetectorConfig
from shared.yolov7.errors import ConfigError

RECORDED = {"img_size": 384, "feature_layers": [74, 75, 76], "roi_fraction": 0.5}


def test_a_bad_value_is_refused_before_any_loading() -> None:
    with pytest.raises(ConfigError, match="pooling must be roi_align or multiscale"):
        DetectorConfig(weights=Path("/absent.pt"), pooling="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="roi_fraction must be in"):
        DetectorConfig(roi_fraction=0.0)


def test_unset_fields_take_the_files_recorded_defaults() -> None:
    filled = DetectorConfig(device="cpu").with_file_defaults(RECORDED)
    assert filled == DetectorConfig(
        device="cpu", img_size=384, feature_layers=(74, 75, 76), roi_fraction=0.5
    )


def test_set_fields_win_over_the_file() -> None:
    mine = DetectorConfig(img_size=640, feature_layers=(99,), roi_fraction=1.0)
    assert mine.with_file_defaults(RECORDED) == mine


def test_multiscale_keeps_its_own_layers() -> None:
    # the recorded layers are the file's choice for roi_align; multiscale pools the head inputs
    filled = DetectorConfig(pooling="multiscale").with_file_defaults(RECORDED)
    assert filled.feature_layers is None and filled.img_size == 384
