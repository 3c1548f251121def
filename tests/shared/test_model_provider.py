"""The process's lazy model holder: one detector, and the thread split of ingesting processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from shared.model_provider import ModelProvider
from shared.settings import load_settings


@pytest.fixture
def restore_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_loads_one_detector_once_across_threads(tmp_path: Path, yolov7_fixtures: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, weights=yolov7_fixtures / "yolov7-tiny-random.pt", img_size=128
    )
    provider = ModelProvider(settings.detector_config())
    assert not provider.loaded
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(provider.get())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert provider.loaded and len({id(d) for d in got}) == 1
    assert provider.streams == 1  # not an ingesting process: one stream of every thread


def test_an_ingesting_process_splits_its_threads_into_streams(
    tmp_path: Path, yolov7_fixtures: Path, restore_torch_threads: None
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        weights=yolov7_fixtures / "yolov7-tiny-random.pt",
        img_size=128,
        device="cpu",
        torch_threads=2,
    )
    provider = ModelProvider(settings.detector_config(), throughput=True)
    provider.get()
    assert provider.streams == 2
    assert torch.get_num_threads() == 1
