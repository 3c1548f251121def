"""Fixtures for worker tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixture_weights(yolov7_fixtures: Path) -> Path:
    return yolov7_fixtures / "yolov7-tiny-random.pt"
