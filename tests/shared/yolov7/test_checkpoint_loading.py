"""Safe loading: malicious pickles refused, bad files named, state dicts, safetensors round trip."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.yolov7.architectures import yolov7_tiny_config
from shared.yolov7.checkpoint import load_pt
from shared.yolov7.errors import CheckpointError, UnsafeCheckpointError
from shared.yolov7.fusion import fuse_model
from shared.yolov7.model import ModelOutput, build_model
from shared.yolov7.safe_format import load_safe, save_safe

torch.set_num_threads(1)


class _RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class _RunsSubprocess:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (subprocess.call, (["touch", str(self.marker)],))


@pytest.mark.parametrize("payload", [_RunsCommand, _RunsSubprocess])
def test_malicious_torch_checkpoint_is_refused(tmp_path: Path, payload: type) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="refused global") as info:
        load_pt(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_malicious_raw_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_legacy.pt"
    path.write_bytes(pickle.dumps(_RunsCommand(marker), protocol=2))
    with pytest.raises(CheckpointError) as info:
        load_pt(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_truncated_checkpoint_names_the_file(tmp_path: Path, yolov7_fixtures: Path) -> None:
    path = tmp_path / "truncated.pt"
    path.write_bytes((yolov7_fixtures / "yolov7-tiny-random.pt").read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt"):
        load_pt(path)


def test_non_yolov7_files_are_named(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"weights": [1, 2, 3]}, other)
    with pytest.raises(CheckpointError, match=r"other\.pt: not a YOLOv7 checkpoint"):
        load_pt(other)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.pt"):
        load_pt(text)
    with pytest.raises(CheckpointError, match=r"missing\.pt"):
        load_pt(tmp_path / "missing.pt")


def test_plain_state_dict_is_recognised(tmp_path: Path, yolov7_fixtures: Path) -> None:
    official = load_pt(yolov7_fixtures / "yolov7-tiny-random.pt").model
    path = tmp_path / "plain.pt"
    torch.save(official.state_dict(), path)
    loaded = load_pt(path).model
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        a, b = official(x), loaded(x)
    assert isinstance(a, ModelOutput) and isinstance(b, ModelOutput)
    assert torch.equal(a.decoded, b.decoded)


def test_safetensors_round_trip_without_pickle(tmp_path: Path, yolov7_fixtures: Path) -> None:
    official = load_pt(yolov7_fixtures / "yolov7-tiny-random.pt")
    dst = tmp_path / "tiny.safetensors"
    sidecar = save_safe(official.model, dst, names=official.names, img_size=640)
    assert sidecar.is_file() and sidecar.suffix == ".json"
    loaded, doc = load_safe(dst)
    assert doc["img_size"] == 640 and loaded.names == official.names
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        a, b = official.model(x), loaded.model(x)
    assert isinstance(a, ModelOutput) and isinstance(b, ModelOutput)
    assert torch.equal(a.decoded, b.decoded)
    bn_eps = {m.eps for m in loaded.model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert bn_eps == {1e-3}


def test_fused_model_saves_and_loads_fused(tmp_path: Path) -> None:
    model = build_model(yolov7_tiny_config(nc=3, width_multiple=0.25), nc=3)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        before = model(x)
        fuse_model(model)
        fused = model(x)
    assert isinstance(before, ModelOutput) and isinstance(fused, ModelOutput)
    diff = np.abs((before.decoded - fused.decoded).numpy())
    assert diff[..., :4].max() <= 0.05 and diff[..., 4:].max() <= 1e-4  # README tolerances
    save_safe(model, tmp_path / "f.safetensors")
    loaded, doc = load_safe(tmp_path / "f.safetensors")
    assert doc["fused"] and loaded.fused
    with torch.inference_mode():
        again = loaded.model(x)
    assert isinstance(again, ModelOutput)
    assert torch.equal(again.decoded, fused.decoded)


def test_foreign_safetensors_are_named(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors: no architecture"):
        load_safe(path)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.safetensors"):
        load_safe(garbage)
