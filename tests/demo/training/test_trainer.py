"""The training loop on a tiny generated set: the loss falls, the export loads, runs repeat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from demo.scenes import CLASS_NAMES
from demo.training.trainer import TrainConfig, train
from shared.yolov7.detector import Detector
from shared.yolov7.detector_config import DetectorConfig


def _config(tmp: Path, name: str, epochs: int) -> TrainConfig:
    return TrainConfig(
        out=tmp / f"{name}.safetensors",
        data_dir=tmp / "data",
        train_images=8,
        epochs=epochs,
        img_size=96,
        batch_size=4,
        width_multiple=0.25,
        lr=3e-3,
        warmup_steps=2,
        seed=5,
        threads=1,
        workers=1,
        val_images=0,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, list[dict]]:
    tmp = tmp_path_factory.mktemp("train")
    config = _config(tmp, "a", epochs=8)
    result = train(config, log=lambda _: None, progress=False)
    return config, result.history


def test_training_reduces_the_loss(trained: tuple[TrainConfig, list[dict]]) -> None:
    _, history = trained
    losses = [h["loss"] for h in history]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
    assert losses[-1] < losses[0], losses


def test_export_loads_with_names_and_size(trained: tuple[TrainConfig, list[dict]]) -> None:
    config, _ = trained
    detector = Detector.load(DetectorConfig(weights=config.out, device="cpu"))
    assert detector.class_names == list(CLASS_NAMES)
    # serving defaults recorded in the file: the top of the ×0.7–1.2 scale jitter of the
    # 96 px training input, rounded to the stride; the head inputs over the boxes' centres
    assert detector.img_size == 128
    assert detector.layers == tuple(detector.model.parsed.lead_inputs)
    assert detector.roi_fraction == 0.5
    doc = json.loads(config.out.with_suffix(".json").read_text())
    assert doc["extra"]["steps"] == 16 and len(doc["extra"]["history"]) == 8
    results = detector.embed([np.full((80, 120, 3), 90, np.uint8)])
    assert results[0].image_vector.shape == (detector.dim,)


def test_same_seed_same_weights(
    trained: tuple[TrainConfig, list[dict]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    config, _ = trained
    tmp = config.data_dir.parent  # reuse the generated scenes
    first = _config(tmp, "b", epochs=1)
    second = _config(tmp, "c", epochs=1)
    train(first, log=lambda _: None, progress=False)
    train(second, log=lambda _: None, progress=False)
    a, b = load_file(str(first.out)), load_file(str(second.out))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_continue_from_exported_weights(trained: tuple[TrainConfig, list[dict]]) -> None:
    config, history = trained
    follow = _config(config.data_dir.parent, "d", epochs=1)
    follow.init = config.out
    result = train(follow, log=lambda _: None, progress=False)
    before = json.loads(config.out.with_suffix(".json").read_text())
    after = json.loads(follow.out.with_suffix(".json").read_text())
    assert after["config"]["anchors"] == before["config"]["anchors"]
    assert after["extra"]["training"]["init"] == str(config.out)
    # it starts where the first run ended, not from scratch
    assert result.history[0]["loss"] < history[0]["loss"]


def test_two_workers_share_the_batch(trained: tuple[TrainConfig, list[dict]]) -> None:
    config, _ = trained
    parallel = _config(config.data_dir.parent, "e", epochs=3)
    parallel.workers = 2
    result = train(parallel, log=lambda _: None, progress=False)
    assert result.steps == 6 and len(result.history) == 3
    doc = json.loads(parallel.out.with_suffix(".json").read_text())
    assert doc["extra"]["workers"] == 2
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    Detector.load(DetectorConfig(weights=parallel.out, device="cpu"))


def test_resume_continues_an_interrupted_run(trained: tuple[TrainConfig, list[dict]]) -> None:
    config, _ = trained
    short = _config(config.data_dir.parent, "f", epochs=2)
    first = train(short, log=lambda _: None, progress=False)
    longer = _config(config.data_dir.parent, "f", epochs=3)
    longer.resume = True
    messages: list[str] = []
    resumed = train(longer, log=messages.append, progress=False)
    assert any("resuming after epoch 1" in m for m in messages)
    assert resumed.steps == 6
    assert resumed.history[:2] == first.history
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
